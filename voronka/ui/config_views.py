"""Settings screens: pipelines and stages, custom fields, users and departments, API tokens."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from voronka.core import entity_types, policies
from voronka.core.errors import ActionError
from voronka.customfields import actions as field_actions
from voronka.customfields.models import FieldDefinition
from voronka.identity import actions as identity
from voronka.identity.models import ApiToken, Department, User
from voronka.pipelines import actions as pipeline_actions
from voronka.pipelines.models import Pipeline, Stage

from .views import action_error, actor_of, page


def _need(request, area: str):
    actor = actor_of(request)
    if not policies.can(actor, f"settings:{area}", 0):
        raise DjangoPermissionDenied
    return actor


def _int(value):
    return int(value) if (value or "").strip().isdigit() else None


# --- pipelines -------------------------------------------------------------------------------------

@login_required
def pipelines(request):
    actor = _need(request, "pipelines")
    staged = [i for i in entity_types.all_types() if i.staged]
    if request.method == "POST":
        try:
            pipeline = pipeline_actions.create_pipeline(
                actor, entity_type_id=_int(request.POST.get("entity_type_id")) or 0,
                name=request.POST.get("name", "").strip(), code=request.POST.get("code", "").strip(),
                stages=[{"name": _("New"), "code": "new"}, {"name": _("Won"), "code": "won", "semantics": "success",
                                                              "color": "#16a34a"},
                        {"name": _("Lost"), "code": "lost", "semantics": "failure", "color": "#dc2626"}])
        except ActionError as exc:
            action_error(request, exc)
        else:
            messages.success(request, _("Pipeline created."))
            return redirect("ui:pipeline", pk=pipeline.pk)
    groups = [{"info": i, "title": i.label_plural.capitalize(),
               "pipelines": Pipeline.objects.filter(entity_type_id=i.id).prefetch_related("stages")} for i in staged]
    return page(request, "ui/settings/pipelines.html", {"groups": groups, "staged": staged}, nav="pipelines")


@login_required
def pipeline(request, pk: int):
    actor = _need(request, "pipelines")
    pipeline = Pipeline.objects.filter(pk=pk).first()
    if pipeline is None:
        return redirect("ui:pipelines")
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "add":
                pipeline_actions.create_stage(actor, pipeline.pk, name=request.POST.get("name", "").strip(),
                                              semantics=request.POST.get("semantics") or "process",
                                              color=request.POST.get("color") or "#3b82f6")
            elif op == "update":
                stage_id = _int(request.POST.get("stage"))
                required = [n for n in request.POST.getlist("required") if n]
                ask = [n for n in request.POST.getlist("ask") if n and n not in required]
                pipeline_actions.update_stage(actor, stage_id, name=request.POST.get("name", "").strip(),
                                              semantics=request.POST.get("semantics"), color=request.POST.get("color"),
                                              required_fields=required, ask_fields=ask)
            elif op == "delete":
                pipeline_actions.delete_stage(actor, _int(request.POST.get("stage")))
            elif op == "reorder":
                ids = [int(i) for i in json.loads(request.POST.get("order") or "[]")]
                pipeline_actions.reorder_stages(actor, pipeline.pk, ids)
                return JsonResponse({"ok": True})
        except (ActionError, ValueError, TypeError) as exc:
            if op == "reorder":
                return JsonResponse({"ok": False, "message": getattr(exc, "message", str(exc))}, status=422)
            action_error(request, exc) if isinstance(exc, ActionError) else messages.error(request, str(exc))
        else:
            messages.success(request, _("Saved."))
        return redirect("ui:pipeline", pk=pk)
    info = entity_types.get(pipeline.entity_type_id)
    field_names = [(f.name, str(f.verbose_name).capitalize()) for f in info.model._meta.fields
                   if f.editable and f.name not in ("id", "pipeline", "stage", "custom", "created_by", "deleted_at",
                                                     "created_at", "updated_at", "stage_changed_at", "closed_at")]
    field_names += [("phones", _("Phones")), ("emails", _("E-mails"))]
    field_names += [(d.code, d.label) for d in FieldDefinition.objects.filter(entity_type_id=info.id)]
    return page(request, "ui/settings/pipeline.html", {
        "pipeline": pipeline, "stages": pipeline.stages.order_by("sort", "id"), "fields": field_names,
        "semantics": Stage.Semantics.choices, "title": info.label_plural.capitalize()},
        nav="pipelines")


# --- custom fields ---------------------------------------------------------------------------------

@login_required
def fields(request):
    actor = _need(request, "fields")
    if request.method == "POST":
        choices = [c.strip() for c in request.POST.get("choices", "").splitlines() if c.strip()]
        options = {"choices": [{"id": str(i + 1), "label": c} for i, c in enumerate(choices)]} if choices else {}
        if request.POST.get("kind") == "link":
            options = {"entity_type_id": _int(request.POST.get("link_type"))}
        try:
            field_actions.define_field(actor, entity_type_id=_int(request.POST.get("entity_type_id")) or 0,
                                       code="uf_" + request.POST.get("code", "").strip().removeprefix("uf_"),
                                       label=request.POST.get("label", "").strip(), kind=request.POST.get("kind", ""),
                                       required=bool(request.POST.get("required")),
                                       multiple=bool(request.POST.get("multiple")), options=options,
                                       pipeline=_int(request.POST.get("pipeline")))
        except ActionError as exc:
            action_error(request, exc)
        else:
            messages.success(request, _("Field added."))
        return redirect("ui:fields")
    types = entity_types.all_types()
    return page(request, "ui/settings/fields.html", {
        "types": [(t.id, t.label_plural.capitalize()) for t in types],
        "definitions": FieldDefinition.objects.select_related("pipeline").order_by("entity_type_id", "sort", "id"),
        "kinds": FieldDefinition.Kind.choices, "pipelines": Pipeline.objects.order_by("entity_type_id", "sort")},
        nav="fields")


@login_required
@require_POST
def field_delete(request, pk: int):
    actor = _need(request, "fields")
    try:
        field_actions.delete_field(actor, pk)
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Field removed. Values already stored stay in the records."))
    return redirect("ui:fields")


# --- users and departments -------------------------------------------------------------------------

@login_required
def users(request):
    actor = _need(request, "users")
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "user":
                identity.create_user(actor, username=request.POST.get("username", "").strip(),
                                     password=request.POST.get("password", ""),
                                     first_name=request.POST.get("first_name", "").strip(),
                                     last_name=request.POST.get("last_name", "").strip(),
                                     email=request.POST.get("email", "").strip(),
                                     position=request.POST.get("position", "").strip(),
                                     department=_int(request.POST.get("department")))
            elif op == "toggle":
                user = User.objects.filter(pk=_int(request.POST.get("user"))).first()
                if user is not None:
                    identity.update_user(actor, user.pk, is_active=not user.is_active)
            elif op == "move":
                identity.update_user(actor, _int(request.POST.get("user")) or 0,
                                     department=_int(request.POST.get("department")))
            elif op == "department":
                identity.create_department(actor, name=request.POST.get("name", ""),
                                           parent=_int(request.POST.get("parent")), head=_int(request.POST.get("head")))
            elif op == "head":
                identity.update_department(actor, _int(request.POST.get("department")) or 0,
                                           head=_int(request.POST.get("head")))
        except ActionError as exc:
            action_error(request, exc)
        else:
            messages.success(request, _("Saved."))
        return redirect("ui:users")
    departments = list(Department.objects.select_related("head", "parent").order_by("name"))
    tree = _tree(departments)
    return page(request, "ui/settings/users.html", {
        "users": User.objects.select_related("department").order_by("-is_active", "last_name", "username"),
        "departments": departments, "tree": tree}, nav="users")


def _tree(departments):
    children: dict = {}
    for d in departments:
        children.setdefault(d.parent_id, []).append(d)
    out = []

    def walk(parent, depth):
        for d in children.get(parent, []):
            out.append({"d": d, "depth": depth, "indent": depth * 18})
            walk(d.pk, depth + 1)

    walk(None, 0)
    return out


# --- API tokens ------------------------------------------------------------------------------------

@login_required
def tokens(request):
    actor = actor_of(request)
    manage_all = policies.can(actor, "settings:integrations", 0)
    raw = None
    if request.method == "POST":
        op = request.POST.get("op")
        try:
            if op == "issue":
                days = _int(request.POST.get("days"))
                token, raw = identity.issue_token(
                    actor, user_id=_int(request.POST.get("user")) or actor.user_id,
                    name=request.POST.get("name", ""), scopes=request.POST.getlist("scopes"),
                    expires_at=timezone.now() + timezone.timedelta(days=days) if days else None)
                messages.success(request, _("Token created. Copy it now: it is shown only once."))
            elif op == "revoke":
                identity.revoke_token(actor, _int(request.POST.get("token")) or 0)
                messages.success(request, _("Token revoked."))
                return redirect("ui:tokens")
        except ActionError as exc:
            action_error(request, exc)
    qs = ApiToken.objects.select_related("user").order_by("-created_at")
    if not manage_all:
        qs = qs.filter(user=request.user)
    return page(request, "ui/settings/tokens.html", {
        "tokens": qs[:200], "raw": raw, "manage_all": manage_all,
        "users": User.objects.filter(is_active=True).order_by("last_name") if manage_all else []}, nav="tokens")
