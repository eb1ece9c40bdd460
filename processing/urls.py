from django.urls import path

from . import views

app_name = "processing"
urlpatterns = [
    path("", views.import_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("<uuid:job_id>/", views.import_detail, name="detail"),
    path("<uuid:job_id>/status/", views.import_status, name="status"),
    path("<uuid:job_id>/problems.csv", views.import_problems, name="problems"),
    path("<uuid:job_id>/cancel/", views.cancel, name="cancel"),
    path("<uuid:job_id>/retry/", views.retry_failed, name="retry"),
    path("<uuid:job_id>/undo/", views.undo, name="undo"),
]
