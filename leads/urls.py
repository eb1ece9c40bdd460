from django.urls import path

from . import views

app_name = "leads"
urlpatterns = [
    path("", views.lead_list, name="list"),
    path("leads/<int:pk>/", views.lead_detail, name="detail"),
    path("leads/export.csv", views.lead_export, name="export"),
]
