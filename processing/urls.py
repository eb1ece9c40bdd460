from django.urls import path

from . import review_views, views

app_name = "processing"
urlpatterns = [
    path("", views.import_list, name="list"),
    path("upload/", views.upload, name="upload"),
    path("upload/direct/", views.direct_upload_sign, name="direct_upload"),
    path("upload/direct/complete/", views.direct_upload_complete, name="direct_upload_complete"),
    path("<uuid:job_id>/", views.import_detail, name="detail"),
    path("<uuid:job_id>/status/", views.import_status, name="status"),
    path("<uuid:job_id>/problems.csv", views.import_problems, name="problems"),
    path("<uuid:job_id>/cancel/", views.cancel, name="cancel"),
    path("<uuid:job_id>/resume/", views.resume, name="resume"),
    path("<uuid:job_id>/retry/", views.retry_failed, name="retry"),
    path("<uuid:job_id>/undo/", views.undo, name="undo"),
    path("<uuid:job_id>/review/", review_views.review_page, name="review"),
    path("<uuid:job_id>/review/counts/", review_views.review_counts, name="review_counts"),
    path("<uuid:job_id>/review/column/", review_views.review_column, name="review_column"),
    path("<uuid:job_id>/review/sheet/", review_views.review_sheet, name="review_sheet"),
    path("<uuid:job_id>/review/header/", review_views.review_header, name="review_header"),
    path("<uuid:job_id>/review/confirm/", review_views.review_confirm, name="review_confirm"),
    path("<uuid:job_id>/review/discard/", review_views.review_discard, name="review_discard"),
]
