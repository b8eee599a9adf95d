from django.urls import path

from . import views

urlpatterns = [
    path("baseline/", views.baseline, name="bench-baseline"),
]
