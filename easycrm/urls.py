from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("leads.urls")),
    path("imports/", include("processing.urls")),
    path("chat/", include("chatbot.urls")),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]
