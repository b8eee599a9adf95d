"""Lists, Kanban boards and record cards for leads, deals, contacts and companies (one code for all kinds)."""

from __future__ import annotations

import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from voronka.activities.selectors import tasks_on_record
from voronka.core import entity_types, policies
from voronka.core.errors import ActionError, NotFound, ValidationFailed
from voronka.core.normalize import normalize_email, normalize_phone
from voronka.core.recordkit import create_one, update_one
from voronka.core.selectors import (
    column_page,
    first_pages,
    get_record_for,
    keyset_page,
    records_visible_to,
    timeline_for,
)
from voronka.parties.communications import KEYS as COMM_KEYS
from voronka.parties.communications import values_of
from voronka.pipelines.models import Pipeline, Stage
from voronka.pipelines.totals import for_actor as totals_for

from .entities import BY_TYPE, EntityUI, by_url
from .pickers import MultiIdField, MultiRecordPicker, RecordPicker, bind_actor
from .views import action_error, actor_of, page

BOARD_PAGE = 20
CARD_OWN_FIELDS = ("id", "title", "opportunity", "currency", "stage_changed_at", "stage_id", "pipeline_id",
                   "responsible_id")
CARD_FIELDS = (*CARD_OWN_FIELDS, "responsible__first_name", "responsible__last_name", "responsible__username")
LIST_PAGE = 50
# too many rows for a drop-down: chosen by typing a name (``pickers``), sent as an id
FK_AS_ID = {"contact": entity_types.CONTACT, "company": entity_types.COMPANY, "lead": entity_types.LEAD}


# --- forms ---------------------------------------------------------------------------------------

def record_form(ui: EntityUI, fields, *, instance=None, data=None, prefix=None, actor=None) -> forms.ModelForm:
    """A form used to render and parse fields; the action validates and writes."""
    User = get_user_model()

    def callback(model_field, **kwargs):
        if model_field.name == "responsible":
            return forms.ModelChoiceField(queryset=User.objects.filter(is_active=True).order_by("last_name", "username"),
                                          required=False, label=model_field.verbose_name.capitalize())
        if model_field.name == "source":
            from voronka.leads.models import Source

            choices = [("", "—")] + list(Source.objects.filter(is_active=True).values_list("code", "name"))
            current = getattr(instance, "source", "") if instance is not None else ""
            if current and current not in dict(choices):
                choices.append((current, current))
            return forms.ChoiceField(choices=choices, required=False, label=model_field.verbose_name.capitalize())
        if model_field.name in FK_AS_ID:
            return forms.IntegerField(required=False, min_value=1, label=model_field.verbose_name.capitalize(),
                                      widget=RecordPicker(FK_AS_ID[model_field.name]))
        field = model_field.formfield(**kwargs)
        if field is not None:
            field.label = str(model_field.verbose_name).capitalize()
            if isinstance(field.widget, forms.DateInput):
                field.widget = forms.DateInput(attrs={"type": "date"})
            if isinstance(field.widget, forms.Textarea):
                field.widget.attrs["rows"] = 3
        return field

    # links chosen by id are plain form fields: the model form would try to put an id on a relation
    links = [n for n in fields if n in FK_AS_ID]
    form_class = forms.modelform_factory(ui.model, fields=[n for n in fields if n not in FK_AS_ID],
                                         formfield_callback=callback)
    initial = {}
    if instance is not None:
        for name in links:
            initial[name] = getattr(instance, f"{name}_id")
    form = form_class(data=data, instance=instance, initial=initial, prefix=prefix)
    if links:
        for name in links:
            form.fields[name] = callback(ui.model._meta.get_field(name))
        form.fields = {n: form.fields[n] for n in fields if n in form.fields} | {
            n: f for n, f in form.fields.items() if n not in fields}
    form.instance_before = instance
    if prefix is None:
        add_custom_fields(form, ui, instance)
    bind_actor(form, actor)
    return form


CUSTOM_PREFIX = "cf_"


def add_custom_fields(form, ui: EntityUI, instance) -> None:
    """The type's custom fields (of the record's pipeline too) as inputs named ``cf_<code>``; values go to the
    write path as text, which validates them (``customfields.validation``)."""
    from voronka.customfields.models import FieldDefinition
    from voronka.customfields.validation import definitions

    K = FieldDefinition.Kind
    values = (getattr(instance, "custom", None) or {}) if instance is not None else {}
    form.custom_codes = []
    form.custom_lines = set()  # multi-value fields typed one value per line
    for d in definitions(ui.type_id, getattr(instance, "pipeline_id", None)):
        name = f"{CUSTOM_PREFIX}{d.code}"
        label = d.label
        if d.multiple:
            _add_multi_field(form, d, values.get(d.code))
            continue
        if d.kind == K.LINK:
            field = forms.IntegerField(required=False, min_value=1, label=label,
                                       widget=RecordPicker(int((d.options or {}).get("entity_type_id") or 0)))
        elif d.kind == K.ENUM:
            field = forms.ChoiceField(choices=[("", "—"), *[(c["id"], c.get("label", c["id"]))
                                                           for c in (d.options or {}).get("choices", [])]],
                                      required=False, label=label)
        elif d.kind == K.BOOLEAN:
            field = forms.ChoiceField(choices=[("", "—"), ("yes", _("Yes")), ("no", _("No"))], required=False,
                                      label=label)
        elif d.kind == K.USER:
            User = get_user_model()
            field = forms.ChoiceField(choices=[("", "—"), *[(str(u.pk), str(u)) for u in User.objects.filter(
                is_active=True).order_by("last_name", "username")]], required=False, label=label)
        else:
            widget = {K.TEXT: forms.Textarea(attrs={"rows": 3}), K.DATE: forms.DateInput(attrs={"type": "date"}),
                      K.INTEGER: forms.NumberInput(), K.DECIMAL: forms.TextInput(attrs={"inputmode": "decimal"}),
                      K.DATETIME: forms.DateTimeInput(attrs={"type": "datetime-local"})}.get(d.kind, forms.TextInput())
            field = forms.CharField(required=False, label=label, widget=widget)
        value = values.get(d.code)
        if d.kind == K.BOOLEAN and value is not None:
            value = "yes" if value else "no"
        elif d.kind == K.MONEY and isinstance(value, dict):
            value = f"{value.get('amount')}|{value.get('currency')}"
        elif d.kind == K.DATETIME and isinstance(value, str):
            value = value[:16]
        form.fields[name] = field
        form.initial[name] = "" if value is None else str(value)
        form.custom_codes.append(d.code)


