"""Intake screens: the at-work/away switch, the intake log with filters and replay, intake mailboxes, the
duplicates list and the merge screen. Reads go through selectors/rights, writes through the intake and
distribution actions."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from voronka.core import policies
from voronka.core.errors import ActionError, NotFound
from voronka.core.selectors import get_record_for, records_visible_to
from voronka.distribution import actions as distribution
from voronka.intake import actions as intake
from voronka.intake import duplicates, mail
from voronka.intake.models import DuplicateMark, IntakeLog, Mailbox

from .entities import by_url
from .views import action_error, actor_of, page

LOG_PAGE = 50


def _back(request, default: str):
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        target = ""
    return redirect(target or default)


# --- presence ----------------------------------------------------------------------------------------

@login_required
@require_POST
def presence(request):
    """At work / away (F14): only present members of a queue get new items; coming back picks up free ones."""
    actor = actor_of(request)
    present = request.POST.get("present") == "1"
    try:
        distribution.set_presence(actor, present)
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("You are at work: new requests come to you.") if present
                          else _("You are away: new requests go to your colleagues."))
    return _back(request, reverse("ui:home"))


@login_required
def free_items(request):
    """Free requests waiting in the caller's queues (nobody present could take them): a member sees their
    title and source and may take one; everything else about them opens once it is theirs."""
    from voronka.core import entity_types
    from voronka.distribution.models import FreeItem, QueueMember

    actor = actor_of(request)
    queues = list(QueueMember.objects.filter(user_id=actor.user_id, queue__is_active=True).values_list("queue_id", flat=True))
    items = list(FreeItem.objects.filter(queue_id__in=queues).select_related("queue").order_by("id")[:200])
    rows = []
    for t in {i.entity_type_id for i in items}:
        info = entity_types.get(t)
        objs = info.model.objects.filter(pk__in=[i.entity_id for i in items if i.entity_type_id == t],
                                         deleted_at__isnull=True, responsible__isnull=True)
        found = {o.pk: o for o in objs}
        for item in items:
            if item.entity_type_id == t and item.entity_id in found:
                rows.append({"item": item, "obj": found[item.entity_id], "kind": f"{info.code}s",
                             "source": getattr(found[item.entity_id], "source", "")})
    rows.sort(key=lambda r: r["item"].pk)
    return page(request, "ui/free_items.html", {"rows": rows, "member": bool(queues)}, nav="free")


# --- the intake log ----------------------------------------------------------------------------------

def _require(request, right: str):
    actor = actor_of(request)
    if not policies.can(actor, right, 0):
        raise DjangoPermissionDenied
    return actor


@login_required
def intake_log(request):
    _require(request, intake.SETTINGS)
    qs = IntakeLog.objects.all()
    filters = {k: (request.GET.get(k) or "").strip() for k in ("channel", "status", "source", "before")}
    if filters["channel"] in IntakeLog.Channel.values:
        qs = qs.filter(channel=filters["channel"])
    if filters["status"] in IntakeLog.Status.values:
        qs = qs.filter(status=filters["status"])
    if filters["source"]:
        qs = qs.filter(source=filters["source"][:50])
    if filters["before"].isdigit():
        qs = qs.filter(pk__lt=int(filters["before"]))
    rows = list(qs.order_by("-id")[:LOG_PAGE + 1])
    more = rows[LOG_PAGE].pk if len(rows) > LOG_PAGE else None
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v and k != "before")
    return page(request, "ui/settings/intake_log.html", {
        "rows": rows[:LOG_PAGE], "filters": filters, "more": more, "query": query,
        "channels": IntakeLog.Channel.choices, "statuses": IntakeLog.Status.choices,
        "queued": intake.queued_stats()}, nav="intake_log")


@login_required
def intake_log_entry(request, pk: int):
    _require(request, intake.SETTINGS)
    entry = IntakeLog.objects.filter(pk=pk).first()
    if entry is None:
        raise Http404
    raw = entry.raw
    if entry.channel == IntakeLog.Channel.MAIL and raw:
        raw = mail.raw_bytes(entry)[:200_000].decode("utf-8", "replace")
    return page(request, "ui/settings/intake_entry.html", {"entry": entry, "raw": raw}, nav="intake_log")


@login_required
@require_POST
def intake_replay(request, pk: int):
    actor = _require(request, intake.SETTINGS)
    try:
        result = intake.replay(actor, pk, force=request.POST.get("force") == "1")
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Replayed: %(status)s. %(reason)s") % {
            "status": result.get_status_display(), "reason": result.reason})
    return _back(request, reverse("ui:intake_entry", args=[pk]))


# --- mailboxes ---------------------------------------------------------------------------------------

MAILBOX_FORM_FIELDS = ("name", "kind", "source", "imap_host", "imap_port", "imap_login", "imap_password",
                       "imap_folder", "poll_seconds", "recipients")


def _mailbox_data(post) -> dict:
    data = {k: (post.get(k) or "").strip() for k in MAILBOX_FORM_FIELDS}
    for key in ("imap_port", "poll_seconds"):
        value = data[key]
        data[key] = int(value) if value.isdigit() and len(value) < 9 else (-1 if value else None)
        if data[key] is None:
            data.pop(key)
    data["imap_tls"] = post.get("imap_tls") == "on"
    data["is_active"] = post.get("is_active") == "on"
    return data


@login_required
def mailboxes(request):
    actor = _require(request, mail.SETTINGS)
    return page(request, "ui/settings/mailboxes.html", {"boxes": mail.mailboxes_for(actor).order_by("name", "id"),
                                                        "kinds": Mailbox.Kind.choices}, nav="mailboxes")


@login_required
def mailbox_edit(request, pk: int | None = None):
    actor = _require(request, mail.SETTINGS)
    box = Mailbox.objects.filter(pk=pk).first() if pk else Mailbox(kind=request.GET.get("kind") or "imap")
    if box is None:
        raise Http404
    errors: dict = {}
    status = 200
    if request.method == "POST":
        data = _mailbox_data(request.POST)
        try:
            saved = mail.update_mailbox(actor, box.pk, **data) if box.pk else mail.create_mailbox(actor, **data)
        except ActionError as exc:
            errors, status = exc.fields or {"__all__": [exc.message]}, 422
            messages.error(request, exc.message)
            for key, value in data.items():  # show what was typed
                if key != "imap_password" and hasattr(box, key):
                    setattr(box, key, value if key != "recipients" else [v for v in str(value).split(",") if v])
        else:
            messages.success(request, _("Saved."))
            return redirect("ui:mailbox", pk=saved.pk)
    return page(request, "ui/settings/mailbox.html", {"box": box, "errors": errors, "kinds": Mailbox.Kind.choices},
                nav="mailboxes", status=status)


# --- duplicates and merge ----------------------------------------------------------------------------

@login_required
def duplicates_list(request, kind: str):
    """Records created with a possible duplicate (policy «flag») that nobody has merged or dismissed yet."""
    ui = by_url(kind)
    actor = actor_of(request)
    if not policies.can(actor, policies.READ, ui.type_id):
        raise Http404
    marks = list(DuplicateMark.objects.filter(entity_type_id=ui.type_id, resolved_at__isnull=True).order_by("-id")[:300])
    visible = {o.pk: o for o in records_visible_to(actor, ui.type_id).filter(pk__in=[m.entity_id for m in marks])}
    rows = []
    for mark in marks:
        obj = visible.get(mark.entity_id)
        if obj is None:
            continue
        same = [m["id"] for m in mark.matches if m.get("entity_type_id") == ui.type_id]
        rows.append({"mark": mark, "obj": obj, "same": same, "others": len(mark.matches) - len(same),
                     "ids": ",".join(str(i) for i in [obj.pk, *same])})
    return page(request, "ui/records/duplicates.html", {"ui": ui, "rows": rows[:100]}, nav=ui.url)


@login_required
def find_duplicates(request, kind: str, pk: int):
    """The card's «find duplicates»: records of the same kind like this one, to pick and merge."""
    from voronka.parties.models import Communication

    ui = by_url(kind)
    actor = actor_of(request)
    try:
        obj = get_record_for(actor, ui.type_id, pk)
    except NotFound:
        raise Http404 from None
    comms = Communication.objects.filter(entity_type_id=ui.type_id, entity_id=pk)
    name = getattr(obj, "full_name", "") or getattr(obj, "name", "") or ""
    company = getattr(obj, "company_name", "") or (obj.name if ui.code == "company" else "")
    matches = duplicates.find_for(actor, phones=[c.normalized for c in comms if c.kind == "phone"],
                                  emails=[c.normalized for c in comms if c.kind == "email"],
                                  name=name if ui.code != "company" else "", company=company,
                                  types=(ui.type_id,)) if ui.type_id in (1, 2, 3, 4) else []
    matches = [m for m in matches if m.id != obj.pk]
    return page(request, "ui/records/find_duplicates.html", {"ui": ui, "obj": obj, "matches": matches}, nav=ui.url)


