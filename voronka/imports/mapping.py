"""Where each column goes: the fields an import can fill, suggestions from header names, checks of a mapping.

A mapping is ``{"column header": "target"}``; a target is ``<record>.<field>`` (``deal.title``,
``contact.phones``, ``company.inn``) or ``<record>.custom.<code>`` for a custom field. Columns left out
are not imported. Several columns may feed phones or e-mails; every other target takes one column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from voronka.core import entity_types
from voronka.core.errors import ValidationFailed

_TYPES = {"contacts": entity_types.CONTACT, "companies": entity_types.COMPANY, "leads": entity_types.LEAD,
          "deals": entity_types.DEAL}
_RECORD_OF_TYPE = {entity_types.CONTACT: "contact", entity_types.COMPANY: "company", entity_types.LEAD: "lead",
                   entity_types.DEAL: "deal"}
# the records a row of each import type may fill: the imported one first, then the linked ones
_RECORDS = {entity_types.CONTACT: ("contact", "company"), entity_types.COMPANY: ("company",),
            entity_types.LEAD: ("lead", "contact", "company"), entity_types.DEAL: ("deal", "contact", "company")}
MULTI = {"phones", "emails"}


def custom_lists() -> list:
    """The custom lists (F6) of this process's registry: an import type each, named by the list's code, whose
    rows may link a contact and a company. Callers sync the registry first (``entity_types.all_types``)."""
    return [i for i in entity_types.known() if i.dynamic and not i.staged and i.spec is not None]


def _list_links(info) -> tuple[str, ...]:
    return tuple(n for n in ("contact", "company") if n in info.spec.writable)


class _Live(Mapping):
    """A read-only mapping rebuilt from the built-in kinds plus the custom lists on every use."""

    def __init__(self, build):
        self._build = build

    def __getitem__(self, key):
        return self._build()[key]

    def __iter__(self):
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


TYPES = _Live(lambda: {**_TYPES, **{i.code: i.id for i in custom_lists()}})
TYPE_CODES = _Live(lambda: {v: k for k, v in TYPES.items()})
RECORD_OF_TYPE = _Live(lambda: {**_RECORD_OF_TYPE, **{i.id: i.code for i in custom_lists()}})
TYPE_OF_RECORD = _Live(lambda: {v: k for k, v in RECORD_OF_TYPE.items()})
RECORDS = _Live(lambda: {**_RECORDS, **{i.id: (i.code, *_list_links(i)) for i in custom_lists()}})


@dataclass(frozen=True)
class Field:
    name: str
    label: object
    kind: str = "text"  # text number integer date phones emails responsible stage pipeline source inn full_name
    aliases: tuple[str, ...] = ()


def _f(name, label, kind="text", aliases=()):
    return Field(name, label, kind, tuple(aliases))


PERSON = (
    _f("full_name", gettext_lazy("Full name (last, first, middle)"), "full_name",
       ("фио", "ф и о", "контакт", "контактное лицо", "имя контакта", "клиент", "full name", "contact", "contact name",
        "contact person", "name")),
    _f("last_name", gettext_lazy("Last name"), aliases=("фамилия", "last name", "lastname", "surname", "family name")),
    _f("first_name", gettext_lazy("First name"), aliases=("имя", "first name", "firstname", "given name")),
    _f("middle_name", gettext_lazy("Middle name"), aliases=("отчество", "middle name", "patronymic")),
    _f("position", gettext_lazy("Position"), aliases=("должность", "position", "job title")),
    _f("phones", gettext_lazy("Phones"), "phones",
       ("телефон", "телефоны", "тел", "мобильный", "мобильный телефон", "рабочий телефон", "phone", "phones",
        "mobile", "mobile phone", "tel", "telephone")),
    _f("emails", gettext_lazy("E-mails"), "emails",
       ("e mail", "email", "эл почта", "электронная почта", "почта", "емейл", "имейл", "mail", "e mails", "emails")),
)
COMMON = (
    _f("source", gettext_lazy("Source"), "source", ("источник", "source", "канал")),
    _f("responsible", gettext_lazy("Responsible (login, e-mail or full name)"), "responsible",
       ("ответственный", "менеджер", "ответственный менеджер", "responsible", "owner", "manager", "assigned to",
        "assigned")),
    _f("comment", gettext_lazy("Comment"), aliases=("комментарий", "примечание", "заметки", "comment", "comments",
                                                     "note", "notes")),
)
STAGED = (
    _f("opportunity", gettext_lazy("Amount"), "number", ("сумма", "бюджет", "стоимость", "amount", "sum",
                                                         "opportunity", "budget", "value")),
    _f("currency", gettext_lazy("Currency"), aliases=("валюта", "currency")),
    _f("pipeline", gettext_lazy("Pipeline (code or name)"), "pipeline", ("воронка", "направление", "pipeline",
                                                                         "funnel")),
    _f("stage", gettext_lazy("Stage (code or name)"), "stage", ("стадия", "этап", "статус", "stage", "status")),
    _f("utm_source", "utm_source", aliases=("utm source",)),
    _f("utm_medium", "utm_medium", aliases=("utm medium",)),
    _f("utm_campaign", "utm_campaign", aliases=("utm campaign",)),
)
_FIELDS: dict[str, tuple[Field, ...]] = {
    "contact": PERSON + (
        _f("birthday", gettext_lazy("Birthday"), "date", ("дата рождения", "день рождения", "birthday", "birth date",
                                                          "date of birth")),
        _f("city", gettext_lazy("City"), aliases=("город", "city")),
        _f("address", gettext_lazy("Address"), aliases=("адрес", "address")),
    ) + COMMON,
    "company": (
        _f("name", gettext_lazy("Company name"), aliases=("компания", "организация", "название компании",
                                                          "наименование", "наименование организации", "company",
                                                          "company name", "organization", "organisation", "account")),
        _f("inn", gettext_lazy("Tax number (INN)"), "inn", ("инн", "inn", "tax id", "tax number", "taxpayer id")),
        _f("phones", gettext_lazy("Company phones"), "phones", ("телефон компании", "company phone") + PERSON[5].aliases),
        _f("emails", gettext_lazy("Company e-mails"), "emails", ("e mail компании", "email компании", "company email")
           + PERSON[6].aliases),
        _f("industry", gettext_lazy("Industry"), aliases=("отрасль", "сфера", "industry")),
        _f("site", gettext_lazy("Site"), aliases=("сайт", "site", "website", "web")),
        _f("legal_address", gettext_lazy("Legal address"), aliases=("юридический адрес", "юр адрес",
                                                                    "legal address")),
        _f("actual_address", gettext_lazy("Actual address"), aliases=("фактический адрес", "actual address")),
    ) + COMMON,
    "lead": (
        _f("title", gettext_lazy("Lead title"), aliases=("название", "название лида", "лид", "заголовок", "title",
                                                         "lead", "lead title", "subject")),
        _f("company_name", gettext_lazy("Company name (on the lead)"), aliases=()),
        _f("inquiry", gettext_lazy("What was asked"), aliases=("запрос", "что спрашивал", "вопрос", "inquiry",
                                                               "request")),
    ) + tuple(f for f in PERSON if f.name != "full_name") + STAGED + COMMON,
    "deal": (
        _f("title", gettext_lazy("Deal title"), aliases=("название", "название сделки", "сделка", "заголовок", "title",
                                                         "deal", "deal name", "deal title", "subject")),
        _f("probability", gettext_lazy("Probability, %"), "integer", ("вероятность", "probability")),
        _f("begin_date", gettext_lazy("Start date"), "date", ("дата начала", "start date", "begin date")),
        _f("close_date", gettext_lazy("Expected close date"), "date", ("дата закрытия", "предполагаемая дата закрытия",
                                                                      "close date", "expected close date")),
    ) + STAGED + COMMON,
}
LIST_ROW = (
    _f("title", gettext_lazy("Title"), aliases=("название", "наименование", "заголовок", "title", "name")),
) + COMMON
FIELDS = _Live(lambda: {**_FIELDS, **{i.code: LIST_ROW for i in custom_lists()}})
# On a lead row, person and company columns feed the lead's own fields too
LEAD_COPIES = {"contact.first_name": "first_name", "contact.last_name": "last_name",
               "contact.middle_name": "middle_name", "contact.position": "position", "contact.phones": "phones",
               "contact.emails": "emails", "company.name": "company_name"}


def normalize_header(text: str) -> str:
    text = (text or "").lower().replace("ё", "е")
    return " ".join(re.findall(r"[^\W_]+", text))


def custom_fields(record: str) -> list[Field]:
    from voronka.customfields.models import FieldDefinition

    return [Field(f"custom.{d.code}", d.label, "custom", (normalize_header(d.label), normalize_header(d.code)))
            for d in FieldDefinition.objects.filter(entity_type_id=TYPE_OF_RECORD[record]).order_by("sort", "id")]


def targets(entity_type_id: int) -> dict[str, Field]:
    """Every target of an import type: ``{"deal.title": Field, …}``, the imported record's fields first."""
    if entity_type_id >= entity_types.FIRST_DYNAMIC:
        entity_types.all_types()  # a list defined in another process is known here too
    result: dict[str, Field] = {}
    for record in RECORDS[entity_type_id]:
        for f in FIELDS[record] + tuple(custom_fields(record)):
            if entity_type_id == entity_types.LEAD and record == "lead" and f.name in LEAD_COPIES.values():
                continue  # given through the contact's and company's columns (copied to the lead)
            result[f"{record}.{f.name}"] = f
    return result