def _add_multi_field(form, d, value) -> None:
    """A multi-value custom field: several records (a picker), choices (check boxes), or one value per line."""
    from voronka.customfields.models import FieldDefinition

    K = FieldDefinition.Kind
    name = f"{CUSTOM_PREFIX}{d.code}"
    values = value if isinstance(value, list) else ([] if value in (None, "") else [value])
    if d.kind == K.LINK:
        field = MultiIdField(required=False, label=d.label,
                             widget=MultiRecordPicker(int((d.options or {}).get("entity_type_id") or 0)))
        initial = [str(v) for v in values]
    elif d.kind in (K.ENUM, K.USER):
        if d.kind == K.ENUM:
            choices = [(str(c["id"]), c.get("label", c["id"])) for c in (d.options or {}).get("choices", [])]
        else:
            choices = [(str(u.pk), str(u)) for u in get_user_model().objects.filter(is_active=True)
                       .order_by("last_name", "username")]
        field = forms.MultipleChoiceField(choices=choices, required=False, label=d.label,
                                          widget=forms.CheckboxSelectMultiple)
        initial = [str(v) for v in values]
    else:
        def text(v):
            if isinstance(v, dict) and "amount" in v:
                return f"{v.get('amount')}|{v.get('currency')}"
            if isinstance(v, bool):
                return "yes" if v else "no"
            return str(v)

        field = forms.CharField(required=False, label=d.label, widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": _("One value per line.")}))
        initial = "\n".join(text(v) for v in values)
        form.custom_lines.add(d.code)
    form.fields[name] = field
    form.initial[name] = initial
    form.custom_codes.append(d.code)


def custom_payload(form) -> dict:
    """Changed custom inputs as {code: text, a list for a multi-value field, or None}."""
    out = {}
    for code in getattr(form, "custom_codes", []):
        name = f"{CUSTOM_PREFIX}{code}"
        if name in form.changed_data:
            value = form.cleaned_data.get(name)
            if code in getattr(form, "custom_lines", ()):
                value = [v.strip() for v in (value or "").splitlines() if v.strip()]
            out[code] = value if value not in ("", None, []) else None
    return out


def form_payload(form, fields) -> dict:
    """Only the fields a person changed, as the action expects them (ids for links)."""
    data = {}
    for name in form.changed_data:
        if name not in fields:
            continue
        value = form.cleaned_data.get(name)
        if hasattr(value, "pk"):
            value = value.pk
        data[name] = value
    return data


def errors_to_form(form, exc: ActionError) -> None:
    for name, msgs in exc.fields.items():
        if name.startswith("custom."):
            name = CUSTOM_PREFIX + name.removeprefix("custom.")
        target = name if name in form.fields else None
        for m in msgs:
            form.add_error(target, m if target else f"{name}: {m}")
    if not exc.fields:
        form.add_error(None, exc.message)


# --- lists ---------------------------------------------------------------------------------------

def effective_params(request, ui: EntityUI, actor):
    """The request's filters, on top of a saved view (?view=ID, or the user's default view)."""
    from django.http import QueryDict

    from .selectors import views_for

    views = list(views_for(actor, ui.type_id))
    chosen = None
    ref = request.GET.get("view") or ""
    if ref.isdigit():
        chosen = next((v for v in views if v.pk == int(ref)), None)
    elif not any(k in request.GET for k in ("q", "stage", "responsible", "source", "semantics", "order", "cursor",
                                            "created_from", "created_to", "closed_from", "closed_to", "reached_stage", "with_deal", "columns",
                                            "company", "contact",
                                            "pipeline", "all")):
        chosen = next((v for v in views if v.is_default), None)
    params = QueryDict(mutable=True)
    if chosen is not None:
        for key, value in chosen.params.items():
            params.setlist(key, value if isinstance(value, list) else [value])
    for key in request.GET:
        if key != "view":
            params.setlist(key, request.GET.getlist(key))
    return params, views, chosen


def _filtered(request, ui: EntityUI, actor, f=None):
    qs = records_visible_to(actor, ui.type_id)
    f = f if f is not None else request.GET
    q = (f.get("q") or "").strip()
    if q:
        cond = Q()
        for name in ui.search:
            cond |= Q(**{f"{name}__icontains": q})
        ids = _ids_by_contact(ui, q)
        if ids is not None:
            cond |= Q(pk__in=ids)
        qs = qs.filter(cond)
    if ui.staged:
        pipelines = [int(v) for v in (f.get("pipeline") or "").split(",") if v.isdigit()]
        if pipelines:  # one pipeline, or several joined with commas (the support report's links)
            qs = qs.filter(pipeline_id__in=pipelines)
        stages = [int(v) for v in f.getlist("stage") if v.isdigit()]
        if stage_pinned(f):  # one stage on PostgreSQL: see ``stage_pinned``
            qs = qs.filter(stage_id__in=[stages[0], 0])
        elif stages:
            qs = qs.filter(stage_id__in=stages)
        semantics = f.get("semantics")
        if semantics in ("process", "success", "failure"):
            qs = qs.filter(stage_semantics=semantics)
        if (f.get("reached_stage") or "").isdigit():
            qs = qs.filter(pk__in=_reached(ui.type_id, int(f["reached_stage"])))
    if ui.type_id == entity_types.LEAD and f.get("with_deal") in ("any", "won"):
        # leads that became a (won) deal, whoever's the deal is: analytics' lead conversion opens these
        # (``deal_status`` is kept by every write to deals: 1 a live deal, 2 a live won deal)
        qs = qs.filter(deal_status=2) if f["with_deal"] == "won" else qs.filter(deal_status__gte=1)
    for party in ("company", "contact"):  # the records of one client (the support report's links)
        if ui.type_id in (entity_types.LEAD, entity_types.DEAL) and f.get(party):
            value = f[party]
            if value == "none":
                qs = qs.filter(**{f"{party}__isnull": True})
            elif value.isdigit():
                qs = qs.filter(**{f"{party}_id": int(value)})
    if (f.get("responsible") or "").isdigit():
        qs = qs.filter(responsible_id=int(f["responsible"]))
    if f.get("responsible") == "me":
        qs = qs.filter(responsible_id=actor.user_id)
    if f.get("responsible") == "none":
        qs = qs.filter(responsible__isnull=True)
    if f.get("source"):
        qs = qs.filter(source=f["source"])
    if (f.get("department") or "").isdigit():
        from voronka.identity.models import Department

        dept = Department.objects.filter(pk=int(f["department"])).first()
        ids = dept.descendant_ids() if dept else set()
        qs = qs.filter(responsible__department_id__in=sorted(ids))
    for key in f:
        if key.startswith("cf_") and f.get(key):
            code = key[3:]
            defn = next((d for d in _filterable(ui) if d.code == code), None)
            if defn is not None:
                value = f.get(key)
                if defn.kind == "boolean":
                    value = value in ("1", "true", "yes", "on")
                elif defn.kind == "integer" and value.lstrip("-").isdigit():
                    value = int(value)
                qs = qs.filter(**{f"custom__{code}__contains" if defn.multiple else f"custom__{code}":
                                  [value] if defn.multiple else value})
    for key, lookup in (("created_from", "created_at__date__gte"), ("created_to", "created_at__date__lte"),
                        ("closed_from", "closed_at__date__gte"), ("closed_to", "closed_at__date__lte")):
        if key.startswith("closed") and not ui.staged:
            continue
        value = f.get(key)
        if value:
            try:
                qs = qs.filter(**{lookup: datetime.date.fromisoformat(value)})
            except ValueError:
                messages.error(request, _("«%(v)s» is not a date.") % {"v": value})
    return qs


def _reached(type_id: int, stage_id: int):
    """Items that ever entered the stage or a later one of its pipeline, failures aside (analytics' funnel)."""
    from voronka.pipelines.models import Stage, StageHistory

    stage = Stage.objects.filter(pk=stage_id).first()
    if stage is None:
        return []
    later = [s.pk for s in Stage.objects.filter(pipeline_id=stage.pipeline_id).exclude(semantics="failure")
             if (s.sort, s.pk) >= (stage.sort, stage.pk)]
    return StageHistory.objects.filter(entity_type_id=type_id, to_stage_id__in=later).values("entity_id")


def _filterable(ui: EntityUI):
    """Custom fields a list can filter on: lists, yes/no, numbers and short text."""
    from voronka.customfields.models import FieldDefinition

    return list(FieldDefinition.objects.filter(entity_type_id=ui.type_id,
                                               kind__in=["enum", "boolean", "integer", "string"]))


def _ids_by_contact(ui: EntityUI, q: str):
    """Records whose phone or e-mail matches, typed in any format."""
    if not ui.has_communications:
        return None
    from voronka.parties.models import Communication

    values = []
    try:
        values.append(("phone", normalize_phone(q)))
    except DjangoValidationError:  # not a phone: fine
        pass
    if "@" in q:
        try:
            values.append(("email", normalize_email(q)))
        except DjangoValidationError:
            pass
    if not values:
        return None
    cond = Q()
    for kind, value in values:
        cond |= Q(kind=kind, normalized=value)
    return Communication.objects.filter(cond, entity_type_id=ui.type_id).values("entity_id")


def _columns(ui: EntityUI, names):
    meta = ui.model._meta
    labels = {}
    if any(c.startswith("custom.") for c in names):
        from voronka.customfields.validation import definitions

        labels = {f"custom.{d.code}": d.label for d in definitions(ui.type_id)}
    return [{"name": c, "label": labels.get(c, c) if c.startswith("custom.")
             else str(meta.get_field(c).verbose_name).capitalize()} for c in names]


def _select_related(ui: EntityUI, columns):
    return [c for c in ("stage", "responsible", "contact", "company", "lead") if c in columns]


def _roles():
    from voronka.identity.models import Role

    return Role.objects.order_by("name")


def _list_frame(ui: EntityUI) -> dict:
    """What a list screen shows around its rows, read once per process and settings: the pickers' users, the
    pipelines and stages, departments, sources, the filterable custom fields, the stages of «move to…».

    Kept behind the «crm» (pipelines, stages, fields, sources), «rights» (departments) and «tokens» (any save of
    a user) versions, so a change anywhere is seen by the next request of every process."""
    from voronka.core import config_cache

    v = config_cache.versions()
    return config_cache.cached(("ui-list-frame", ui.type_id), lambda: _build_frame(ui),
                               (v[config_cache.KEY], v[config_cache.RIGHTS], v[config_cache.TOKENS]))


def _build_frame(ui: EntityUI) -> dict:
    from voronka.identity.models import Department

    users = list(get_user_model().objects.filter(is_active=True).order_by("last_name", "username"))
    frame = {"users": users, "people": {u.pk: u for u in users}, "pipelines": [], "stages": {},
             "departments": list(Department.objects.order_by("name")), "sources": [], "custom": list(_filterable(ui)),
             "bulk_stages": "", "labels": {}}
    if ui.staged:
        stages = list(Stage.objects.filter(pipeline__entity_type_id=ui.type_id).select_related("pipeline")
                      .order_by("pipeline__sort", "pipeline_id", "sort", "id"))
        frame["stages"] = {s.pk: s for s in stages}
        active = [s for s in stages if s.pipeline.is_active]
        frame["pipelines"] = list({s.pipeline_id: s.pipeline for s in active}.values())
        frame["pipeline_stages"] = {p.pk: [s for s in active if s.pipeline_id == p.pk] for p in frame["pipelines"]}
        frame["bulk_stages"] = "".join(  # every value is escaped
            f'<option value="{s.pk}">{conditional_escape(s.pipeline.name)}: {conditional_escape(s.name)}</option>'
            for s in active)
    if ui.type_id == entity_types.LEAD:
        from voronka.leads.models import Source

        frame["sources"] = list(Source.objects.filter(is_active=True))
        frame["source_names"] = dict(Source.objects.values_list("code", "name"))
    return frame


def _options(items, chosen) -> str:
    """``<option>``s from (value, label) pairs, ``chosen`` a set of the selected values as strings."""
    return "".join(f'<option value="{conditional_escape(value)}"{" selected" if str(value) in chosen else ""}>'
                   f"{conditional_escape(label)}</option>" for value, label in items)


@login_required
def record_list(request, kind: str):
    from django.utils.safestring import mark_safe
    from django.utils.translation import get_language

    ui = by_url(kind)
    actor = actor_of(request)
    if not policies.can(actor, policies.READ, ui.type_id):
        return page(request, "ui/records/denied.html", {"ui": ui}, nav=ui.url, status=403)
    frame = _list_frame(ui)
    params, views, current_view = effective_params(request, ui, actor)
    custom_columns = _custom_columns(ui)
    choosable = (*ui.all_columns, *custom_columns)
    columns = [c for c in params.getlist("columns") if c in choosable] or _default_columns(ui, custom_columns)
    qs = _filtered(request, ui, actor, params)
    order = params.get("order") or "-id"
    if order not in ui.orders:
        order = "-id"
    lead = stage_pinned(params) if ui.staged else ()
    stages = sorted({int(v) for v in params.getlist("stage") if v.isdigit()}) if ui.staged else []
    parts = ("stage", stages) if 1 < len(stages) <= 20 else None
    meta = ui.model._meta
    related = tuple(c for c in columns if not c.startswith("custom.") and meta.get_field(c).is_relation)
    known = {"stage": frame["stages"], "responsible": frame["people"]}
    try:
        result = keyset_page(qs, order=order, cursor=request.GET.get("cursor") or None, limit=LIST_PAGE, lead=lead,
                             related=related, known=known, parts=parts)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
        result = keyset_page(qs, order=order, limit=LIST_PAGE, lead=lead, related=related, known=known, parts=parts)
    comms = values_of(ui.type_id, [r.pk for r in result.items]) if ui.has_communications else {}
    cell = _cell_maker(ui)
    rows = [{"obj": r, "cells": [cell(r, c) for c in columns], "comms": comms.get(r.pk)} for r in result.items]
    if "source" in columns:
        names = frame.get("source_names", {})
        index = columns.index("source")
        for row in rows:
            row["cells"][index]["text"] = names.get(row["cells"][index]["text"], row["cells"][index]["text"])
    query = params.copy()
    query.pop("cursor", None)
    from .rows import render_rows

    rows_html = render_rows(rows, reverse("ui:card", kwargs={"kind": ui.url, "pk": 0})[:-2], ui.has_communications)
    if request.htmx and request.GET.get("cursor"):
        return HttpResponse(render_to_string("ui/records/_rows.html", {"rows_html": rows_html,
                                                                      "next_cursor": result.next_cursor,
                                                                      "query": query.urlencode()}, request))
    labels = frame["labels"].get(get_language())
    if labels is None:  # column labels per language (verbose names are lazy translations)
        labels = frame["labels"][get_language()] = {c["name"]: c for c in _columns(ui, choosable)}
    can_share = policies.can(actor, "settings:roles", 0)
    context = {"ui": ui, "columns": [labels[c] for c in columns], "rows": rows, "rows_html": rows_html,
               "next_cursor": result.next_cursor,
               "query": query.urlencode(), "filters": _filter_options(ui, actor, params, frame), "order": order,
               "views": views, "current_view": current_view, "chosen_columns": columns,
               "all_columns": [labels[c] for c in choosable], "can_share": can_share,
               "roles": _roles() if can_share else [],
               "bulk_stages": mark_safe(frame["bulk_stages"]), "users": frame["users"]}
    return page(request, "ui/records/list.html", context, nav=ui.url)


def _custom_columns(ui: EntityUI) -> tuple[str, ...]:
    """Custom fields as list columns (``custom.<code>``): every type-wide single-value field."""
    from voronka.customfields.validation import definitions

    return tuple(f"custom.{d.code}" for d in definitions(ui.type_id) if not d.multiple and d.pipeline_id is None)


def _default_columns(ui: EntityUI, custom_columns) -> list[str]:
    if ui.extra.get("list"):  # a custom list is its fields: show them after the title
        return [ui.columns[0], *custom_columns[:6], *ui.columns[1:]]
    return list(ui.columns)


def _cell_maker(ui: EntityUI):
    """``cell(obj, name)`` for a list row: a model instance or a ``BoardRow`` (choices read from the field)."""
    meta = ui.model._meta
    choices = {f.name: dict(f.flatchoices) for f in meta.fields if f.choices}

    def cell(obj, name: str):
        if name in choices:
            value = getattr(obj, name)
            return {"text": str(choices[name].get(value, "" if value is None else value))}
        return _cell(obj, name)
    return cell


def _cell(obj, name: str):
    if name.startswith("custom."):
        value = (obj.custom or {}).get(name.removeprefix("custom."))
        if isinstance(value, dict) and "amount" in value:
            return {"money": value["amount"], "currency": value.get("currency", "")}
        if isinstance(value, bool):
            return {"text": _("Yes") if value else _("No")}
        return {"text": "" if value is None else str(value)}
    value = getattr(obj, name)
    if name == "title" or name in ("name", "last_name"):
        return {"link": True, "text": value or "—"}
    if name == "opportunity":
        return {"money": value if value else None, "currency": obj.currency}
    if name == "stage":
        return {"stage": value}
    if hasattr(value, "isoformat"):
        return {"date": value}
    return {"text": "" if value is None else str(value)}


def _filter_options(ui: EntityUI, actor, params, frame: dict) -> dict:
    from django.utils.safestring import mark_safe

    chosen_stages = set(params.getlist("stage"))
    stage_html = "".join(  # every value is escaped by _options
        f'<optgroup label="{conditional_escape(p.name)}">'
        f'{_options(((s.pk, s.name) for s in frame["pipeline_stages"][p.pk]), chosen_stages)}</optgroup>'
        for p in frame["pipelines"]) if ui.staged else ""
    return {"users": frame["users"], "values": params, "stages": params.getlist("stage"),
            "pipelines": frame["pipelines"], "stage_options": mark_safe(stage_html),
            "sources": frame["sources"],
            "source_options": mark_safe(_options(((s.code, s.name) for s in frame["sources"]),
                                                 {params.get("source") or ""})),
            "departments": frame["departments"],
            "department_options": mark_safe(_options(((d.pk, d.name) for d in frame["departments"]),
                                                     {params.get("department") or ""})),
            "custom": [{"d": d, "name": f"cf_{d.code}", "value": params.get(f"cf_{d.code}", ""),
                        "choices": d.options.get("choices", [])} for d in frame["custom"]]}


# --- boards --------------------------------------------------------------------------------------

def stage_pinned(params) -> tuple[str, ...]:
    """The leading ORDER BY of a list filtered to one stage on PostgreSQL: ``("-stage_id",)``.

    With «stage = n» the planner drops the stage from the order and may walk the primary key (or the
    creation-date index) backwards, filtering by stage, on the assumption that a stage's rows are spread
    evenly; they are not (a stage of old records: 26,724 rows read for 51, 74 ms cold at 1M). The filter then
    says «stage in (n, 0)» (no stage has id 0) and the order leads with the stage, which only the (stage, …)
    indexes give."""
    from django.db import connection

    stages = [v for v in params.getlist("stage") if v.isdigit()]
    return ("-stage_id",) if len(stages) == 1 and connection.vendor == "postgresql" else ()


def _pipelines_for(request, ui: EntityUI) -> tuple[Pipeline | None, list[Pipeline]]:
    """The board's pipeline (asked for, else the default, else the first) and the switcher's list, in one query."""
    pipelines = list(Pipeline.objects.filter(entity_type_id=ui.type_id, is_active=True).order_by("sort", "id"))
    ref = request.GET.get("pipeline") or ""
    chosen = next((p for p in pipelines if ref.isdigit() and p.pk == int(ref)), None)
    chosen = chosen or next((p for p in pipelines if p.is_default), None) or (pipelines[0] if pipelines else None)
    return chosen, pipelines


def _cards(ui: EntityUI, objs, overdue: set | None = None) -> list[dict]:
    if overdue is None:
        overdue = _overdue(ui, [o.pk for o in objs])
    now = timezone.now()
    return [{"obj": o, "overdue": o.pk in overdue, "in_stage": now - o.stage_changed_at} for o in objs]


def _overdue(ui: EntityUI, ids) -> set:
    from voronka.activities.selectors import overdue_among

    return overdue_among(ui.type_id, ids)


def _card_base(ui: EntityUI) -> str:
    return reverse("ui:card", kwargs={"kind": ui.url, "pk": 0})[:-2]


@login_required
def board(request, kind: str):
    ui = by_url(kind)
    actor = actor_of(request)
    if not ui.staged:
        return redirect("ui:records", kind=kind)
    if not policies.can(actor, policies.READ, ui.type_id):
        return page(request, "ui/records/denied.html", {"ui": ui}, nav=ui.url, status=403)
    pipeline, pipelines = _pipelines_for(request, ui)
    if pipeline is None:
        return page(request, "ui/records/board.html", {"ui": ui, "pipeline": None, "columns": []}, nav=ui.url)
    params, views, current_view = effective_params(request, ui, actor)
    only = {int(v) for v in params.getlist("stage") if v.isdigit()}
    stages = [s for s in pipeline.stages.order_by("sort", "id") if not only or s.pk in only]
    sums = totals_for(actor, ui.type_id, pipeline.pk)
    filtered = any(params.get(k) for k in ("q", "responsible", "source", "department"))
    base = _filtered(request, ui, actor, params).filter(pipeline=pipeline).select_related("responsible").only(
        *CARD_FIELDS)
    from .rows import render_cards, render_columns

    users = list(get_user_model().objects.filter(is_active=True).order_by("last_name", "username").only(
        "id", "username", "first_name", "last_name"))  # the filter's select, and most cards' responsibles
    by_stage = first_pages(base.select_related(None).only(*CARD_OWN_FIELDS), "stage", [s.pk for s in stages],
                           limit=BOARD_PAGE, related=("responsible",),
                           known={"responsible": {u.pk: u for u in users}})  # one query on PostgreSQL
    pages = [(stage, by_stage[stage.pk]) for stage in stages]
    overdue = _overdue(ui, [o.pk for _stage, result in pages for o in result.items])  # one query for the board
    card_base = _card_base(ui)
    memo: dict = {}
    columns = []
    for stage, result in pages:
        total = sums.get(stage.pk, {"count": 0, "amounts": {}})
        if filtered:  # the read model knows no filters: count what the filter leaves, up to a bound
            from .views import bounded_count

            count, more = bounded_count(base.filter(stage=stage))
            total = {"count": f"{count}+" if more else count, "amounts": {}}
        columns.append({"stage": stage, "cards_html": render_cards(_cards(ui, result.items, overdue), stage.pk, card_base, memo),
                        "next_cursor": result.next_cursor, "count": total["count"],
                        "amounts": sorted(total["amounts"].items())})
    can_add = policies.can(actor, policies.ADD, ui.type_id, pipeline_id=pipeline.pk)
    create_url = reverse("ui:create", kwargs={"kind": ui.url})
    columns_html = render_columns(columns, more_base=reverse("ui:board", kwargs={"kind": ui.url}),
                                  quick_add_url=f"{create_url}?pipeline={pipeline.pk}" if can_add else None)
    return page(request, "ui/records/board.html", {
        "ui": ui, "pipeline": pipeline, "columns_html": columns_html, "pipelines": pipelines,
        "away": _away(actor, ui, pipeline, pipelines),
        "can_add": can_add, "views": views, "current_view": current_view, "filters": {"values": params},
        "users": users,
    }, nav=ui.url)


def _away(actor, ui: EntityUI, pipeline, pipelines) -> list[dict]:
    """Drop zones «move to another pipeline» under the board: each other pipeline the user may add to, with the
    stage a card dropped there enters (its first); the stage's required fields are asked as for any move."""
    others = [p for p in pipelines if p.pk != pipeline.pk
              and policies.can(actor, policies.ADD, ui.type_id, pipeline_id=p.pk)]
    if not others:
        return []
    first = {}
    for stage in Stage.objects.filter(pipeline__in=others).order_by("sort", "id"):
        first.setdefault(stage.pipeline_id, stage)
    return [{"pipeline": p, "stage": first[p.pk]} for p in others if p.pk in first]


@login_required
def board_more(request, kind: str, stage_id: int):
    ui = by_url(kind)
    actor = actor_of(request)
    stage = Stage.objects.filter(pk=stage_id, pipeline__entity_type_id=ui.type_id).first()
    if stage is None:
        return HttpResponse(status=404)
    base = records_visible_to(actor, ui.type_id).select_related("responsible").only(*CARD_FIELDS)
    try:
        result = column_page(base, "stage", stage.pk, cursor=request.GET.get("cursor"), limit=BOARD_PAGE)
    except ValidationFailed as exc:
        return HttpResponse(exc.message, status=400)
    from .rows import render_cards, render_more

    html = render_cards(_cards(ui, result.items), stage.pk, _card_base(ui))
    more = render_more(reverse("ui:board_more", kwargs={"kind": ui.url, "stage_id": stage.pk}), result.next_cursor)
    return HttpResponse(html + more)


@login_required
@require_POST
def move(request, kind: str, pk: int):
    """Drag and drop or the stage bar: move, or say why not (with a small form for required fields)."""
    ui = by_url(kind)
    actor = actor_of(request)
    stage_ref = request.POST.get("stage", "")
    stage = Stage.objects.filter(pk=int(stage_ref)).select_related("pipeline").first() if stage_ref.isdigit() else None
    if stage is None or stage.pipeline.entity_type_id != ui.type_id:
        return JsonResponse({"ok": False, "message": _("No such stage.")}, status=400)
    fields = {}
    missing_form = None
    required_names = list(stage.required_fields or [])
    ask = [n for n in (stage.ask_fields or []) if n not in required_names]
    if ask and not request.POST.get("with_fields"):  # optional fields asked on entry: the form comes first (F23)
        asked = _ask_first(request, ui, actor, stage, pk, ask)
        if asked is not None:
            return asked
    if request.POST.get("with_fields"):
        missing_form = record_form(ui, [n for n in (*required_names, *ask) if n in _model_fields(ui)],
                                   data=request.POST, prefix="req")
        for name in ask:
            if name in missing_form.fields:
                missing_form.fields[name].required = False
        if missing_form.is_valid():
            fields = form_payload(missing_form, missing_form.fields)
            for name in missing_form.fields:
                fields.setdefault(name, form_payload_value(missing_form, name))
            for name in ask:  # an optional field left empty changes nothing
                if fields.get(name) in (None, "", []):
                    fields.pop(name, None)
            for name, value in fields.items():  # dates as the action takes them (a date object is «a wrong type»)
                if isinstance(value, datetime.date):
                    fields[name] = value.isoformat()
        elif any(name in missing_form.errors for name in ask):  # a bad optional value: the form again, with why
            exc = ValidationFailed(_("Some fields are not valid."),
                                   fields={k: [str(m) for m in v] for k, v in missing_form.errors.items()})
            html = render_to_string("ui/records/_required_form.html", {
                "ui": ui, "stage": stage, "pk": pk, "message": exc.message,
                "fields": _required_inputs(ui, [*required_names, *ask], exc, optional=set(ask))}, request)
            return JsonResponse({"ok": False, "needs_fields": True, "html": html, "message": exc.message}, status=422)
        custom = {k.removeprefix("req-custom-"): v for k, v in request.POST.items() if k.startswith("req-custom-") and v}
        if custom:
            fields["custom"] = custom
        for key in ("phones", "emails"):
            if request.POST.get(f"req-{key}"):
                fields[key] = [request.POST[f"req-{key}"]]
    try:
        obj = update_one(actor, ui.spec, pk, {"stage": stage.pk, "pipeline": stage.pipeline_id, **fields})
    except ValidationFailed as exc:
        required = [n for n in exc.fields if n in (stage.required_fields or [])]
        if required:
            html = render_to_string("ui/records/_required_form.html", {
                "ui": ui, "stage": stage, "pk": pk, "message": exc.message,
                "fields": _required_inputs(ui, required, exc)}, request)
            return JsonResponse({"ok": False, "needs_fields": True, "html": html, "message": exc.message}, status=422)
        return JsonResponse({"ok": False, "message": _message(exc)}, status=422)
    except ActionError as exc:
        return JsonResponse({"ok": False, "message": _message(exc)}, status=exc.status)
    if request.headers.get("Accept", "").startswith("text/html"):
        return redirect("ui:card", kind=kind, pk=pk)
    return JsonResponse({"ok": True, "stage": obj.stage_id, "message": _("Moved to «%(s)s».") % {"s": stage.name}})


def _ask_first(request, ui: EntityUI, actor, stage, pk: int, ask: list[str]):
    """The form before a move into a stage that asks optional fields on entry: its missing required fields (required)
    and the optional ones (filled with the record's values); ``None`` when there is nothing to ask (the record is
    already there, or the user may not change it: the move itself then answers)."""
    from voronka.pipelines.stages import missing_required

    obj = records_visible_to(actor, ui.type_id).filter(pk=pk).first()
    if obj is None:
        return JsonResponse({"ok": False, "message": _("Not found.")}, status=404)
    if obj.stage_id == stage.pk or not policies.can(actor, policies.UPDATE, ui.type_id, obj):
        return None
    required = missing_required(obj, stage)
    html = render_to_string("ui/records/_required_form.html", {
        "ui": ui, "stage": stage, "pk": pk, "asking": True,
        "fields": _required_inputs(ui, [*required, *ask], None, optional=set(ask), obj=obj)}, request)
    return JsonResponse({"ok": False, "needs_fields": True, "html": html,
                         "message": _("Fill in the fields for «%(s)s».") % {"s": stage.name}}, status=422)


def form_payload_value(form, name):
    value = form.cleaned_data.get(name)
    return value.pk if hasattr(value, "pk") else value


def _model_fields(ui: EntityUI) -> set[str]:
    return {f.name for f in ui.model._meta.fields}


_INPUT_TYPES = {"integer": "number", "decimal": "number", "money": "number", "date": "date",
                "datetime": "datetime-local"}


def _required_inputs(ui: EntityUI, names, exc, *, optional=frozenset(), obj=None) -> list[dict]:
    """The inputs of the form before a move: ``names`` in order; those in ``optional`` (asked on entry, never
    required) are not marked required and show ``obj``'s current values."""
    from voronka.customfields.models import FieldDefinition

    errors = exc.fields if exc is not None else {}
    inputs = []
    model_names = _model_fields(ui)
    plain = [n for n in names if n in model_names]
    form = record_form(ui, plain, prefix="req", instance=obj if optional else None) if plain else None
    for name in names:
        error = "; ".join(errors.get(name, []))
        if form is not None and name in form.fields:
            form.fields[name].required = name not in optional  # the browser says which must be filled
            inputs.append({"bound": form[name], "error": error, "optional": name in optional})
        elif name in ("phones", "emails"):
            inputs.append({"name": f"req-{name}", "label": _("Phone") if name == "phones" else _("E-mail"),
                           "error": error, "optional": name in optional})
        else:
            code = name.removeprefix("custom.")
            defn = FieldDefinition.objects.filter(entity_type_id=ui.type_id, code=code).first()
            kind = defn.kind if defn else "string"
            value = (obj.custom or {}).get(code) if obj is not None and name in optional else None
            inputs.append({"name": f"req-custom-{code}", "label": defn.label if defn else code,
                           "kind": kind, "input_type": _INPUT_TYPES.get(kind, "text"),
                           "choices": (defn.options or {}).get("choices", []) if kind == "enum" else [],
                           "error": error, "optional": name in optional,
                           "value": "" if value is None or isinstance(value, (list, dict)) else str(value)})
    return inputs


def _message(exc: ActionError) -> str:
    detail = "; ".join(f"{', '.join(v)}" for v in exc.fields.values())
    return f"{exc.message} {detail}".strip()


# --- cards ---------------------------------------------------------------------------------------

@login_required
def card(request, kind: str, pk: int):
    ui = by_url(kind)
    actor = actor_of(request)
    try:
        obj = get_record_for(actor, ui.type_id, pk)
    except NotFound:
        return page(request, "ui/records/not_found.html", {"ui": ui}, nav=ui.url, status=404)
    can_update = policies.can(actor, policies.UPDATE, ui.type_id, obj)
    form = record_form(ui, ui.card_fields, instance=obj, data=request.POST if request.method == "POST" else None,
                       actor=actor)
    if request.method == "POST":
        if not can_update:
            messages.error(request, _("You may not change this record."))
        elif form.is_valid():
            payload = form_payload(form, ui.card_fields)
            custom = custom_payload(form)
            if custom:
                payload["custom"] = custom
            if ui.has_communications:
                stored = values_of(ui.type_id, [pk])[pk]
                for key, kind in COMM_KEYS.items():
                    if f"{key}_text" in request.POST:
                        lines = _comm_lines(kind, request.POST[f"{key}_text"], stored[kind])
                        if lines != [{"value": c.value, "type": c.value_type} for c in stored[kind]]:
                            payload[key] = lines  # unchanged boxes are left out (a company's site may change)
            try:
                update_one(actor, ui.spec, pk, payload)
            except ActionError as exc:
                errors_to_form(form, exc)
            else:
                messages.success(request, _("Saved."))
                return redirect("ui:card", kind=kind, pk=pk)
        obj = get_record_for(actor, ui.type_id, pk)
    return page(request, "ui/records/card.html", _card_context(request, ui, actor, obj, form, can_update), nav=ui.url)


def _comm_lines(kind: str, text: str, stored) -> list[dict]:
    """The card's text box of phones, e-mails, messengers or sites: one value a line; a messenger line may start
    with its service («telegram: @ivanov»). A value already stored keeps its type."""
    from voronka.parties.communications import DEFAULT_TYPE, TYPES, normalize

    known = {}
    for comm in stored:
        known.setdefault(comm.normalized, comm.value_type)
    out = []
    for line in text.splitlines():
        value, value_type = line.strip(), None
        if not value:
            continue
        head, sep, rest = value.partition(":")
        if kind == "im" and sep and head.strip().lower() in TYPES["im"] and rest.strip():
            value_type, value = head.strip().lower(), rest.strip()
        if value_type is None:
            try:
                value_type = known.get(normalize(kind, value, "other"), DEFAULT_TYPE[kind])
            except DjangoValidationError:
                value_type = DEFAULT_TYPE[kind]
        out.append({"value": value, "type": value_type})
    return out


def _card_context(request, ui, actor, obj, form, can_update) -> dict:
    comms = values_of(ui.type_id, [obj.pk]).get(obj.pk) if ui.has_communications else None
    context = {"ui": ui, "obj": obj, "form": form, "can_update": can_update, "comms": comms,
               "timeline": _timeline_rows(actor, ui, obj),
               "tasks": tasks_on_record(actor, ui.type_id, obj.pk),
               "related": _related(actor, ui, obj),
               "links": _links_panel(actor, ui, obj),
               "users": get_user_model().objects.filter(is_active=True).order_by("last_name", "username")}
    if ui.staged:
        context["stages"] = list(obj.pipeline.stages.order_by("sort", "id"))
        context["pipelines"] = pipelines = list(Pipeline.objects.filter(entity_type_id=ui.type_id, is_active=True)
                                                .order_by("sort", "id"))
        context["away"] = _away(actor, ui, obj.pipeline, pipelines) if can_update else []
        context["can_convert"] = ui.type_id == entity_types.LEAD and not obj.converted_at and can_update
        context["can_take"] = obj.responsible_id is None
    context["can_merge"] = ui.type_id in (entity_types.LEAD, entity_types.DEAL, entity_types.CONTACT,
                                          entity_types.COMPANY)
    return context


RUN_STATUSES = {"pending": gettext_lazy("Pending"), "running": gettext_lazy("Running"), "done": gettext_lazy("Done"),
                "failed": gettext_lazy("Failed"), "skipped": gettext_lazy("Skipped")}


def _timeline_rows(actor, ui, obj):
    from voronka.core.models import TimelineEntry

    entries = timeline_for(actor, ui.type_id, obj.pk, limit=100)
    stage_ids = {e.data.get(k) for e in entries if e.kind == "stage" for k in ("from_stage", "to_stage")}
    stage_names = dict(Stage.objects.filter(pk__in=[s for s in stage_ids if s]).values_list("id", "name"))
    labels = dict(TimelineEntry.Kind.choices)
    user_ids = {v for e in entries for name, pair in (e.changes or {}).items() if name == "responsible"
                for v in pair if isinstance(v, int)}
    users = {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=user_ids)}
    field_labels = {f.name: str(f.verbose_name).capitalize() for f in ui.model._meta.fields}
    field_labels.update({"phones": _("Phones"), "emails": _("E-mails"), "messengers": _("Messengers"),
                         "websites": _("Sites"), "observers": _("Observers")})

    def show(name, value):
        if name == "responsible" and isinstance(value, int):
            return users.get(value, f"#{value}")
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, bool):
            return _("yes") if value else _("no")
        return value

    rows = []
    for e in entries:
        other = (e.entity_type_id, e.entity_id) != (ui.type_id, obj.pk)
        changes = [{"label": field_labels.get(name, name), "old": show(name, pair[0]), "new": show(name, pair[1])}
                   for name, pair in (e.changes or {}).items() if isinstance(pair, list) and len(pair) == 2] \
            if e.kind != "stage" else []
        rows.append({"e": e, "label": labels.get(e.kind, e.kind), "from_other": other, "changes": changes,
                     "other_label": BY_TYPE[e.entity_type_id].model._meta.verbose_name if other and
                     e.entity_type_id in BY_TYPE else "",
                     "from_stage": stage_names.get(e.data.get("from_stage")), "to_stage": stage_names.get(e.data.get("to_stage")),
                     "run_status": RUN_STATUSES.get(e.data.get("status"), e.data.get("status", "")) if e.kind == "automation" else ""})
    return rows


