"""Settings screens for access control: roles and their rights, assignments, "view as user", the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from voronka.core import entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import ActionError
from voronka.core.models import AuditEvent
from voronka.core.selectors import records_visible_to
from voronka.identity import actions as access
from voronka.identity.models import Department, Role, RoleAssignment, RolePermission, Scope, User
from voronka.identity.permissions import grants_for
from voronka.pipelines.models import Pipeline

from .views import action_error, actor_of, bounded_count, page

PERMS = RolePermission.Perm.choices
AREA_LABELS = {
    "pipelines": gettext_lazy("Pipelines and stages"), "fields": gettext_lazy("Custom fields"), "robots": gettext_lazy("Robots and triggers"),
    "forms": gettext_lazy("Web forms"), "users": gettext_lazy("Users"), "roles": gettext_lazy("Roles and rights"),
    "integrations": gettext_lazy("Integrations"), "recycle_bin": gettext_lazy("Recycle bin"),
}


MENU_ITEMS = [("leads", gettext_lazy("Leads")), ("deals", gettext_lazy("Deals")), ("contacts", gettext_lazy("Contacts")),
              ("companies", gettext_lazy("Companies")), ("tasks", gettext_lazy("My tasks"))]


def _require_roles_right(request) -> Actor:
    actor = actor_of(request)
    if not policies.can(actor, "settings:roles", 0):
        raise DjangoPermissionDenied
    return actor


def _matrix_rows(role: Role | None):
    """One row per entity type (all pipelines) and per pipeline of staged types."""
    existing = {}
    if role is not None:
        for p in role.permissions.all():
            existing[(p.entity_type_id, p.pipeline_id, p.perm)] = p.scope
    pipelines = list(Pipeline.objects.filter(is_active=True).order_by("entity_type_id", "sort", "id"))
    rows = []
    for info in entity_types.all_types():
        rows.append({"key": f"{info.id}-all", "title": info.label_plural.capitalize(),
                     "subtitle": _("every pipeline") if info.staged else "", "entity_type_id": info.id,
                     "pipeline": None,
                     "cells": [{"perm": perm, "scope": existing.get((info.id, None, perm), 0)} for perm, _l in PERMS]})
        for pipeline in (p for p in pipelines if p.entity_type_id == info.id):
            rows.append({"key": f"{info.id}-{pipeline.pk}", "title": "", "subtitle": pipeline.name,
                         "entity_type_id": info.id, "pipeline": pipeline.pk,
                         "cells": [{"perm": perm, "scope": existing.get((info.id, pipeline.pk, perm), 0)}
                                   for perm, _l in PERMS]})
    return rows


@login_required
def roles(request):
    _require_roles_right(request)
    items = Role.objects.all().order_by("name")
    counts = {}
    for a in RoleAssignment.objects.values_list("role_id", flat=True):
        counts[a] = counts.get(a, 0) + 1
    return page(request, "ui/settings/roles.html", {"roles": [(r, counts.get(r.pk, 0)) for r in items]}, nav="roles")


@login_required
def role_edit(request, role_id: int | None = None):
    actor = _require_roles_right(request)
    role = get_object_or_404(Role, pk=role_id) if role_id else None
    if request.method == "POST":
        rights = []
        for row in _matrix_rows(None):
            for perm, _label in PERMS:
                value = request.POST.get(f"scope-{row['key']}-{perm}", "0")
                scope = int(value) if value.isdigit() else -1
                if scope > 0:
                    rights.append({"entity_type_id": row["entity_type_id"], "pipeline": row["pipeline"], "perm": perm,
                                   "scope": scope})
        areas = [a for a in Role.SETTINGS_AREAS if request.POST.get(f"area-{a}")]
        hidden = [code for code, _label in MENU_ITEMS if request.POST.get(f"menu-{code}") != "on"]
        try:
            if role is None:
                role = access.create_role(actor, code=request.POST.get("code", "").strip(),
                                          name=request.POST.get("name", "").strip(),
                                          description=request.POST.get("description", ""),
                                          settings_rights=areas, rights=rights)
            else:
                access.set_role_rights(actor, role.pk, rights=rights, settings_rights=areas, menu_hidden=hidden)
        except ActionError as exc:
            action_error(request, exc)
        else:
            messages.success(request, _("Rights saved."))
            return redirect("ui:role_edit", role_id=role.pk)
    assignments = list(role.assignments.select_related("user", "department")) if role else []
    return page(request, "ui/settings/role_edit.html", {
        "role": role, "rows": _matrix_rows(role), "perms": PERMS, "scopes": Scope.choices,
        "areas": [(a, AREA_LABELS[a], role is not None and a in (role.settings_rights or [])) for a in Role.SETTINGS_AREAS],
        "menu_items": [(c, label, role is None or c not in (role.menu_hidden or [])) for c, label in MENU_ITEMS],
        "assignments": assignments, "users": User.objects.filter(is_active=True).order_by("last_name", "username"),
        "departments": Department.objects.order_by("name"),
    }, nav="roles")


@login_required
@require_POST
def role_assign(request, role_id: int):
    actor = _require_roles_right(request)
    target = request.POST.get("target", "")
    kind, _sep, pk = target.partition(":")
    try:
        if kind == "user" and pk.isdigit():
            access.assign_role(actor, role_id, user_id=int(pk))
        elif kind == "dept" and pk.isdigit():
            access.assign_role(actor, role_id, department_id=int(pk),
                               with_subdepartments=bool(request.POST.get("with_subdepartments")))
        else:
            messages.error(request, _("Choose a user or a department."))
            return redirect("ui:role_edit", role_id=role_id)
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Role assigned."))
    return redirect("ui:role_edit", role_id=role_id)


@login_required
@require_POST
def role_unassign(request, role_id: int, assignment_id: int):
    actor = _require_roles_right(request)
    try:
        access.unassign_role(actor, assignment_id)
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Assignment removed."))
    return redirect("ui:role_edit", role_id=role_id)


@login_required
def view_as(request):
    """What a given user can see: counts per kind of record and the first records, computed by the same engine."""
    _require_roles_right(request)
    users = User.objects.filter(is_active=True).order_by("last_name", "username")
    chosen = users.filter(pk=request.GET.get("user")).first() if (request.GET.get("user") or "").isdigit() else None
    sections = []
    if chosen is not None:
        viewer = Actor.for_user(chosen, "ui")
        grants = grants_for(chosen)
        for info in entity_types.all_types():
            qs = records_visible_to(viewer, info.id)
            count, more = bounded_count(qs)
            rows = list(qs.order_by("-id")[:10])
            rights = []
            for perm, label in PERMS:
                allowed = policies.can(viewer, perm, info.id)
                scope = grants.scope(info.id, perm, None) if not grants.superuser else Scope.ALL
                rights.append({"label": label, "allowed": allowed, "scope": Scope(scope).label if scope in Scope.values else ""})
            sections.append({"title": info.label_plural.capitalize(), "count": count, "more": more,
                             "rows": rows, "rights": rights})
    return page(request, "ui/settings/view_as.html", {"users": users, "chosen": chosen, "sections": sections},
                nav="view_as")


@login_required
def audit_log(request):
    _require_roles_right(request)
    events = AuditEvent.objects.all()
    action = request.GET.get("action", "")
    if action:
        events = events.filter(action=action)
    actions = sorted(set(AuditEvent.objects.values_list("action", flat=True).distinct()))
    return page(request, "ui/settings/audit.html", {"events": events[:200], "actions": actions, "action": action},
                nav="audit")


def _spec_for(entity_type_id: int):
    """The write-path spec of a record kind (the recycle bin restores and purges through it)."""
    from .entities import BY_TYPE

    ui = BY_TYPE.get(entity_type_id)
    return ui.spec if ui else None


@login_required
def recycle_bin(request):
    """Deleted records, newest first, with restore and purge for administrators."""
    actor = actor_of(request)
    if not policies.can(actor, "settings:recycle_bin", 0):
        raise DjangoPermissionDenied
    type_id = int(request.GET.get("type") or 1) if (request.GET.get("type") or "1").isdigit() else 1
    kinds = [{"id": i.id, "label": i.label_plural.capitalize()}
             for i in entity_types.all_types() if _spec_for(i.id)]
    info = next((k for k in kinds if k["id"] == type_id), kinds[0])
    rows = list(records_visible_to(actor, info["id"], deleted=True).order_by("-deleted_at", "-id")[:100])
    return page(request, "ui/settings/recycle_bin.html", {"kinds": kinds, "info": info, "rows": rows}, nav="recycle")


@login_required
@require_POST
def recycle_bin_action(request, entity_type_id: int, pk: int, op: str):
    from voronka.core.recordkit import purge_one, restore_one

    actor = actor_of(request)
    spec = _spec_for(entity_type_id)
    if spec is None or op not in ("restore", "purge"):
        raise DjangoPermissionDenied
    try:
        if op == "restore":
            restore_one(actor, spec, pk)
            messages.success(request, _("Restored."))
        else:
            purge_one(actor, spec, pk)
            messages.success(request, _("Deleted for good."))
    except ActionError as exc:
        action_error(request, exc)
    return redirect(f"{reverse('ui:recycle_bin')}?type={entity_type_id}")
