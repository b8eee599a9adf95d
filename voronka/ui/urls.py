from django.urls import path

from . import account_views, config_views, settings_views, task_views, views
from . import record_views as records

app_name = "ui"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("search/", records.search, name="search"),
    path("account/", account_views.account, name="account"),
    path("tasks/", task_views.my_tasks, name="tasks"),
    path("tasks/<int:pk>/", task_views.task_card, name="task"),
    path("tasks/<int:pk>/complete/", task_views.task_complete, name="task_complete"),
    path("crm/<str:kind>/", records.record_list, name="records"),
    path("crm/<str:kind>/board/", records.board, name="board"),
    path("crm/<str:kind>/board/<int:stage_id>/more/", records.board_more, name="board_more"),
    path("crm/<str:kind>/new/", records.create, name="create"),
    path("crm/<str:kind>/bulk/", records.bulk, name="bulk"),
    path("crm/<str:kind>/views/", records.save_view, name="save_view"),
    path("crm/<str:kind>/views/<int:view_id>/delete/", records.delete_view, name="delete_view"),
    path("crm/<str:kind>/<int:pk>/", records.card, name="card"),
    path("crm/<str:kind>/<int:pk>/move/", records.move, name="move"),
    path("crm/<str:kind>/<int:pk>/comment/", records.comment, name="comment"),
    path("crm/<str:kind>/<int:pk>/task/", records.add_task, name="add_task"),
    path("crm/<str:kind>/<int:pk>/hand-off/", records.hand_off, name="hand_off"),
    path("crm/<str:kind>/<int:pk>/take/", records.take, name="take"),
    path("crm/<str:kind>/<int:pk>/convert/", records.convert, name="convert"),
    path("crm/<str:kind>/<int:pk>/repeat/", records.repeat_deal, name="repeat"),
    path("settings/pipelines/", config_views.pipelines, name="pipelines"),
    path("settings/pipelines/<int:pk>/", config_views.pipeline, name="pipeline"),
    path("settings/fields/", config_views.fields, name="fields"),
    path("settings/fields/<int:pk>/delete/", config_views.field_delete, name="field_delete"),
    path("settings/users/", config_views.users, name="users"),
    path("settings/tokens/", config_views.tokens, name="tokens"),
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