def _related(actor, ui: EntityUI, obj) -> list[dict]:
    """Linked records both ways, only those the actor may read (others show as hidden)."""
    groups = []

    def add(title, type_id, qs_or_obj, many=True):
        visible = records_visible_to(actor, type_id)
        if many:
            items = list(visible.filter(pk__in=qs_or_obj.values("pk"))[:20])
        else:
            items = list(visible.filter(pk=qs_or_obj)) if qs_or_obj else []
            if qs_or_obj and not items:
                groups.append({"title": title, "items": [], "hidden": True, "url": BY_TYPE[type_id].url})
                return
        if items:
            groups.append({"title": title, "items": items, "url": BY_TYPE[type_id].url})

    if ui.type_id in (entity_types.LEAD, entity_types.DEAL):
        add(_("Contact"), entity_types.CONTACT, obj.contact_id, many=False)
        add(_("Company"), entity_types.COMPANY, obj.company_id, many=False)
    if ui.type_id == entity_types.DEAL:
        add(_("Lead"), entity_types.LEAD, obj.lead_id, many=False)
    if ui.type_id == entity_types.LEAD:
        add(_("Deals"), entity_types.DEAL, obj.deals.all())
    if ui.type_id == entity_types.CONTACT:
        add(_("Company"), entity_types.COMPANY, obj.company_id, many=False)
        add(_("Deals"), entity_types.DEAL, obj.deals.all())
        add(_("Leads"), entity_types.LEAD, obj.leads.all())
    if ui.type_id == entity_types.COMPANY:
        add(_("Contacts"), entity_types.CONTACT, obj.contacts.all())
        add(_("Deals"), entity_types.DEAL, obj.deals.all())
        add(_("Leads"), entity_types.LEAD, obj.leads.all())
    return groups


