from django.urls import path

from . import views

app_name = "chatbot"
urlpatterns = [
    path("", views.chat_page, name="page"),
    path("ask/", views.chat_ask_view, name="ask"),
    path("new/", views.chat_new, name="new"),
]
