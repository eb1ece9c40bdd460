from django.contrib import admin
from django.urls import include, path

from processing import ops

from . import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("ops/", ops.ops_page, name="ops"),
    path("", include("leads.urls")),
    path("imports/", include("processing.urls")),
    path("chat/", include("chatbot.urls")),
    path("admin/", admin.site.urls),
    # Before Django's auth URLs, which they replace: the reset link and form only when mail works.
    path("accounts/login/", views.login, name="login"),
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
]