@login_required
def create(request, kind: str):
    ui = by_url(kind)
    actor = actor_of(request)
    fields = list(ui.create_fields)
    form = record_form(ui, fields, data=request.POST if request.method == "POST" else None, actor=actor)
    pipelines = Pipeline.objects.filter(entity_type_id=ui.type_id, is_active=True) if ui.staged else []
    if request.method == "POST" and form.is_valid():
        payload = {k: form_payload_value(form, k) for k in fields if form.cleaned_data.get(k) not in (None, "")}
        custom = {k: v for k, v in custom_payload(form).items() if v is not None}
        if custom:
            payload["custom"] = custom
        if ui.staged and (request.POST.get("pipeline") or "").isdigit():
            payload["pipeline"] = int(request.POST["pipeline"])
        if ui.staged and (request.POST.get("stage") or "").isdigit():
            payload["stage"] = int(request.POST["stage"])
        if ui.has_communications:
            for key in ("phones", "emails"):
                if request.POST.get(key):
                    payload[key] = [v.strip() for v in request.POST[key].replace(",", "\n").splitlines() if v.strip()]
        try:
            obj = create_one(actor, ui.spec, payload)
        except ActionError as exc:
            errors_to_form(form, exc)
        else:
            messages.success(request, _("Created."))
            if request.POST.get("back") == "board":
                return redirect(f"{reverse('ui:board', kwargs={'kind': kind})}?pipeline={obj.pipeline_id}")
            return redirect("ui:card", kind=kind, pk=obj.pk)
    return page(request, "ui/records/create.html", {"ui": ui, "form": form, "pipelines": pipelines,
                                                     "values": request.POST or request.GET}, nav=ui.url)


