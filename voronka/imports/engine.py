"""Turning rows into records: parse each cell, match the contact and company, write a batch.

One row is all or nothing: its company, contact and lead/deal are written together or not at all.
A batch validates every row first (``recordkit.create_many`` with ``atomic_all``, step by step:
companies, their tax numbers, contacts, then the imported records); when a row fails at a later step,
the batch's savepoint is rolled back and the batch is written again without that row, so a bad row never
leaves a company or contact behind. Errors name the column and the reason.
"""

from __future__ import annotations

import datetime
import decimal
import re
from dataclasses import dataclass, field

from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import ActionError
from voronka.core.recordkit import RecordSpec, create_many
from voronka.intake import duplicates, names

from . import mapping as mp
from . import matching

MATCH_KEYS = ("email", "phone", "inn", "name")
_SPLIT = re.compile(r"[,;\n]+")


# --- cell parsing ----------------------------------------------------------------------------------

def parse_decimal(raw: str) -> str:
    text = raw.replace("\u00a0", "").replace(" ", "")
    text = re.sub(r"[^\d,.\-]", "", text)
    if text.count(",") and text.count("."):
        text = text.replace(",", "") if text.rfind(".") > text.rfind(",") else text.replace(".", "").replace(",", ".")
    elif text.count(",") == 1:
        text = text.replace(",", ".")
    elif text.count(",") > 1:
        text = text.replace(",", "")
    try:
        value = decimal.Decimal(text)
    except decimal.InvalidOperation:
        raise ValueError(_("«%(v)s» is not a number.") % {"v": raw}) from None
    if not value.is_finite():
        raise ValueError(_("«%(v)s» is not a number.") % {"v": raw})
    return str(value)


DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                "%d.%m.%Y %H:%M", "%d.%m.%Y %H:%M:%S")