def _field_rows(ui, spec, records: list) -> list[dict]:
    from voronka.customfields.models import FieldDefinition

    model = spec.model
    skip = {"responsible", "pipeline", "stage", "is_open", "created_by", "lead", "custom"}
    rows = []
    for name in spec.writable:
        if name in skip:
            continue
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        values = [getattr(r, name) for r in records]
        if all(v in (None, "") for v in values) or len({str(v) for v in values}) == 1:
            continue  # nothing to choose
        rows.append({"name": name, "label": str(field.verbose_name).capitalize(),
                     "cells": [{"id": r.pk, "value": v} for r, v in zip(records, values, strict=True)]})
    for defn in FieldDefinition.objects.filter(entity_type_id=ui.type_id).order_by("sort", "id"):
        values = [(r.custom or {}).get(defn.code) for r in records]
        if all(v in (None, "", []) for v in values) or len({str(v) for v in values}) == 1:
            continue
        rows.append({"name": f"custom.{defn.code}", "label": defn.label,
                     "cells": [{"id": r.pk, "value": v} for r, v in zip(records, values, strict=True)]})
    return rows


@login_required
def merge(request, kind: str):
    """Merge two or more records: pick which one stays and, per field, whose value it keeps."""
    ui = by_url(kind)
    actor = actor_of(request)
    raw = request.POST.get("ids") or request.GET.get("ids") or ""
    ids = []
    for part in raw.replace(" ", "").split(","):
        if part.isdigit() and len(part) < 19 and int(part) not in ids:
            ids.append(int(part))
    ids = ids[:10]
    try:
        spec = duplicates.spec_for(ui.type_id)
        records = [get_record_for(actor, ui.type_id, i) for i in ids]
    except NotFound:
        raise Http404 from None
    except ActionError:
        raise Http404 from None
    if len(records) < 2:
        messages.error(request, _("Choose at least two records to merge."))
        return redirect("ui:records", kind=kind)
    rows = _field_rows(ui, spec, records)
    keep = request.POST.get("keep") or str(records[0].pk)
    if request.method == "POST":
        keep_id = int(keep) if keep.isdigit() and int(keep) in ids else None
        if keep_id is None:
            messages.error(request, _("Choose the record that stays."))
        else:
            values = {}
            for row in rows:
                chosen = request.POST.get(f"v:{row['name']}") or ""
                if chosen.isdigit() and int(chosen) in ids and int(chosen) != keep_id:
                    values[row["name"]] = int(chosen)
            try:
                duplicates.merge_records(actor, ui.type_id, keep_id, [i for i in ids if i != keep_id], values=values)
            except ActionError as exc:
                action_error(request, exc)
            else:
                messages.success(request, _("Merged: %(n)s records into #%(id)s.") % {"n": len(ids) - 1, "id": keep_id})
                return redirect("ui:card", kind=kind, pk=keep_id)
    can = all(policies.can(actor, policies.UPDATE, ui.type_id, r) for r in records)
    return page(request, "ui/records/merge.html", {"ui": ui, "records": records, "rows": rows, "keep": keep,
                                                   "ids": ",".join(map(str, ids)), "can_merge": can}, nav=ui.url)
