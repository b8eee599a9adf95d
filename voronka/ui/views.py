"""Web UI views. Every read goes through selectors, every write through actions, with the session user as actor."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from voronka.activities.selectors import open_task_counts
from voronka.core import entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import ActionError
from voronka.core.prepared import Prepared
from voronka.identity.forms import LoginForm

COUNT_LIMIT = 1000  # lists show "1000+" instead of counting a whole table


def actor_of(request: HttpRequest) -> Actor:
    ip = (request.META.get("REMOTE_ADDR") or "")[:45]
    base = Actor.for_user(request.user, "ui")
    return Actor(kind=base.kind, user=base.user, entry_point="ui", ip=ip)


_menus: dict[int, tuple[tuple, Any, dict]] = {}  # user id -> (key, grants, the menu without its live counters)


def menu_for(actor: Actor) -> dict:
    """The left menu and the header's counters. The menu itself depends only on the user's rights, the smart
    processes and the language, so it is built once per process for each (every page renders it: its
    rights checks and URL reversals cost ~1 ms a page); the queue switch and the unread count are live."""
    from django.utils.translation import get_language

    from voronka.identity.permissions import grants_for

    from .entities import smart_entities

    user = actor.user
    if user is None or not user.is_authenticated:
        return _build_menu(actor, set())
    grants = grants_for(user)
    key = (get_language(), bool(user.is_superuser), tuple((ui.url, ui.title) for ui in smart_entities()))
    hit = _menus.get(user.pk)
    # a superuser's grants are made afresh per request and never change; anyone else's object is replaced
    # whenever their rights change
    if hit is not None and hit[0] == key and (hit[1] is grants or user.is_superuser):
        static = hit[2]
    else:
        static = _build_menu(actor, grants.menu_hidden)
        _menus[user.pk] = (key, grants, static)
    return {**static, "in_queue": _in_queue(actor), "unread": _unread(actor)}


def _build_menu(actor: Actor, hidden: set) -> dict:
    from django.urls import reverse

    from .entities import all_entities

    records = []
    for ui in all_entities():
        if ui.url in hidden:
            continue
        if actor.user is not None and policies.can(actor, policies.READ, ui.type_id):
            name = "ui:board" if ui.staged else "ui:records"
            records.append({"code": ui.url, "title": ui.title, "url": reverse(name, kwargs={"kind": ui.url})})
    menu = {"records": records, "tasks": "tasks" not in hidden, "settings": policies.can(actor, "settings:roles", 0),
            "recycle_bin": policies.can(actor, "settings:recycle_bin", 0),
            "pipelines": policies.can(actor, "settings:pipelines", 0),
            "fields": policies.can(actor, "settings:fields", 0),
            "users": policies.can(actor, "settings:users", 0),
            "robots": policies.can(actor, "settings:robots", 0),
            "intake": policies.can(actor, "settings:integrations", 0),
            "web_forms": policies.can(actor, "settings:forms", 0),
            "imports": any(policies.can(actor, policies.ADD, t) for t in (1, 2, 3, 4)),
            "reports": "reports" not in hidden and (any(policies.can(actor, policies.READ, t) for t in (1, 2))
                                                    or _reads_a_smart_process(actor))}
    menu["settings_groups"] = _settings_groups(menu, is_superuser=bool(getattr(actor.user, "is_superuser", False)))
    if actor.user is None or not actor.user.is_authenticated:
        menu.update(in_queue=False, unread=0)
    return menu


def _reads_a_smart_process(actor) -> bool:
    """Whether the user may read a smart process (its pipelines have reports)."""
    from voronka.analytics.params import smart_types

    return actor.user is not None and bool(smart_types(actor))


def _settings_groups(menu: dict, *, is_superuser: bool) -> list[dict]:
    """The settings entries in groups (CRM, automation, intake, people and access, integrations), each
    entry only for those with the right; a group with no entry left is not shown."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    def entry(code: str, title: str, url_name: str) -> dict:
        return {"code": code, "title": title, "url": reverse(url_name)}

    groups = [
        ("crm", _("CRM"), [
            menu["pipelines"] and entry("pipelines", _("Pipelines"), "ui:pipelines"),
            menu["pipelines"] and entry("smart_types", _("Smart processes"), "ui:smart_types"),
            menu["fields"] and entry("fields", _("Custom fields"), "ui:fields"),
        ]),
        ("automation", _("Automation"), [
            menu["robots"] and entry("robots", _("Robots"), "ui:robots_home"),
            menu["robots"] and entry("automation_log", _("Automation log"), "ui:automation_log"),
            menu["users"] and entry("calendar", _("Working calendar"), "ui:calendar"),
        ]),
        ("intake", _("Intake"), [
            menu["web_forms"] and entry("web_forms", _("Web forms"), "ui:web_forms"),
            menu["users"] and entry("queues", _("Distribution queues"), "ui:queues"),
            menu["intake"] and entry("mailboxes", _("Intake mailboxes"), "ui:mailboxes"),
            menu["intake"] and entry("intake_sources", _("Sources and bots"), "ui:intake_sources"),
            menu["intake"] and entry("intake_log", _("Intake log"), "ui:intake_log"),
        ]),
        ("people", _("People and access"), [
            menu["users"] and entry("users", _("Users"), "ui:users"),
            menu["settings"] and entry("roles", _("Roles and rights"), "ui:roles"),
            menu["settings"] and entry("view_as", _("View as user"), "ui:view_as"),
            menu["settings"] and entry("audit", _("Audit log"), "ui:audit"),
        ]),
        ("integrations", _("Integrations"), [
            entry("tokens", _("API tokens"), "ui:tokens"),
            entry("b24_webhooks", _("Bitrix24 webhooks"), "ui:b24_webhooks"),
        ]),
        ("data", _("Data"), [
            menu["recycle_bin"] and entry("recycle", _("Recycle bin"), "ui:recycle_bin"),
            is_superuser and {"code": "", "title": _("Data browser"), "url": "/admin/"},
        ]),
    ]
    out = []
    for code, title, items in groups:
        items = [i for i in items if i]
        if items:
            out.append({"code": code, "title": title, "items": items, "codes": [i["code"] for i in items]})
    return out