def target_choices(entity_type_id: int) -> list[tuple[str, str]]:
    names = {"contact": _("Contact"), "company": _("Company"), "lead": _("Lead"), "deal": _("Deal"),
             **{i.code: i.label.capitalize() for i in custom_lists()}}
    return [(key, f"{names[key.split('.', 1)[0]]}: {f.label}") for key, f in targets(entity_type_id).items()]


def suggest(headers: list[str], entity_type_id: int) -> dict[str, str]:
    """A mapping guessed from the header names (Russian and English); unknown headers are left out."""
    available = targets(entity_type_id)
    index: dict[str, str] = {}
    for key, f in available.items():  # earlier records win: the imported one before the linked ones
        record = key.split(".", 1)[0]
        for alias in (*f.aliases, normalize_header(str(f.label)), normalize_header(f.name)):
            index.setdefault(alias, key)
            index.setdefault(f"{normalize_header(record)} {alias}", key)
    result: dict[str, str] = {}
    used: set[str] = set()
    for header in headers:
        norm = normalize_header(header)
        key = index.get(norm)
        if key is None:
            # «Телефон (моб.)», «E-mail клиента»: the longest known alias the header starts with
            best = ""
            for alias in index:
                if alias and len(alias) >= 3 and (norm.startswith(alias + " ")) and len(alias) > len(best):
                    best = alias
            key = index.get(best) if best else None
        if key is None or (key in used and key.rsplit(".", 1)[-1] not in MULTI):
            continue
        used.add(key)
        result[header] = key
    return result


