"""Web forms (F31): definitions (settings actions) and the handler that turns a submission into a lead."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import audit, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, ValidationFailed, from_django_validation

from . import duplicates
from .actions import (
    LEAD_FIELDS,
    UTM,
    Outcome,
    Prefound,
    Rejected,
    Routing,
    check,
    handler,
    intake_lead,
    note_of,
    presearch,
)
from .models import IntakeLog, WebForm

SETTINGS = "settings:forms"
HONEYPOT = "website"  # a field people never see; bots fill it
FIELD_TYPES = ("text", "tel", "email", "textarea", "number", "select")
TARGETS = set(LEAD_FIELDS) - set(UTM) | {"phones", "emails"}
FORM_FIELDS = ("slug", "name", "title", "description", "fields", "consent_text", "button", "source", "pipeline",
               "stage", "queue", "duplicate_policy", "mode", "success_message", "redirect_url", "allowed_origins", "language",
               "is_active")
MAX_VALUE = 5000


def _check_fields(fields) -> None:
    if not isinstance(fields, list) or not fields or len(fields) > 40:
        raise ValidationFailed(_("A form needs a list of 1 to 40 fields."), fields={"fields": [_("not valid")]})
    seen = set()
    for index, f in enumerate(fields):
        where = f"fields.{index}"
        if not isinstance(f, dict):
            raise ValidationFailed(_("Each field must be an object."), fields={where: [_("not valid")]})
        name, target = f.get("name"), f.get("maps_to")
        if not isinstance(name, str) or not name.isidentifier() or name in seen or name in (HONEYPOT, "consent"):
            raise ValidationFailed(_("Each field needs a unique name (letters, digits, _)."), fields={where: [_("name")]})
        seen.add(name)
        if not isinstance(target, str) or (target not in TARGETS and not target.startswith("custom.")):
            raise ValidationFailed(_("Field «%(n)s» maps to an unknown field.") % {"n": name}, fields={where: [_("maps_to")]})
        if f.get("type", "text") not in FIELD_TYPES:
            raise ValidationFailed(_("Unknown field type."), fields={where: [_("type")]})
        unknown = set(f) - {"name", "label", "type", "required", "maps_to", "options", "placeholder"}
        if unknown:
            raise ValidationFailed(_("Unknown keys in field «%(n)s».") % {"n": name}, fields={where: sorted(unknown)})


def _check_origins(origins) -> None:
    if not isinstance(origins, list) or not all(isinstance(o, str) and o.startswith(("http://", "https://"))
                                                and o.count("/") == 2 for o in origins):
        raise ValidationFailed(_("Allowed origins are addresses like https://example.ru (no path)."),
                               fields={"allowed_origins": [_("not valid")]})


def _apply(form: WebForm, data: dict) -> None:
    unknown = set(data) - set(FORM_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    for key, value in data.items():
        if key in ("pipeline", "queue"):
            setattr(form, f"{key}_id", value or None)
        else:
            setattr(form, key, value if value is not None else "")
    if "fields" in data:
        _check_fields(form.fields)
    if "allowed_origins" in data:
        _check_origins(form.allowed_origins)
    try:
        form.full_clean()
    except ValidationError as exc:
        raise from_django_validation(exc) from None


def create_form(actor: Actor, **data) -> WebForm:
    policies.require(actor, SETTINGS, 0)
    with transaction.atomic():
        if WebForm.objects.filter(slug=data.get("slug")).exists():
            raise Conflict(_("A form with this address exists."), fields={"slug": [_("taken")]})
        form = WebForm()
        data.setdefault("fields", [])
        data.setdefault("allowed_origins", [])
        _apply(form, data)
        form.save()
        audit.record(actor, "web_form.created", form=form.pk, slug=form.slug)
        outbox.emit(actor, "webform.created", None, form.pk)
        return form


def update_form(actor: Actor, form_id: int, **data) -> WebForm:
    policies.require(actor, SETTINGS, 0)
    with transaction.atomic():
        form = WebForm.objects.select_for_update().filter(pk=form_id).first()
        if form is None:
            raise NotFound(_("Web form #%(id)s does not exist.") % {"id": form_id})
        if "slug" in data and WebForm.objects.filter(slug=data["slug"]).exclude(pk=form.pk).exists():
            raise Conflict(_("A form with this address exists."), fields={"slug": [_("taken")]})
        _apply(form, data)
        form.save()
        outbox.emit(actor, "webform.updated", None, form.pk, {"changed": sorted(data)})
        return form


def origin_allowed(form: WebForm, origin: str) -> bool:
    return bool(origin) and origin.rstrip("/") in {o.rstrip("/") for o in form.allowed_origins or []}


def _first(value):
    if isinstance(value, list):
        value = value[0] if value else ""
    if value is None:
        return ""
    return value.strip() if isinstance(value, str) else str(value)


def check_form(entry: IntakeLog) -> tuple[dict, Routing, str]:
    """What a submission asks for: (lead data, routing, the note of its fields), or the ``ActionError`` that refuses
    it (the form inactive, the honeypot filled, a foreign site, the fields not valid). Reads nothing but the form
    (kept per process): the door of a form «in the background» runs only this. A payload the door has queued is
    processed even if the form was switched off since (it was accepted)."""
    form = entry.form
    if form is None or (not form.is_active and entry.status != IntakeLog.Status.QUEUED):
        raise Rejected(_("This form is not accepting submissions."), code="form_inactive")
    posted = entry.payload if isinstance(entry.payload, dict) else {}
    if _first(posted.get(HONEYPOT)):
        raise Rejected(_("The submission looks automated and was not accepted."), code="spam")
    origin = (entry.meta or {}).get("origin") or ""
    if origin and (entry.meta or {}).get("embedded") and not origin_allowed(form, origin):
        raise Rejected(_("This site may not send this form."), code="origin_not_allowed")
    errors: dict[str, list[str]] = {}
    data: dict = {}
    custom: dict = {}
    lines: list[tuple[str, str]] = []
    for f in form.fields:
        value = _first(posted.get(f["name"]))
        if len(value) > MAX_VALUE:
            errors[f["name"]] = [_("At most %(n)s characters.") % {"n": MAX_VALUE}]
            continue
        if not value:
            if f.get("required"):
                errors[f["name"]] = [_("This field is required.")]
            continue
        target = f["maps_to"]
        try:
            if target == "phones" or f.get("type") == "tel":
                duplicates.normalize_phone(value)
            if target == "emails" or f.get("type") == "email":
                duplicates.normalize_email(value)
        except ValidationError as exc:
            errors[f["name"]] = exc.messages
            continue
        if f.get("type") == "select" and f.get("options") and value not in f["options"]:
            errors[f["name"]] = [_("Choose one of the options.")]
            continue
        if target in ("phones", "emails"):
            data.setdefault(target, []).append(value)
        elif target.startswith("custom."):
            custom[target.removeprefix("custom.")] = value
        elif target in ("inquiry", "comment") and data.get(target):
            data[target] += "\n" + value
        else:
            data[target] = value
        lines.append((f.get("label") or f["name"], value))
    if form.consent_text and not _first(posted.get("consent")):
        errors["consent"] = [_("Please give your consent.")]
    if errors:
        raise ValidationFailed(_("Please correct the marked fields."), fields=errors)
    if custom:
        data["custom"] = custom
    meta = entry.meta or {}
    for key in UTM:
        value = _first(posted.get(key)) or _first((meta.get("utm") or {}).get(key))
        if value:
            data[key] = value[:255]
    who = " ".join(data.get(k, "") for k in ("last_name", "first_name") if data.get(k)) or data.get("company_name") \
        or (data.get("phones") or data.get("emails") or [""])[0]
    data.setdefault("title", f"{form.name}: {who}"[:255] if who else form.name[:255])
    routing = Routing.for_source(form.source, configured=True, policy=form.duplicate_policy, queue_id=form.queue_id,
                                 pipeline_id=form.pipeline_id, stage=form.stage)
    referrer = _first(posted.get("referrer")) or meta.get("referrer") or ""
    lines = [(_("Web form"), form.name), *lines, (_("Page"), referrer[:1000]),
             (_("Consent"), _("given") if form.consent_text else "")]
    return data, routing, note_of(lines)


def _presearch_form(entry: IntakeLog) -> Prefound:
    checked = check_form(entry)
    found = presearch(checked[0], checked[1])
    found.checked = checked
    return found


check(IntakeLog.Channel.FORM, presearch=_presearch_form)(check_form)


@handler(IntakeLog.Channel.FORM)
def handle_form(actor: Actor, entry: IntakeLog) -> Outcome:
    # checked before the transaction: by ``submit`` (at once), or with the presearch of a queued payload's batch
    prefound = getattr(entry, "prefound", None)
    checked = getattr(entry, "checked", None) or (prefound.checked if prefound is not None else None)
    data, routing, note = checked if checked else check_form(entry)
    form = entry.form
    events: list[dict] = []  # the outcome's events and this one, written in one statement
    outcome = intake_lead(actor, entry, data, routing, note=note, events=events)
    # for automation's «a web form is filled» trigger: the record it reached, and the open deals of a contact
    deals = outcome.deals if outcome.deals is not None else \
        duplicates.open_deal_ids(outcome.entity_type_id, outcome.entity_id)
    events.append(outbox.row(actor, "webform.submitted", outcome.entity_type_id, outcome.entity_id, {
        "form": form.pk, "slug": form.slug, "log": entry.pk, "status": outcome.status, "deals": deals}))
    outbox.emit_rows(events)
    return outcome