# --- card actions --------------------------------------------------------------------------------

def _back(kind, pk):
    return redirect("ui:card", kind=kind, pk=pk)


@login_required
@require_POST
def comment(request, kind: str, pk: int):
    from voronka.activities.actions import add_comment

    ui = by_url(kind)
    try:
        add_comment(actor_of(request), entity_type_id=ui.type_id, entity_id=pk, text=request.POST.get("text", ""))
    except ActionError as exc:
        action_error(request, exc)
    return _back(kind, pk)


@login_required
@require_POST
def add_task(request, kind: str, pk: int):
    from voronka.activities.actions import create_task

    ui = by_url(kind)
    deadline = request.POST.get("deadline") or None
    if deadline:
        try:
            deadline = timezone.make_aware(datetime.datetime.fromisoformat(deadline))
        except ValueError:
            messages.error(request, _("The deadline must be a date and time."))
            return _back(kind, pk)
    responsible = request.POST.get("responsible")
    from .task_views import recurrence_from_form

    try:
        create_task(actor_of(request), title=request.POST.get("title", ""), deadline=deadline,
                    description=request.POST.get("description", ""),
                    responsible=int(responsible) if (responsible or "").isdigit() else None,
                    entity_type_id=ui.type_id, entity_id=pk,
                    recurrence=recurrence_from_form(request.POST, deadline))
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Task created."))
    return _back(kind, pk)


