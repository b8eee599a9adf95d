from django.urls import path

from . import settings_views, views

app_name = "ui"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("settings/roles/", settings_views.roles, name="roles"),
    path("settings/roles/new/", settings_views.role_edit, name="role_new"),
    path("settings/roles/<int:role_id>/", settings_views.role_edit, name="role_edit"),
    path("settings/roles/<int:role_id>/assign/", settings_views.role_assign, name="role_assign"),
    path("settings/roles/<int:role_id>/unassign/<int:assignment_id>/", settings_views.role_unassign, name="role_unassign"),
    path("settings/view-as/", settings_views.view_as, name="view_as"),
    path("settings/audit/", settings_views.audit_log, name="audit"),
    path("settings/recycle-bin/", settings_views.recycle_bin, name="recycle_bin"),
    path("settings/recycle-bin/<int:entity_type_id>/<int:pk>/<str:op>/", settings_views.recycle_bin_action,
         name="recycle_action"),
]
