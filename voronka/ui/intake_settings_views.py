"""Settings screens of intake: the web form builder (settings right «forms») and distribution queues (settings
right «users»). Writes go through ``intake.forms`` and ``distribution.actions``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from voronka.core import policies
from voronka.core.errors import ActionError
from voronka.distribution import actions as distribution
from voronka.distribution.models import Queue
from voronka.intake import forms
from voronka.intake.models import DuplicatePolicy, WebForm
from voronka.pipelines.models import Pipeline

from .views import actor_of, page

EXTRA_ROWS = 3


def _require(request, right: str):
    actor = actor_of(request)
    if not policies.can(actor, right, 0):
        raise DjangoPermissionDenied
    return actor


def _targets() -> list[tuple[str, str]]:
    from voronka.customfields.models import FieldDefinition
    from voronka.leads.models import Lead

    out = []
    for name in sorted(forms.TARGETS):
        if name in ("phones", "emails"):
            out.append((name, _("Phone") if name == "phones" else _("E-mail")))
        else:
            out.append((name, str(Lead._meta.get_field(name).verbose_name).capitalize()))
    for defn in FieldDefinition.objects.filter(entity_type_id=1).order_by("sort", "id"):
        out.append((f"custom.{defn.code}", defn.label))
    return out


def form_urls(request, form: WebForm) -> dict:
    url = request.build_absolute_uri(f"/f/{form.slug}/")
    return {"url": url, "script": f'<script src="{url}embed.js" async></script>',
            "iframe": f'<iframe src="{url}?embed=1" style="width:100%;min-height:560px;border:0" '
                      f'title="{form.name}"></iframe>'}


@login_required
def web_forms(request):
    _require(request, forms.SETTINGS)
    items = [(f, form_urls(request, f)) for f in WebForm.objects.order_by("name", "id")[:500]]
    return page(request, "ui/settings/web_forms.html", {"items": items}, nav="web_forms")


def _fields_from(post) -> list[dict]:
    fields = []
    for i in range(int(post.get("rows") or 0) if str(post.get("rows") or "").isdigit() else 0):
        if i > 60:
            break
        name = (post.get(f"f{i}-name") or "").strip()
        if not name or post.get(f"f{i}-delete"):
            continue
        field = {"name": name, "label": (post.get(f"f{i}-label") or "").strip() or name,
                 "type": post.get(f"f{i}-type") or "text", "maps_to": post.get(f"f{i}-maps_to") or "",
                 "required": post.get(f"f{i}-required") == "on"}
        options = [o.strip() for o in (post.get(f"f{i}-options") or "").split(",") if o.strip()]
        if field["type"] == "select" and options:
            field["options"] = options
        fields.append(field)
    return fields


def _form_data(post) -> dict:
    data = {k: (post.get(k) or "").strip() for k in ("slug", "name", "title", "description", "consent_text", "button",
                                                     "source", "stage", "duplicate_policy", "success_message",
                                                     "redirect_url", "language")}
    for key in ("pipeline", "queue"):
        value = (post.get(key) or "").strip()
        data[key] = int(value) if value.isdigit() and len(value) < 12 else None
    data["allowed_origins"] = [o.strip().rstrip("/") for o in (post.get("allowed_origins") or "").split() if o.strip()]
    data["is_active"] = post.get("is_active") == "on"
    if post.get("mode"):  # absent: unchanged (a new form: in the background)
        data["mode"] = post.get("mode").strip()
    data["fields"] = _fields_from(post)
    return data


@login_required
def web_form_edit(request, pk: int | None = None):
    actor = _require(request, forms.SETTINGS)
    form = WebForm.objects.filter(pk=pk).first() if pk else WebForm(is_active=True, fields=[
        {"name": "name", "label": _("Name"), "type": "text", "maps_to": "first_name", "required": True},
        {"name": "phone", "label": _("Phone"), "type": "tel", "maps_to": "phones", "required": True}])
    if form is None:
        raise Http404
    errors: dict = {}
    status = 200
    if request.method == "POST":
        data = _form_data(request.POST)
        try:
            saved = forms.update_form(actor, form.pk, **data) if form.pk else forms.create_form(actor, **data)
        except ActionError as exc:
            errors, status = exc.fields or {"__all__": [exc.message]}, 422
            messages.error(request, exc.message)
            for key, value in data.items():
                if key in ("pipeline", "queue"):
                    setattr(form, f"{key}_id", value)
                else:
                    setattr(form, key, value)
        else:
            messages.success(request, _("Saved."))
            return redirect("ui:web_form", pk=saved.pk)
    rows = list(form.fields or []) + [{} for _i in range(EXTRA_ROWS)]
    return page(request, "ui/settings/web_form.html", {
        "form_obj": form, "rows": rows, "errors": errors, "targets": _targets(), "types": forms.FIELD_TYPES,
        "policies": DuplicatePolicy.choices, "modes": WebForm.Mode.choices, "pipelines": Pipeline.objects.filter(entity_type_id=1, is_active=True),
        "queues": Queue.objects.filter(is_active=True).order_by("name"),
        "urls": form_urls(request, form) if form.pk else None}, nav="web_forms", status=status)


# --- distribution queues ---------------------------------------------------------------------------

@login_required
def queues(request):
    _require(request, distribution.SETTINGS)
    items = Queue.objects.order_by("name").prefetch_related("members__user")
    return page(request, "ui/settings/queues.html", {"items": items}, nav="queues")


@login_required
def queue_edit(request, pk: int | None = None):
    actor = _require(request, distribution.SETTINGS)
    queue = Queue.objects.filter(pk=pk).first() if pk else Queue(mode=Queue.Mode.ROUND_ROBIN)
    if queue is None:
        raise Http404
    users = list(get_user_model().objects.filter(is_active=True).order_by("last_name", "username"))
    status = 200
    if request.method == "POST":
        members = []
        for u in users:
            if request.POST.get(f"m{u.pk}") == "on":
                weight = (request.POST.get(f"w{u.pk}") or "1").strip()
                cap = (request.POST.get(f"c{u.pk}") or "").strip()
                members.append({"user": u.pk, "weight": int(weight) if weight.isdigit() and len(weight) < 6 else 1,
                                "cap": int(cap) if cap.isdigit() and len(cap) < 6 else None})
        cap = (request.POST.get("cap") or "").strip()
        data = {"name": (request.POST.get("name") or "").strip(), "mode": request.POST.get("mode") or "",
                "cap": int(cap) if cap.isdigit() and len(cap) < 6 else None,
                "is_active": request.POST.get("is_active") == "on",
                "working_hours": request.POST.get("working_hours") == "on"}
        try:
            if queue.pk:
                saved = distribution.update_queue(actor, queue.pk, **data)
                distribution.set_members(actor, saved.pk, members)
            else:
                saved = distribution.create_queue(actor, code=(request.POST.get("code") or "").strip(),
                                                  members=members, **data)
        except ActionError as exc:
            messages.error(request, "; ".join([exc.message, *(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())]))
            status = 422
            for key, value in data.items():
                setattr(queue, key, value)
        else:
            messages.success(request, _("Saved."))
            return redirect("ui:queue", pk=saved.pk)
    current = {m.user_id: m for m in queue.members.all()} if queue.pk else {}
    rows = [{"user": u, "member": current.get(u.pk)} for u in users]
    return page(request, "ui/settings/queue.html", {"queue": queue, "rows": rows, "modes": Queue.Mode.choices},
                nav="queues", status=status)


# --- intake sources and Telegram bots ----------------------------------------------------------------

@login_required
def intake_sources(request):
    from voronka.intake import sources
    from voronka.intake.models import IntakeSource, TelegramBot

    _require(request, sources.SETTINGS)
    bots = [(b, request.build_absolute_uri(f"/intake/telegram/{b.secret}/")) for b in TelegramBot.objects.order_by("name")]
    return page(request, "ui/settings/intake_sources.html", {
        "sources": IntakeSource.objects.select_related("queue", "pipeline").order_by("code"), "bots": bots},
        nav="intake_sources")


@login_required
def intake_source_edit(request, pk: int | None = None):
    from voronka.intake import sources
    from voronka.intake.models import IntakeSource

    actor = _require(request, sources.SETTINGS)
    src = IntakeSource.objects.filter(pk=pk).first() if pk else IntakeSource()
    if src is None:
        raise Http404
    status = 200
    if request.method == "POST":
        data = {k: (request.POST.get(k) or "").strip() for k in ("code", "name", "duplicate_policy", "stage")}
        for key in ("queue", "pipeline"):
            value = (request.POST.get(key) or "").strip()
            data[key] = int(value) if value.isdigit() and len(value) < 12 else None
        try:
            sources.save_source(actor, src.pk, **data)
        except ActionError as exc:
            messages.error(request, "; ".join([exc.message, *(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())]))
            status = 422
            for key, value in data.items():
                setattr(src, f"{key}_id" if key in ("queue", "pipeline") else key, value)
        else:
            messages.success(request, _("Saved."))
            return redirect("ui:intake_sources")
    return page(request, "ui/settings/intake_source.html", {
        "src": src, "policies": DuplicatePolicy.choices, "queues": Queue.objects.order_by("name"),
        "pipelines": Pipeline.objects.filter(entity_type_id=1, is_active=True)}, nav="intake_sources", status=status)


@login_required
def telegram_bot_edit(request, pk: int | None = None):
    from voronka.intake import sources
    from voronka.intake.models import TelegramBot

    actor = _require(request, sources.SETTINGS)
    bot = TelegramBot.objects.filter(pk=pk).first() if pk else TelegramBot(source="telegram", is_active=True)
    if bot is None:
        raise Http404
    status = 200
    if request.method == "POST":
        data = {k: (request.POST.get(k) or "").strip() for k in ("name", "source", "header_token")}
        data["is_active"] = request.POST.get("is_active") == "on"
        try:
            sources.save_bot(actor, bot.pk, **data)
        except ActionError as exc:
            messages.error(request, "; ".join([exc.message, *(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())]))
            status = 422
            for key, value in data.items():
                setattr(bot, key, value)
        else:
            messages.success(request, _("Saved."))
            return redirect("ui:intake_sources")
    webhook = request.build_absolute_uri(f"/intake/telegram/{bot.secret}/") if bot.pk else ""
    return page(request, "ui/settings/telegram_bot.html", {"bot": bot, "webhook": webhook}, nav="intake_sources",
                status=status)