@login_required
@require_POST
def hand_off(request, kind: str, pk: int):
    """Pass the record to another user (F17) through ``distribution.hand_off``: the transfer and its note go to
    the timeline, and a free item stops being free. Contacts and companies are not distributed: their
    responsible simply changes, the note becomes a comment."""
    from voronka.activities.actions import add_comment
    from voronka.distribution import actions as distribution

    ui = by_url(kind)
    actor = actor_of(request)
    target = request.POST.get("responsible") or ""
    if not target.isdigit() or len(target) > 18:
        messages.error(request, _("Choose who takes the record."))
        return _back(kind, pk)
    note = (request.POST.get("note") or "").strip()
    try:
        get_record_for(actor, ui.type_id, pk)
        if not get_user_model().objects.filter(pk=int(target), is_active=True).exists():
            messages.error(request, _("Choose who takes the record."))
            return _back(kind, pk)
        if ui.type_id in (entity_types.LEAD, entity_types.DEAL):
            distribution.hand_off(actor, ui.type_id, pk, int(target), note=note)
        else:
            update_one(actor, ui.spec, pk, {"responsible": int(target)})
            if note:
                add_comment(actor, entity_type_id=ui.type_id, entity_id=pk, text=note)
    except NotFound:
        raise Http404 from None
    except ActionError as exc:
        action_error(request, exc)
        return _back(kind, pk)
    messages.success(request, _("Handed off."))
    try:
        get_record_for(actor, ui.type_id, pk)
    except NotFound:
        return redirect("ui:records", kind=kind)  # no longer visible to the one who handed it off
    return _back(kind, pk)