def parse_date(raw: str) -> str:
    for fmt in DATE_FORMATS:
        try:
            return datetime.datetime.strptime(raw.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    raise ValueError(_("«%(v)s» is not a date (use 31.12.2024 or 2024-12-31).") % {"v": raw})


def parse_inn(raw: str) -> str:
    digits = re.sub(r"\s", "", raw)
    if not re.fullmatch(r"\d{10}|\d{12}", digits):
        raise ValueError(_("A tax number (INN) has 10 or 12 digits; «%(v)s» does not.") % {"v": raw})
    return digits


def split_full_name(raw: str) -> dict:
    parts = raw.split()
    if len(parts) == 1:
        return {"first_name": parts[0]}
    keys = ("last_name", "first_name", "middle_name")
    result = dict(zip(keys, parts[:3], strict=False))
    if len(parts) > 3:
        result["middle_name"] = " ".join(parts[2:])
    return result


def split_multi(raw: str) -> list[str]:
    return [v.strip() for v in _SPLIT.split(raw) if v.strip()]


# --- plans -------------------------------------------------------------------------------------------

@dataclass
class RowPlan:
    number: int
    cells: list[str]
    errors: list[dict] = field(default_factory=list)
    data: dict[str, dict] = field(default_factory=dict)  # record -> recordkit payload
    inn: str = ""
    actions: dict[str, str] = field(default_factory=dict)  # record -> create | match
    ids: dict[str, int] = field(default_factory=dict)  # record -> id (matched, or created by the write)
    keys: dict[str, str] = field(default_factory=dict)  # record -> in-batch identity of a new contact/company
    titles: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def reject(self, column: str, target: str, message: str) -> None:
        self.errors.append({"column": column, "field": target, "message": str(message)})


class Importer:
    """Plans and writes rows of one import: the actor, the kind of record, the mapping and the matching mode."""

    def __init__(self, actor: Actor, entity_type_id: int, headers: list[str], column_map: dict[str, str], *,
                 mode: str = "match_or_create", match_by=MATCH_KEYS):
        self.actor = actor
        self.entity_type_id = entity_type_id
        self.main = mp.RECORD_OF_TYPE[entity_type_id]
        self.mode = mode
        self.match_by = set(match_by or MATCH_KEYS)
        available = mp.targets(entity_type_id)
        self.columns = [(headers.index(col), col, target, available[target]) for col, target in column_map.items()]
        self.column_of: dict[str, str] = {}
        for _i, col, target, _f in self.columns:
            self.column_of.setdefault(target, col)
            if entity_type_id == entity_types.LEAD and target in mp.LEAD_COPIES:
                self.column_of.setdefault(f"lead.{mp.LEAD_COPIES[target]}", col)
        self._users = None
        self._sources = None
        self._pipelines = None
        # dry runs: the identities (record, key) of the new records of earlier batches — only the keys, not the
        # rows' plans, so a whole-file dry run does not hold every row of the file
        self.memo: set[tuple[str, str]] | None = None

    # --- lookups (loaded once per import) --------------------------------------------------------------

    def _user_index(self) -> dict[str, list[int]]:
        if self._users is None:
            from django.contrib.auth import get_user_model

            index: dict[str, list[int]] = {}
            for pk, username, email, first, last in get_user_model().objects.filter(is_active=True).values_list(
                    "pk", "username", "email", "first_name", "last_name"):
                for key in {username, email, f"{first} {last}", f"{last} {first}"}:
                    key = " ".join(key.casefold().replace("ё", "е").split())
                    if key and pk not in index.setdefault(key, []):
                        index[key].append(pk)
            self._users = index
        return self._users

    def resolve_user(self, raw: str) -> int:
        found = self._user_index().get(" ".join(raw.casefold().replace("ё", "е").split()), [])
        if not found:
            raise ValueError(_("No active employee «%(v)s» (give a login, an e-mail or a full name).") % {"v": raw})
        if len(found) > 1:
            raise ValueError(_("Several employees are called «%(v)s»; give a login or an e-mail.") % {"v": raw})
        return found[0]

    def resolve_source(self, raw: str) -> str:
        if self._sources is None:
            from voronka.leads.models import Source

            self._sources = {}
            for code, name in Source.objects.values_list("code", "name"):
                self._sources[code.casefold()] = code
                self._sources.setdefault(name.casefold(), code)
        return self._sources.get(raw.casefold(), raw[:50])

    def _pipeline_info(self, record: str):
        if self._pipelines is None:
            from voronka.pipelines.models import Pipeline, Stage

            type_id = mp.TYPE_OF_RECORD[record]
            pipelines = [p for p in Pipeline.objects.filter(entity_type_id=type_id, is_active=True)
                         .order_by("sort", "id")]
            stages = {}
            for s in Stage.objects.filter(pipeline__in=pipelines).order_by("sort", "id"):
                stages.setdefault(s.pipeline_id, []).append(s)
            default = next((p for p in pipelines if p.is_default), pipelines[0] if pipelines else None)
            self._pipelines = (pipelines, stages, default)
        return self._pipelines

    def resolve_stage(self, plan: RowPlan, record: str, pipeline_ref: str, stage_ref: str) -> None:
        pipelines, stages, default = self._pipeline_info(record)
        data = plan.data[record]
        pipeline = None
        if pipeline_ref:
            key = pipeline_ref.casefold()
            pipeline = next((p for p in pipelines if p.code.casefold() == key or p.name.casefold() == key
                             or str(p.pk) == pipeline_ref), None)
            if pipeline is None:
                plan.reject(self.column_of.get(f"{record}.pipeline", ""), f"{record}.pipeline",
                            _("No pipeline «%(v)s».") % {"v": pipeline_ref})
                return
            data["pipeline"] = pipeline.pk
        if not stage_ref:
            return
        key = stage_ref.casefold()

        def find(p):
            return next((s for s in stages.get(p.pk, []) if s.code.casefold() == key or s.name.casefold() == key
                         or str(s.pk) == stage_ref), None)

        stage = find(pipeline or default) if (pipeline or default) else None
        if stage is None and pipeline is None:
            found = [s for s in (find(p) for p in pipelines) if s is not None]
            stage = found[0] if len(found) == 1 else None
        if stage is None:
            plan.reject(self.column_of.get(f"{record}.stage", ""), f"{record}.stage",
                        _("No stage «%(v)s» in the pipeline.") % {"v": stage_ref})
            return
        data["pipeline"], data["stage"] = stage.pipeline_id, stage.pk

    # --- planning --------------------------------------------------------------------------------------

    def parse(self, number: int, cells: list[str]) -> RowPlan:
        plan = RowPlan(number, cells)
        refs: dict[str, dict[str, str]] = {}
        full_names: dict[str, dict] = {}
        for index, column, target, f in self.columns:
            raw = cells[index].strip() if index < len(cells) else ""
            if not raw:
                continue
            record, name = target.split(".", 1)
            data = plan.data.setdefault(record, {})
            try:
                if f.kind == "text":
                    data[name] = raw
                elif f.kind == "number":
                    data[name] = parse_decimal(raw)
                elif f.kind == "integer":
                    data[name] = int(decimal.Decimal(parse_decimal(raw)))
                elif f.kind == "date":
                    data[name] = parse_date(raw)
                elif f.kind in ("phones", "emails"):
                    data.setdefault(name, []).extend(split_multi(raw))
                elif f.kind == "responsible":
                    data["responsible"] = self.resolve_user(raw)
                elif f.kind == "source":
                    data["source"] = self.resolve_source(raw)
                elif f.kind in ("stage", "pipeline"):
                    refs.setdefault(record, {})[f.kind] = raw
                elif f.kind == "inn":
                    plan.inn = parse_inn(raw)
                elif f.kind == "full_name":
                    full_names[record] = split_full_name(raw)
                elif f.kind == "custom":
                    data.setdefault("custom", {})[name.removeprefix("custom.")] = raw
            except (ValueError, decimal.InvalidOperation) as exc:
                plan.reject(column, target, str(exc) or _("The value is not valid."))
        for record, parts in full_names.items():
            for k, v in parts.items():
                plan.data[record].setdefault(k, v)
        for record, ref in refs.items():
            self.resolve_stage(plan, record, ref.get("pipeline", ""), ref.get("stage", ""))
        if self.main == "lead":
            lead = plan.data.setdefault("lead", {})
            for target, name in mp.LEAD_COPIES.items():
                record, key = target.split(".", 1)
                value = plan.data.get(record, {}).get(key)
                if value and name not in lead:
                    lead[name] = list(value) if isinstance(value, list) else value
        if plan.inn:
            plan.data.setdefault("company", {})
        if not plan.errors and not plan.data.get(self.main) and not (self.main == "company" and plan.inn):
            plan.reject("", self.main, _("The row has no values for the imported record."))
        return plan

    def _query(self, record: str, plan: RowPlan) -> matching.Query:
        """What the row knows about its ``record``, limited to the job's match keys. Strong keys (tax number,
        e-mail, phone) decide when the row has them; a similar name is the fallback for rows without any."""
        data = plan.data[record]
        inn = plan.inn if record == "company" and "inn" in self.match_by else ""
        phones = (data.get("phones") or []) if "phone" in self.match_by else []
        emails = (data.get("emails") or []) if "email" in self.match_by else []
        name = company = ""
        if "name" in self.match_by:
            if record == "company":
                company = data.get("name", "")
            else:
                name = names.person_name(_Named(data))
                company = (plan.data.get("company") or {}).get("name", "")
        return matching.query(phones=phones, emails=emails, inn=inn, name=name, company=company)

    def _key(self, record: str, plan: RowPlan) -> str:
        data = plan.data[record]
        if record == "company":
            if plan.inn:
                return f"inn:{plan.inn}"
            return "name:" + names.company_key(data.get("name", ""))
        for kind in ("emails", "phones"):
            values = duplicates._clean(data.get(kind), duplicates.normalize_email if kind == "emails"
                                       else duplicates.normalize_phone)
            if values:
                return f"{kind}:{values[0]}"
        person = " ".join(names.words(names.person_name(_Named(data))))
        return f"name:{person}|{names.company_key((plan.data.get('company') or {}).get('name', ''))}" if person else ""

    def plan(self, number: int, cells: list[str]) -> RowPlan:
        return self.plan_many([(number, cells)])[0]

    def plan_many(self, rows: list[tuple[int, list[str]]]) -> list[RowPlan]:
        """Parse a chunk of rows and match their contacts and companies with a few queries for the whole chunk
        (``matching.match_many``); companies first, so that a contact's company is settled before it."""
        plans = [self.parse(number, cells) for number, cells in rows]
        for record in ("company", "contact"):
            if record not in mp.RECORDS[self.entity_type_id]:
                continue
            todo = [p for p in plans if p.ok and record in p.data]
            if self.mode == "always_create":
                found = [None] * len(todo)
            else:
                found = matching.match_many(self.actor, mp.TYPE_OF_RECORD[record],
                                            [self._query(record, p) for p in todo])
            for plan, match in zip(todo, found, strict=True):
                if match is not None:
                    plan.actions[record], plan.ids[record], plan.titles[record] = "match", match[0], match[1]
                elif self.mode == "match_only":
                    if record == self.main:
                        plan.reject("", record, _("No matching record exists, and this import only matches."))
                        continue
                    plan.data.pop(record)  # linked record not found: the row is imported without the link
                else:
                    plan.actions[record] = "create"
                    plan.keys[record] = self._key(record, plan)
        if self.main not in ("contact", "company"):  # leads, deals and rows of custom lists are always new
            for plan in plans:
                if plan.ok:
                    plan.actions[self.main] = "create"
        return plans

    # --- writing -----------------------------------------------------------------------------------------

    def write(self, plans: list[RowPlan]) -> None:
        """Write the good rows (inside the caller's transaction); rows that fail get their errors."""
        live = [p for p in plans if p.ok]
        while live:
            sid = transaction.savepoint()
            if self._attempt(live):
                transaction.savepoint_commit(sid)
                break
            transaction.savepoint_rollback(sid)
            live = [p for p in live if p.ok]
        created = {"contact": [], "company": [], "lead": []}
        for p in plans:
            if p.ok:
                for record, action in p.actions.items():
                    if action == "create" and p.keys.get(record, "") != "=":
                        if record in created:
                            created[record].append(p.ids[record])
                        if self.memo is not None and p.keys.get(record):
                            self.memo.add((record, p.keys[record]))
        for record, ids in created.items():  # later rows (and batches) find them by name at once
            if ids:
                names.refresh(mp.TYPE_OF_RECORD[record], ids)

    def _spec(self, record: str) -> RecordSpec:
        from voronka.deals.actions import DEAL
        from voronka.leads.actions import LEAD
        from voronka.parties.actions import COMPANY, CONTACT

        builtin = {"contact": CONTACT, "company": COMPANY, "lead": LEAD, "deal": DEAL}
        return builtin[record] if record in builtin else entity_types.spec_for(mp.TYPE_OF_RECORD[record])

    def _fail(self, plan: RowPlan, record: str, error: ActionError) -> None:
        if error.fields:
            for name, messages in error.fields.items():
                target = f"{record}.{name}" if f"{record}.{name}" in self.column_of else (
                    f"{record}.custom.{name}" if f"{record}.custom.{name}" in self.column_of else f"{record}.{name}")
                for message in messages:
                    plan.reject(self.column_of.get(target, ""), target, message)
        else:
            plan.reject("", record, error.message)

    def _create_step(self, record: str, live: list[RowPlan]) -> bool:
        """Create the new ``record`` of every live row (one per in-batch identity); False if any row failed."""
        groups: dict[str, list[RowPlan]] = {}
        for p in live:
            if p.actions.get(record) != "create":
                continue
            key = p.keys.get(record) or f"row:{p.number}"
            if self.memo is not None and (record, key) in self.memo:
                p.keys[record] = "="  # a dry run: created by an earlier batch's row
                continue
            groups.setdefault(key, []).append(p)
        if not groups:
            return True
        leaders = [g[0] for g in groups.values()]
        items = []
        for p in leaders:
            data = dict(p.data[record])
            if record == "contact" and "company" in p.ids and "company" not in data:
                data["company"] = p.ids["company"]
            if record not in ("contact", "company"):  # leads, deals, list rows: link the row's client
                for linked in ("contact", "company"):
                    if linked in p.ids:
                        data[linked] = p.ids[linked]
            items.append(data)
        results = create_many(self.actor, self._spec(record), items, atomic_all=True)
        failed = False
        for p, result in zip(leaders, results, strict=True):
            if not result.ok:
                self._fail(p, record, result.error)
                failed = True
        if failed:
            return False
        for group, result in zip(groups.values(), results, strict=True):
            for i, p in enumerate(group):
                p.ids[record] = result.obj.pk
                p.titles[record] = str(result.obj)
                if i:
                    p.keys[record] = "="  # linked to the record the group's first row created
        if record == "company":  # the new companies' tax numbers, in one step for the batch
            from voronka.parties.actions import add_bank_requisites

            with_inn = [p for p in leaders if p.inn]
            results = add_bank_requisites(self.actor, [(p.ids["company"], {"inn": p.inn}) for p in with_inn])
            for p, result in zip(with_inn, results, strict=True):
                if isinstance(result, ActionError):
                    p.reject(self.column_of.get("company.inn", ""), "company.inn", result.message)
                    failed = True
        return not failed

    def _attempt(self, live: list[RowPlan]) -> bool:
        for p in live:
            for record in list(p.ids):
                if p.actions.get(record) == "create":
                    del p.ids[record]
            for record in list(p.keys):
                if p.keys[record] == "=":
                    p.keys[record] = self._key(record, p)
        for record in ("company", "contact", self.main):
            if not self._create_step(record, live):
                return False
            if record == self.main:
                break
        return True

    # --- outcome -----------------------------------------------------------------------------------------

    def outcome(self, plan: RowPlan) -> str:
        if not plan.ok:
            return "reject"
        if plan.actions.get(self.main) == "match" or plan.keys.get(self.main) == "=":
            return "match"
        return "create"

    def describe(self, plan: RowPlan) -> dict:
        linked = {}
        for record in ("contact", "company"):
            if record != self.main and record in plan.actions:
                linked[record] = {"action": "create" if plan.actions[record] == "create" and plan.keys.get(record) != "="
                                  else "match", "id": plan.ids.get(record), "title": plan.titles.get(record, "")}
        return {"row": plan.number, "action": self.outcome(plan), "id": plan.ids.get(self.main),
                "title": plan.titles.get(self.main, "") or _title(plan.data.get(self.main) or {}),
                "linked": linked, "errors": plan.errors}


class _Named:
    def __init__(self, data: dict):
        self.last_name = data.get("last_name", "")
        self.first_name = data.get("first_name", "")
        self.middle_name = data.get("middle_name", "")


def _title(data: dict) -> str:
    return data.get("title") or data.get("name") or " ".join(
        v for v in (data.get("last_name"), data.get("first_name")) if v) or ""
