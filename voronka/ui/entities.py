"""What the UI shows for each kind of record: list columns, card fields, the write-path spec behind it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import Http404
from django.utils.translation import gettext_lazy as _

from voronka.core import entity_types


@dataclass(frozen=True)
class EntityUI:
    code: str  # entity code: "lead"
    url: str  # plural used in URLs: "leads"
    type_id: int
    title: str
    columns: tuple[str, ...]
    card_fields: tuple[str, ...]
    create_fields: tuple[str, ...]
    search: tuple[str, ...] = ("title",)
    has_communications: bool = True
    orders: tuple[str, ...] = ("-id", "id", "-created_at", "created_at")
    extra: dict = field(default_factory=dict)

    @property
    def all_columns(self) -> tuple[str, ...]:
        """Columns a person may choose for the list."""
        skip = {"id", "custom", "deleted_at", "created_by", "pipeline", "stage_semantics", "is_open", "comment",
                "inquiry", "behaviour_notes", "entity_type_id"}
        names = [f.name for f in self.model._meta.fields if f.name not in skip]
        return tuple(dict.fromkeys([*self.columns, *names]))

    @property
    def info(self):
        return entity_types.get(self.type_id)

    @property
    def model(self):
        return self.info.model

    @property
    def staged(self) -> bool:
        return self.info.staged

    @property
    def spec(self):
        if self.type_id >= entity_types.FIRST_DYNAMIC:
            return self.info.spec
        from voronka.deals.actions import DEAL
        from voronka.leads.actions import LEAD
        from voronka.parties.actions import COMPANY, CONTACT

        return {1: LEAD, 2: DEAL, 3: CONTACT, 4: COMPANY}[self.type_id]


LEADS = EntityUI(
    "lead", "leads", entity_types.LEAD, _("Leads"),
    columns=("title", "stage", "responsible", "opportunity", "source", "created_at"),
    card_fields=("title", "last_name", "first_name", "middle_name", "company_name", "position", "inquiry", "opportunity",
                 "currency", "source", "responsible", "address", "comment", "utm_source", "utm_medium", "utm_campaign",
                 "is_open"),
    create_fields=("title", "last_name", "first_name", "company_name", "inquiry", "opportunity", "source", "responsible"),
    search=("title", "last_name", "company_name"),
    orders=("-id", "id", "-created_at", "created_at", "-opportunity", "opportunity", "-stage_changed_at"),
)
DEALS = EntityUI(
    "deal", "deals", entity_types.DEAL, _("Deals"),
    columns=("title", "stage", "responsible", "opportunity", "contact", "company", "created_at"),
    card_fields=("title", "opportunity", "currency", "probability", "begin_date", "close_date", "source", "responsible",
                 "contact", "company", "comment", "is_open"),
    create_fields=("title", "opportunity", "currency", "contact", "company", "responsible", "close_date"),
    has_communications=False,
    orders=("-id", "id", "-created_at", "created_at", "-opportunity", "opportunity", "-stage_changed_at"),
)
CONTACTS = EntityUI(
    "contact", "contacts", entity_types.CONTACT, _("Contacts"),
    columns=("last_name", "first_name", "company", "city", "responsible", "created_at"),
    card_fields=("last_name", "first_name", "middle_name", "company", "position", "birthday", "gender", "city", "address",
                 "solvency", "behaviour_notes", "comment", "source", "responsible", "is_open"),
    create_fields=("last_name", "first_name", "middle_name", "company", "position", "city", "responsible"),
    search=("last_name", "first_name"),
)
COMPANIES = EntityUI(
    "company", "companies", entity_types.COMPANY, _("Companies"),
    columns=("name", "company_type", "industry", "responsible", "created_at"),
    card_fields=("name", "company_type", "industry", "legal_address", "actual_address", "site", "employees", "revenue",
                 "currency", "comment", "source", "responsible", "is_open"),
    create_fields=("name", "company_type", "industry", "site", "responsible"),
    search=("name",),
)

ALL = (LEADS, DEALS, CONTACTS, COMPANIES)

_smart_cache: dict[tuple, EntityUI] = {}


def smart_ui(info) -> EntityUI:
    """The screens of a smart process, from its registry entry: no per-type code."""
    writable = info.spec.writable
    key = (info.id, info.code, info.label_plural, writable)
    if key not in _smart_cache:
        links = tuple(n for n in ("contact", "company") if n in writable)
        if not info.staged:  # a custom list
            _smart_cache[key] = EntityUI(
                info.code, info.code, info.id, info.label_plural.capitalize(),
                columns=("title", *links, "responsible", "created_at"),
                card_fields=("title", *links, "responsible", "comment", "is_open"),
                create_fields=("title", *links, "responsible"),
                has_communications=False, orders=("-id", "id", "-created_at", "created_at", "title", "-title"),
                extra={"smart": True, "list": True},
            )
            return _smart_cache[key]
        _smart_cache[key] = EntityUI(
            info.code, info.code, info.id, info.label_plural.capitalize(),
            columns=("title", "stage", "responsible", "opportunity", *links, "created_at"),
            card_fields=("title", "opportunity", "currency", "begin_date", "close_date", "source", "responsible",
                         *links, "comment", "is_open"),
            create_fields=("title", "opportunity", "currency", *links, "responsible", "close_date"),
            has_communications=False,
            orders=("-id", "id", "-created_at", "created_at", "-opportunity", "opportunity", "-stage_changed_at"),
            extra={"smart": True},
        )
    return _smart_cache[key]


def smart_entities() -> list[EntityUI]:
    return [smart_ui(i) for i in entity_types.all_types() if i.dynamic and i.spec is not None]


def all_entities() -> list[EntityUI]:
    return [*ALL, *smart_entities()]


class _Lookup(dict):
    """The built-in kinds by key, falling back on the smart processes defined at run time."""

    def __init__(self, items: dict, by: str):
        super().__init__(items)
        self._by = by

    def _dynamic(self, key):
        if self._by == "type":
            if not isinstance(key, int) or key < entity_types.FIRST_DYNAMIC:
                return None
            try:
                info = entity_types.get(key)
            except LookupError:
                return None
            return smart_ui(info) if info.dynamic else None
        return next((e for e in smart_entities() if e.url == key), None)

    def __missing__(self, key):
        found = self._dynamic(key)
        if found is None:
            raise KeyError(key)
        return found

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or self._dynamic(key) is not None


BY_URL = _Lookup({e.url: e for e in ALL}, "url")
BY_TYPE = _Lookup({e.type_id: e for e in ALL}, "type")


def by_url(url: str) -> EntityUI:
    try:
        return BY_URL[url]
    except KeyError:
        raise Http404 from None
