from django.urls import path

from . import views

app_name = "intake"

urlpatterns = [
    path("f/<slug:slug>/", views.form_page, name="form"),
    path("f/<slug:slug>/embed.js", views.embed_js, name="embed"),
    path("intake/telegram/<str:secret>/", views.telegram_webhook, name="telegram"),
]