@login_required
@require_POST
def take(request, kind: str, pk: int):
    """Take a free lead or deal (no responsible yet) for oneself, through ``distribution.take`` (F14):
    members of its queue may, and anyone who may change it."""
    from voronka.distribution import actions as distribution

    ui = by_url(kind)
    actor = actor_of(request)
    if ui.type_id not in (entity_types.LEAD, entity_types.DEAL):
        raise Http404
    try:
        distribution.take(actor, ui.type_id, pk)
    except NotFound:
        raise Http404 from None
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("It is yours now."))
    return _back(kind, pk)


@login_required
@require_POST
def convert(request, kind: str, pk: int):
    from voronka.leads.actions import convert_lead

    if kind != "leads":
        return _back(kind, pk)
    actor = actor_of(request)
    try:
        result = convert_lead(actor, pk, create_company=bool(request.POST.get("company")) or None)
    except ActionError as exc:
        action_error(request, exc)
        return _back(kind, pk)
    messages.success(request, _("Converted."))
    if result.get("deal") is not None:
        return redirect("ui:card", kind="deals", pk=result["deal"].pk)
    return _back(kind, pk)


@login_required
@require_POST
def repeat_deal(request, kind: str, pk: int):
    from voronka.deals.actions import create_repeat_deal

    ui = by_url(kind)
    actor = actor_of(request)
    try:
        obj = get_record_for(actor, ui.type_id, pk)
        contact = obj.pk if ui.type_id == entity_types.CONTACT else getattr(obj, "contact_id", None)
        company = obj.pk if ui.type_id == entity_types.COMPANY else getattr(obj, "company_id", None)
        deal = create_repeat_deal(actor, contact=contact, company=company)
    except ActionError as exc:
        action_error(request, exc)
        return _back(kind, pk)
    messages.success(request, _("Repeat deal created."))
    return redirect("ui:card", kind="deals", pk=deal.pk)