def _in_queue(actor: Actor) -> bool:
    """Members of a distribution queue get the at-work/away switch in the header."""
    return actor.user_id is not None and bool(_IN_QUEUE.rows(actor.user_id))


def _in_queue_query(user_id):
    from voronka.distribution.models import QueueMember

    return QueueMember.objects.filter(user_id=user_id, queue__is_active=True).values_list("id")[:1]


_IN_QUEUE = Prepared(_in_queue_query, [-918273645])  # every page asks: compiled once (voronka.core.prepared)


def _unread(actor: Actor) -> int:
    from .automation_views import unread_count

    return unread_count(actor.user)


def page(request, template: str, context: dict, *, nav: str = "", status: int = 200) -> HttpResponse:
    actor = actor_of(request)
    return render(request, template, {"nav": nav, "menu": menu_for(actor), **context}, status=status)


def login_view(request):
    if request.user.is_authenticated:
        return redirect("ui:home")
    form = LoginForm(request, data=request.POST or None)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST" and form.is_valid():
        auth_login(request, form.get_user())
        if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
            next_url = ""
        return redirect(next_url or "ui:home")
    return render(request, "ui/login.html", {"form": form, "next": next_url}, status=200)


@require_POST
def logout_view(request):
    auth_logout(request)
    return redirect("ui:login")


def bounded_count(qs, limit: int = COUNT_LIMIT) -> tuple[int, bool]:
    n = qs[: limit + 1].count()
    return min(n, limit), n > limit


@login_required
def home(request):
    from voronka.core.selectors import records_visible_to

    actor = actor_of(request)
    counts = []
    for info in entity_types.all_types():
        if not policies.can(actor, policies.READ, info.id):
            continue
        count, more = bounded_count(records_visible_to(actor, info.id))
        counts.append({"title": info.label_plural.capitalize(), "count": count, "more": more})
    tasks = open_task_counts(actor)
    from voronka.activities.selectors import my_tasks

    from .entities import BY_TYPE

    upcoming = my_tasks(actor, show="open", limit=8)
    for t in upcoming:
        ui = BY_TYPE.get(t.entity_type_id)
        t.record_url = f"/crm/{ui.url}/{t.entity_id}/" if ui else ""
    return page(request, "ui/home.html", {
        "counts": counts, "tasks_open": tasks["open"], "tasks_overdue": tasks["overdue"], "upcoming": upcoming},
        nav="home")


def action_error(request, exc: ActionError) -> None:
    detail = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
    messages.error(request, f"{exc.message} {detail}".strip())
