from django.urls import re_path

from . import views

urlpatterns = [
    re_path(r"^rest/(?P<uid>[^/]+)/(?P<secret>[^/]+)/(?P<method>[A-Za-z0-9_.]+?)/?$", views.endpoint, name="b24-rest"),
    re_path(r"^rest/(?P<method>[A-Za-z0-9_.]+?)/?$", views.no_credentials, name="b24-rest-no-auth"),
]