@login_required
def search(request):
    """One box for everything: names, companies, e-mails and phones typed in any format."""
    from .entities import ALL

    actor = actor_of(request)
    q = (request.GET.get("q") or "").strip()
    groups = []
    if q:
        for ui in ALL:
            if not policies.can(actor, policies.READ, ui.type_id):
                continue
            cond = Q()
            for name in ui.search + (("company_name",) if ui.type_id == entity_types.LEAD else ()):
                cond |= Q(**{f"{name}__icontains": q})
            if ui.type_id in (entity_types.DEAL,):
                cond |= Q(company__name__icontains=q) | Q(contact__last_name__icontains=q)
            if ui.type_id == entity_types.CONTACT:
                cond |= Q(company__name__icontains=q)
            ids = _ids_by_contact(ui, q)
            if ids is not None:
                cond |= Q(pk__in=ids)
            items = list(records_visible_to(actor, ui.type_id).filter(cond).order_by("-id")[:10])
            if items:
                groups.append({"ui": ui, "items": items})
    return page(request, "ui/records/search.html", {"q": q, "groups": groups})


@login_required
@require_POST
def save_view(request, kind: str):
    from django.http import QueryDict

    from .actions import save_view as save

    ui = by_url(kind)
    actor = actor_of(request)
    query = QueryDict(request.POST.get("query", ""))
    params = {k: (query.getlist(k) if k in ("stage", "columns") else query.get(k)) for k in query}
    try:
        view = save(actor, entity_type_id=ui.type_id, name=request.POST.get("name", ""), params=params,
                    role_id=int(request.POST["role"]) if (request.POST.get("role") or "").isdigit() else None,
                    is_default=bool(request.POST.get("is_default")))
    except ActionError as exc:
        action_error(request, exc)
        return redirect("ui:records", kind=kind)
    messages.success(request, _("View saved."))
    return redirect(f"{reverse('ui:records', kwargs={'kind': kind})}?view={view.pk}")


@login_required
@require_POST
def delete_view(request, kind: str, view_id: int):
    from .actions import delete_view as delete

    try:
        delete(actor_of(request), view_id)
    except ActionError as exc:
        action_error(request, exc)
    return redirect(f"{reverse('ui:records', kwargs={'kind': kind})}?all=1")


@login_required
@require_POST
def bulk(request, kind: str):
    """Assign or move several records at once; each within the user's rights, each in its own transaction."""
    ui = by_url(kind)
    actor = actor_of(request)
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit()][:500]
    op = request.POST.get("op")
    back = request.POST.get("back") or reverse("ui:records", kwargs={"kind": kind})
    if not back.startswith("/"):
        back = reverse("ui:records", kwargs={"kind": kind})
    if not ids:
        messages.error(request, _("Select at least one row."))
        return redirect(back)
    if op == "assign" and (request.POST.get("responsible") or "").isdigit():
        data = {"responsible": int(request.POST["responsible"])}
    elif op == "move" and ui.staged and (request.POST.get("stage") or "").isdigit():
        stage = Stage.objects.filter(pk=int(request.POST["stage"]), pipeline__entity_type_id=ui.type_id).first()
        if stage is None:
            messages.error(request, _("No such stage."))
            return redirect(back)
        data = {"stage": stage.pk, "pipeline": stage.pipeline_id}
    else:
        messages.error(request, _("Choose what to do with the selected rows."))
        return redirect(back)
    done, failed = 0, []
    for pk in ids:
        try:
            update_one(actor, ui.spec, pk, dict(data))
            done += 1
        except ActionError as exc:
            failed.append(f"#{pk}: {_message(exc)}")
    if done:
        messages.success(request, _("Done for %(n)s records.") % {"n": done})
    if failed:
        messages.error(request, _("Not done for %(n)s: %(why)s") % {"n": len(failed), "why": "; ".join(failed[:5])})
    return redirect(back)


# --- links between records (voronka.links) ------------------------------------------------------

def _links_panel(actor, ui: EntityUI, obj) -> dict:
    """Linked records for the card: visible ones by kind, a count of those hidden from the actor."""
    from voronka.links.selectors import links_of

    rows = links_of(actor, ui.type_id, obj.pk)
    shown = [{"link": r.link, "ui": BY_TYPE.get(r.entity_type_id), "obj": r.obj, "direction": r.direction}
             for r in rows if not r.hidden and r.entity_type_id in BY_TYPE]
    kinds = [{"url": e.url, "title": e.title} for e in BY_TYPE.values()
             if policies.can(actor, policies.READ, e.type_id)]
    return {"items": shown, "hidden": sum(1 for r in rows if r.hidden), "kinds": kinds}


def _find_one(actor, ui: EntityUI, text: str):
    """The record a person means by «123», «#123» or a part of its name (exactly one visible match)."""
    text = text.strip().lstrip("#").strip()
    if not text:
        raise ValidationFailed(_("Type the number or the name of the record to link."))
    if text.isdigit():
        return get_record_for(actor, ui.type_id, int(text))
    cond = Q()
    for name in ui.search:
        cond |= Q(**{f"{name}__icontains": text})
    found = list(records_visible_to(actor, ui.type_id).filter(cond).order_by("-id")[:6])
    if not found:
        raise NotFound(_("Nothing found for «%(text)s».") % {"text": text})
    if len(found) > 1:
        names = ", ".join(f"#{o.pk} {o}" for o in found[:5])
        raise ValidationFailed(_("Several records match: %(names)s. Type the number.") % {"names": names})
    return found[0]


@login_required
@require_POST
def link_add(request, kind: str, pk: int):
    from voronka.links.actions import link

    ui = by_url(kind)
    actor = actor_of(request)
    try:
        other_ui = by_url(request.POST.get("other_kind", ""))
    except Http404:  # an unknown kind from a tampered form is a plain form error
        messages.error(request, _("Choose what to link."))
        return _back(kind, pk)
    try:
        other = _find_one(actor, other_ui, request.POST.get("other", ""))
        link(actor, (ui.type_id, pk), (other_ui.type_id, other.pk), role=request.POST.get("role", ""))
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Linked with «%(name)s».") % {"name": other})
    return _back(kind, pk)


@login_required
@require_POST
def link_remove(request, kind: str, pk: int, link_id: int):
    from voronka.links.actions import unlink

    by_url(kind)
    try:
        unlink(actor_of(request), link_id)
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Unlinked."))
    return _back(kind, pk)