def check(mapping, headers: list[str], entity_type_id: int) -> dict[str, str]:
    """The mapping cleaned (empty targets dropped), or ``ValidationFailed`` naming each bad column."""
    if not isinstance(mapping, dict):
        raise ValidationFailed(_("The mapping must be an object {column: field}."), fields={"mapping": [_("not an object")]})
    available = targets(entity_type_id)
    errors: dict[str, list[str]] = {}
    clean: dict[str, str] = {}
    used: dict[str, str] = {}
    for column, target in mapping.items():
        if target in (None, ""):
            continue
        if column not in headers:
            errors.setdefault(str(column), []).append(_("There is no column «%(c)s» in the file.") % {"c": column})
            continue
        if not isinstance(target, str) or target not in available:
            errors.setdefault(column, []).append(_("Unknown field «%(f)s».") % {"f": target})
            continue
        if target in used and target.rsplit(".", 1)[-1] not in MULTI:
            errors.setdefault(column, []).append(
                _("The field is already filled from column «%(c)s».") % {"c": used[target]})
            continue
        used[target] = column
        clean[column] = target
    if errors:
        raise ValidationFailed(_("The column mapping is not valid."), fields=errors)
    if not clean:
        raise ValidationFailed(_("Map at least one column to a field."), fields={"mapping": [_("empty")]})
    return clean
