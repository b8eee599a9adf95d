"""Choosing a record by typing its name: the widgets of link fields on cards and forms, and their lookup.

A link field (a deal's contact and company, a custom field «link to a record», several of them for a
multi-value one) is a text box with suggestions (``ui/static/ui/picker.js``: arrows, Enter, Escape, Backspace)
over hidden inputs holding the ids. Suggestions come from ``pick`` (``/pick/<type>/?q=``): records of that kind
the user may read, by name, number, phone or e-mail; a kind the user may not read answers 404. A linked
record the user may not read is shown by its number only, never by its name.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import JsonResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _

from voronka.core import entity_types, policies
from voronka.core.selectors import records_visible_to

PICK_LIMIT = 10


def titles(actor, type_id: int, ids) -> dict[int, str]:
    """Titles of the records among ``ids`` the actor may read (others are left out)."""
    ids = [int(i) for i in ids if str(i).isdigit()]
    if not ids or actor is None or not policies.can(actor, policies.READ, type_id):
        return {}
    return {obj.pk: str(obj) for obj in records_visible_to(actor, type_id).filter(pk__in=ids)}


class RecordPicker(forms.Widget):
    """One record: a hidden id and a text box with suggestions."""

    multiple = False

    def __init__(self, type_id: int, attrs=None):
        super().__init__(attrs)
        self.type_id = type_id
        self.actor = None  # set by the form's builder: titles are shown only for readable records

    def _ids(self, value) -> list[str]:
        if value in (None, ""):
            return []
        values = value if isinstance(value, list | tuple) else [value]
        return [str(v) for v in values if str(v).strip()]

    def value_from_datadict(self, data, files, name):
        if self.multiple:
            return [v for v in data.getlist(name) if str(v).strip()]
        return data.get(name)

    def value_omitted_from_data(self, data, files, name):
        return False if self.multiple else name not in data

    def render(self, name, value, attrs=None, renderer=None):
        ids = self._ids(value)
        known = titles(self.actor, self.type_id, ids)
        label = lambda pk: known.get(int(pk), f"#{pk}") if pk.isdigit() else pk  # noqa: E731
        input_id = (attrs or {}).get("id") or f"id_{name}"
        try:
            kind_title = entity_types.get(self.type_id).label
        except LookupError:
            kind_title = ""
        url = reverse("ui:pick", kwargs={"type_id": self.type_id})
        if self.multiple:
            chips = format_html_join(
                "", '<li class="chip" data-id="{0}"><input type="hidden" name="{1}" value="{0}">{2} '
                '<button type="button" class="chip-x" aria-label="{3}">×</button></li>',
                ((pk, name, label(pk), _("Remove «%(t)s»") % {"t": label(pk)}) for pk in ids))
            return format_html(
                '<div class="picker" data-picker data-multiple data-name="{name}" data-url="{url}" data-none="{none}">'
                '<ul class="chips">{chips}</ul>'
                '<input type="text" id="{id}" class="picker-q" autocomplete="off" role="combobox" '
                'aria-autocomplete="list" aria-expanded="false" aria-controls="{id}-list" placeholder="{ph}">'
                '<ul class="picker-list" id="{id}-list" role="listbox" hidden></ul></div>',
                name=name, url=url, chips=chips, id=input_id, none=_("Nothing found"),
                ph=_("Type a name or a number (%(kind)s)") % {"kind": kind_title})
        current = ids[0] if ids else ""
        return format_html(
            '<div class="picker" data-picker data-url="{url}" data-none="{none}">'
            '<input type="hidden" name="{name}" value="{value}" data-id>'
            '<input type="text" id="{id}" class="picker-q" autocomplete="off" role="combobox" value="{text}" '
            'aria-autocomplete="list" aria-expanded="false" aria-controls="{id}-list" placeholder="{ph}">'
            '<ul class="picker-list" id="{id}-list" role="listbox" hidden></ul></div>',
            url=url, name=name, value=current, id=input_id, none=_("Nothing found"), text=label(current) if current else "",
            ph=_("Type a name or a number (%(kind)s)") % {"kind": kind_title})


class MultiRecordPicker(RecordPicker):
    multiple = True


class MultiIdField(forms.Field):
    """Several record ids (a multi-value link field)."""

    widget = MultiRecordPicker

    def to_python(self, value):
        out = []
        for v in value or []:
            if not str(v).isdigit():
                raise forms.ValidationError(_("Choose records from the suggestions."))
            if int(v) not in out:
                out.append(int(v))
        return out

    def has_changed(self, initial, data):
        def norm(values):
            return [str(v) for v in (values or []) if str(v).strip()]

        return norm(initial) != norm(data)


def bind_actor(form, actor) -> None:
    """Give the form's pickers the viewer (titles of linked records respect their rights)."""
    for field in form.fields.values():
        if isinstance(field.widget, RecordPicker):
            field.widget.actor = actor


@login_required
def pick(request, type_id: int):
    """Suggestions for a picker: readable records of one kind matching ``q`` (JSON)."""
    from .entities import BY_TYPE
    from .views import actor_of

    actor = actor_of(request)
    ui = BY_TYPE.get(type_id)
    if ui is None or not policies.can(actor, policies.READ, type_id):
        return JsonResponse({"error": _("Not found.")}, status=404)
    q = (request.GET.get("q") or "").strip()[:100]
    qs = records_visible_to(actor, type_id)
    if type_id == entity_types.CONTACT:
        qs = qs.select_related("company")
    if q:
        cond = Q()
        for word in q.split()[:4]:
            part = Q()
            for name in ui.search:
                part |= Q(**{f"{name}__icontains": word})
            cond &= part
        if q.lstrip("#").isdigit():
            cond |= Q(pk=int(q.lstrip("#")))
        from .record_views import _ids_by_contact

        ids = _ids_by_contact(ui, q)
        if ids is not None:
            cond |= Q(pk__in=ids)
        qs = qs.filter(cond)
    found = list(qs.order_by("-id")[:PICK_LIMIT])
    companies: set[int] = set()
    if type_id == entity_types.CONTACT:
        # a contact's company is named only to those who may read that company
        ids = {o.company_id for o in found if getattr(o, "company_id", None)}
        if ids and policies.can(actor, policies.READ, entity_types.COMPANY):
            companies = set(records_visible_to(actor, entity_types.COMPANY).filter(pk__in=ids).values_list("pk", flat=True))
    results = [{"id": obj.pk, "title": str(obj), "hint": _hint(type_id, obj, companies)} for obj in found]
    return JsonResponse({"results": results})


def _hint(type_id: int, obj, readable_companies: set[int]) -> str:
    if type_id == entity_types.CONTACT and getattr(obj, "company_id", None):
        return str(obj.company) if obj.company_id in readable_companies and obj.company is not None else f"#{obj.pk}"
    return f"#{obj.pk}"
