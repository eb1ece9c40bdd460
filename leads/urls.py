from django.urls import path

from . import views

app_name = "leads"
urlpatterns = [
    path("", views.lead_list, name="list"),
    path("leads/<int:pk>/", views.lead_detail, name="detail"),
    path("leads/<int:pk>/edit/", views.lead_edit, name="edit"),
    path("leads/<int:pk>/notes/", views.lead_note_add, name="note_add"),
    path("leads/bulk/", views.leads_bulk, name="bulk"),
    path("leads/export.csv", views.lead_export, name="export"),
    path("leads/views/", views.saved_view_create, name="view_create"),
    path("leads/views/<int:pk>/delete/", views.saved_view_delete, name="view_delete"),
    path("insights/", views.lead_insights, name="insights"),
]
