"""Bulk synthetic data for benchmarks: ``voronka generate --leads N --deals N --contacts N``.

This is deliberately NOT the action layer. To fill a database with a million leads in minutes it writes
rows straight into the tables, batch by batch with ``executemany`` (the same rows ``bulk_create`` would
write, without building a model instance and preparing every field of every row): no validation, no
permission checks, no timeline entries, no outbox events. Use it for benchmarks and load tests only,
never for real data.

The rows it writes are consistent with what the actions would write:

- every lead and deal sits in a stage of one of its entity type's existing pipelines (the demo's
  pipelines are created through the actions when there are none), with ``stage_semantics``,
  ``stage_changed_at`` and ``closed_at`` matching the stage;
- every record has stage-history rows from its creation (``from_stage`` empty) through each move to
  its current stage, with ``moved_at`` growing and ``seconds_in_previous`` matching; some records are
  sent back a stage (or re-opened after a loss) and move on again, as in real pipelines;
- a lead that reached its success stage was converted (``converted_at``) and, while deals are generated
  with it, has its deal (``lead_id``) created at that moment: up to half of the deals, the chain the
  end-to-end report follows;
- phones and e-mails are ``Communication`` rows of the record's entity type (1 lead, 3 contact,
  4 company) with the normalised value (E.164, lower-cased e-mail) the lookup index expects;
- ``created_at`` is spread over the last year and grows with the id, as in a real database;
- columns the generator does not fill get their model field's default;
- the per-stage totals read model (``pipelines.totals``) is rebuilt at the end.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, models, transaction
from django.utils import timezone

from voronka.core import entity_types

from . import demo

LEAD, DEAL, CONTACT, COMPANY = entity_types.LEAD, entity_types.DEAL, entity_types.CONTACT, entity_types.COMPANY

Progress = Callable[[str, int, int], None]


@dataclass
class Report:
    rows: dict[str, int] = field(default_factory=dict)  # table label -> rows written
    records: dict[str, int] = field(default_factory=dict)  # leads/deals/contacts/companies -> count
    seconds: dict[str, float] = field(default_factory=dict)  # per kind of record, wall time

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


class Inserter:
    """``INSERT`` of many rows of one model with ``executemany``.

    ``given`` names the columns (attnames) each row tuple holds, in order; every other concrete field gets
    its default, prepared once (a column with a database default is left out). Datetime and decimal values are
    adapted for the database; other values must already be what the column stores (str, int, None).
    """

    def __init__(self, model, given: tuple[str, ...]):
        ops = connection.ops
        self.model = model
        fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        by_name = {f.attname: f for f in fields}
        missing = set(given) - set(by_name)
        if missing:
            raise ValueError(f"{model.__name__} has no columns {sorted(missing)}")
        self.adapters: list = []
        for name in given:
            f = by_name[name]
            if isinstance(f, models.DateTimeField):
                self.adapters.append(_sqlite_utc if connection.vendor == "sqlite" else ops.adapt_datetimefield_value)
            elif isinstance(f, models.DecimalField):
                self.adapters.append(lambda v, f=f: ops.adapt_decimalfield_value(v, f.max_digits, f.decimal_places))
            else:
                self.adapters.append(None)
        self.adapt = any(self.adapters)
        rest = [f for f in fields if f.attname not in given and not f.has_db_default()]  # those: the database's
        self.constants = tuple(f.get_db_prep_save(f.get_default(), connection) for f in rest)
        q = ops.quote_name
        self.table = model._meta.db_table
        self.columns = [q(by_name[n].column) for n in given] + [q(f.column) for f in rest]

    def _prepare(self, rows: list[tuple]) -> list[tuple]:
        if not self.adapt:
            return [row + self.constants for row in rows]
        adapters, constants = self.adapters, self.constants
        return [tuple(a(v) if a is not None and v is not None else v for a, v in zip(adapters, row, strict=True))
                + constants for row in rows]

    def insert(self, rows: list[tuple]) -> None:
        if not rows:
            return
        self._write(self.columns, self._prepare(rows))

    def _write(self, columns: list[str], rows: list[tuple]) -> None:
        """The write path's own bulk writer: ``COPY`` on PostgreSQL, ``executemany`` elsewhere."""
        from voronka.core import fastinsert

        table = connection.ops.quote_name(self.table)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
        fastinsert._write(connection, table, columns, sql, rows)

    def insert_with_ids(self, rows: list[tuple]) -> list[int]:
        """Insert and return the new ids, in order. Call inside ``transaction.atomic()``."""
        if not rows:
            return []
        ids = reserve_ids(self.model, len(rows))
        self._write([connection.ops.quote_name("id"), *self.columns],
                    [(pk, *row) for pk, row in zip(ids, self._prepare(rows), strict=True)])
        return ids


def _sqlite_utc(value: dt.datetime) -> str:
    """What Django's SQLite backend stores for an aware datetime (naive UTC text), without its per-value checks."""
    if value.tzinfo is dt.UTC:
        return str(value.replace(tzinfo=None))
    return connection.ops.adapt_datetimefield_value(value)


def reserve_ids(model, n: int) -> list[int]:
    """``n`` fresh primary keys for ``model`` (``fastinsert.reserve_ids``: inside the fill's transaction, which
    holds SQLite's write lock)."""
    from voronka.core import fastinsert

    return fastinsert.reserve_ids(model, n)


@dataclass
class _Route:
    """The stages of one pipeline, in order, split by meaning."""

    pipeline_id: int
    process: list  # [(stage_id, semantics)]
    success: list
    failure: list


STAGED_COLUMNS = ("pipeline_id", "stage_id", "stage_semantics", "stage_changed_at", "closed_at", "created_at",
                  "updated_at", "responsible_id")
LEAD_COLUMNS = ("title", "first_name", "last_name", "company_name", "source", "opportunity", "currency",
                "inquiry") + STAGED_COLUMNS
DEAL_COLUMNS = ("title", "contact_id", "company_id", "lead_id", "opportunity", "currency", "source") + STAGED_COLUMNS
CONTACT_COLUMNS = ("first_name", "last_name", "middle_name", "gender", "city", "position", "company_id",
                   "created_at", "updated_at", "responsible_id")
COMPANY_COLUMNS = ("name", "industry", "site", "created_at", "updated_at", "responsible_id")
LINKED_SHARE = 0.5  # at most this share of the deals comes from the leads converted (see ``Generator.deals``)
RETURN_SHARE = 0.11  # the chance of a move back after each move on (see ``Generator._with_returns``)
HISTORY_COLUMNS = ("entity_type_id", "entity_id", "pipeline_id", "from_stage_id", "to_stage_id", "semantics",
                   "moved_at", "seconds_in_previous", "responsible_id", "entry_point")
COMM_COLUMNS = ("entity_type_id", "entity_id", "kind", "value_type", "value", "normalized", "sort")


class Generator:
    def __init__(self, *, seed: int | None = None, batch: int = 5000, now: dt.datetime | None = None,
                 progress: Progress | None = None):
        self.rnd = random.Random(seed)
        self.batch = max(1, batch)
        self.now = now or timezone.now()
        self.start = self.now - dt.timedelta(days=365)
        self.report = Report()
        self.progress = progress or (lambda label, done, total: None)
        self.converted: list[tuple[dt.datetime, int]] = []  # (when, lead id) of the leads won, in id order

    # ---- what the rows refer to ----

    def routes(self, entity_type_id: int) -> list[_Route]:
        from voronka.pipelines.models import Pipeline, Stage

        pipelines = list(Pipeline.objects.filter(entity_type_id=entity_type_id, is_active=True))
        if not pipelines:
            from voronka.core.actor import Actor
            from voronka.pipelines.actions import create_pipeline

            spec = next(s for s in demo.pipeline_specs() if s["entity_type_id"] == entity_type_id)
            pipelines = [create_pipeline(Actor.system("generate", entry_point="cli"), **spec)]
        routes = []
        for p in pipelines:
            stages = list(Stage.objects.filter(pipeline=p).order_by("sort", "id").values_list("id", "semantics"))
            route = _Route(p.pk, [s for s in stages if s[1] == "process"], [s for s in stages if s[1] == "success"],
                           [s for s in stages if s[1] == "failure"])
            if route.process or route.success or route.failure:
                routes.append(route)
        if not routes:
            raise ValueError(f"The pipelines of entity type {entity_type_id} have no stages.")
        return routes

    def users(self) -> list[int | None]:
        from voronka.identity.models import User

        ids = list(User.objects.filter(is_active=True).values_list("id", flat=True)[:500])
        return ids or [None]

    def sources(self) -> list[str]:
        from .models import Source

        codes = list(Source.objects.filter(is_active=True).values_list("code", flat=True))
        return codes or demo.ensure_sources()

    # ---- the walk through a pipeline ----

    def walk(self, route: _Route, created: dt.datetime) -> list[tuple[int, str, dt.datetime]]:
        """[(stage id, semantics, moved_at)] from creation to the current stage, never later than now."""
        rnd = self.rnd
        process = route.process
        r = rnd.random()
        if process:
            depth = 1 + int(len(process) * rnd.random() ** 3)  # most records stop or fail early, as in a funnel
            if r < 0.12 and route.success:
                path = process + [rnd.choice(route.success)]
            elif r < 0.70 and route.failure:
                path = process[:depth] + [rnd.choice(route.failure)]
            else:
                path = process[:depth]
        else:
            path = [rnd.choice(route.success + route.failure)]
        path = self._with_returns(path)
        out, t = [], created
        for index, (stage_id, semantics) in enumerate(path):
            if index:
                t = t + dt.timedelta(seconds=rnd.expovariate(1 / 86400.0) + 300)
                if t > self.now:
                    break
            out.append((stage_id, semantics, t))
        return out

    def _with_returns(self, path: list) -> list:
        """The path with the moves back real pipelines see: a record sent back to the stage before and moved on
        again (a deal returned from «invoice» to «negotiation»), and a lost record re-opened and lost again.

        Each move from a stage in progress to the next stage is followed by a return with chance
        ``RETURN_SHARE``; each return adds two history rows. With the demo's pipelines this brings a million
        leads and 300k deals to about 5M history rows, the volume the analytics benchmark names.
        """
        rnd = self.rnd
        out = path[:1]
        for prev, step in zip(path, path[1:], strict=False):
            out.append(step)
            if prev[1] == "process" and rnd.random() < RETURN_SHARE:
                out += [prev, step]
        return out

    def _times(self, n: int) -> list[dt.datetime]:
        """``n`` creation moments over the last year, growing with the position."""
        span = (self.now - self.start).total_seconds() - 3600
        rnd = self.rnd
        return [self.start + dt.timedelta(seconds=span * (i + rnd.random()) / n) for i in range(n)]

    def _comms(self, first: str, last: str, email_share: float) -> list[tuple]:
        """(kind, type, value as typed, normalised value, sort) of a phone and maybe an e-mail."""
        digits = f"9{self.rnd.randrange(10**9):09d}"
        out = [("phone", "mobile", demo.format_phone(digits, self.rnd.choice(demo.PHONE_FORMATS)), "+7" + digits, 0)]
        if self.rnd.random() < email_share:
            email = demo.personal_email(self.rnd, first, last)
            out.append(("email", "work", email, email.lower(), 1))
        return out

    # ---- writing ----

    def _count(self, label: str, n: int) -> None:
        self.report.rows[label] = self.report.rows.get(label, 0) + n

    def _write(self, model, columns: tuple[str, ...], entity_type_id: int, label: str, n: int,
               build: Callable, routes: list[_Route] | None, times: list[dt.datetime] | None = None) -> None:
        """Records (with their stage history when ``routes`` is given) and their phones/e-mails, batch by batch.

        ``build(created)`` returns (the record's leading column values, its phones/e-mails).
        """
        from voronka.parties.models import Communication
        from voronka.pipelines.models import StageHistory

        if n <= 0:
            return
        records = Inserter(model, columns)
        history_rows = Inserter(StageHistory, HISTORY_COLUMNS)
        comm_rows = Inserter(Communication, COMM_COLUMNS)
        users = self.users()
        rnd = self.rnd
        times = times or self._times(n)
        began = time.monotonic()
        done = 0
        self.progress(label, 0, n)
        while done < n:
            size = min(self.batch, n - done)
            rows, walks, comms = [], [], []
            for created in times[done:done + size]:
                values, obj_comms = build(created)
                responsible = rnd.choice(users)
                if routes is None:
                    rows.append((*values, created, created, responsible))
                else:
                    route = routes[0] if len(routes) == 1 else rnd.choice(routes)
                    walk = self.walk(route, created)
                    stage_id, semantics, moved = walk[-1]
                    rows.append((*values, route.pipeline_id, stage_id, semantics, moved,
                                 moved if semantics != "process" else None, created, moved, responsible))
                    walks.append((walk, route.pipeline_id, responsible))
                comms.append(obj_comms)
            with transaction.atomic():
                ids = records.insert_with_ids(rows)
                history = []
                for pk, (walk, pipeline_id, responsible) in zip(ids, walks, strict=False):
                    prev_stage = prev_time = None
                    for stage_id, semantics, moved in walk:
                        seconds = int((moved - prev_time).total_seconds()) if prev_time else None
                        history.append((entity_type_id, pk, pipeline_id, prev_stage, stage_id, semantics, moved,
                                        seconds, responsible, "generate"))
                        prev_stage, prev_time = stage_id, moved
                history_rows.insert(history)
                if entity_type_id == LEAD:  # the leads won: converted into a deal at that moment (``deals``)
                    self.converted += [(walk[-1][2], pk) for pk, (walk, _p, _r) in zip(ids, walks, strict=True)
                                       if walk[-1][1] == "success"]
                phones = [(entity_type_id, pk, *c) for pk, obj_comms in zip(ids, comms, strict=True) for c in obj_comms]
                comm_rows.insert(phones)
            self._count(label, len(rows))
            self._count("stage history", len(history))
            self._count("phones and e-mails", len(phones))
            done += size
            self.progress(label, done, n)
        self.report.records[label] = self.report.records.get(label, 0) + n
        self.report.seconds[label] = self.report.seconds.get(label, 0.0) + time.monotonic() - began

    def leads(self, n: int) -> None:
        from .models import Lead

        if n <= 0:
            return
        sources = self.sources()
        rnd = self.rnd

        def build(created):
            p = demo.person(rnd)
            what, lo, hi = rnd.choice(demo.PRODUCTS)
            vehicle = rnd.choice(demo.VEHICLES)
            company = demo.company_name(rnd)[0] if rnd.random() < 0.6 else ""
            values = (f"{what[0].upper()}{what[1:]} для {vehicle}", p["first_name"], p["last_name"], company,
                      rnd.choice(sources), Decimal(rnd.randrange(lo, hi * 10, 100)), "RUB",
                      f"Нужны {what} для {vehicle}.")
            return values, self._comms(p["first_name"], p["last_name"], 0.3)

        self._write(Lead, LEAD_COLUMNS, LEAD, "leads", n, build, self.routes(LEAD))
        # a won lead was converted: its ``converted_at`` is the moment it reached the success stage
        Lead.objects.filter(stage_semantics="success", converted_at__isnull=True, closed_at__isnull=False) \
            .update(converted_at=models.F("closed_at"))

    def deals(self, n: int) -> None:
        from voronka.deals.models import Deal
        from voronka.parties.models import Contact

        if n <= 0:
            return
        contacts = list(Contact.objects.filter(deleted_at__isnull=True).values_list("id", "company_id")[:1_000_000])
        sources = self.sources()
        rnd = self.rnd
        # the leads converted by ``leads`` each get their deal, created at the conversion (up to ``LINKED_SHARE``
        # of the deals); the other deals come without a lead (repeat clients, deals opened by hand)
        linked = self.converted[:int(n * LINKED_SHARE)]
        self.converted = self.converted[len(linked):]
        starts = sorted([(t, pk) for t, pk in linked] + [(t, None) for t in self._times(n - len(linked))],
                        key=lambda x: x[0])
        lead_of = iter(pk for _t, pk in starts)

        def build(created):
            what, lo, hi = rnd.choice(demo.PRODUCTS)
            contact, company = rnd.choice(contacts) if contacts and rnd.random() < 0.9 else (None, None)
            values = (f"Поставка: {what} ({rnd.choice(demo.VEHICLES)})", contact, company, next(lead_of),
                      Decimal(rnd.randrange(lo * 5, hi * 20, 100)), "RUB", rnd.choice(sources))
            return values, []

        self._write(Deal, DEAL_COLUMNS, DEAL, "deals", n, build, self.routes(DEAL), times=[t for t, _pk in starts])

    def contacts(self, n: int) -> None:
        from voronka.parties.models import Company, Contact

        if n <= 0:
            return
        companies = list(Company.objects.filter(deleted_at__isnull=True).values_list("id", flat=True)[:1_000_000])
        rnd = self.rnd

        def build(created):
            p = demo.person(rnd)
            company = rnd.choice(companies) if companies and rnd.random() < 0.7 else None
            values = (p["first_name"], p["last_name"], p["middle_name"], p["gender"], rnd.choice(demo.CITIES),
                      rnd.choice(demo.POSITIONS) if company else "", company)
            return values, self._comms(p["first_name"], p["last_name"], 0.6)

        self._write(Contact, CONTACT_COLUMNS, CONTACT, "contacts", n, build, None)

    def companies(self, n: int) -> None:
        from voronka.parties.models import Company

        rnd = self.rnd

        def build(created):
            name, industry, _kind = demo.company_name(rnd)
            site = demo.site_of(name)
            digits = f"{rnd.choice(('495', '499', '812', '343'))}{rnd.randrange(10**7):07d}"
            comms = [("phone", "work", demo.format_phone(digits, "+7 ({a}) {b}-{c}-{d}"), "+7" + digits, 0),
                     ("email", "work", f"info@{site}.ru", f"info@{site}.ru", 1),
                     ("web", "work", f"https://{site}.ru", f"{site}.ru", 2)]  # the site is the first web address
            return (name, industry, f"https://{site}.ru"), comms

        self._write(Company, COMPANY_COLUMNS, COMPANY, "companies", n, build, None)


    def rebuild_totals(self, *, leads: bool, deals: bool) -> None:
        """The per-stage counts and sums the actions keep in their transaction, recomputed after the bulk load."""
        from voronka.deals.models import Deal
        from voronka.pipelines import daily, totals

        from .models import Lead

        began = time.monotonic()
        with transaction.atomic():
            if leads:
                totals.rebuild(LEAD, Lead)
            if deals:
                totals.rebuild(DEAL, Deal)
        if leads or deals:
            self.report.seconds["stage totals"] = time.monotonic() - began
        began = time.monotonic()
        with transaction.atomic():  # the reports' daily read model (``voronka analytics-rebuild`` does the same)
            if leads:
                daily.rebuild(LEAD, Lead)
            if deals:
                daily.rebuild(DEAL, Deal)
        if leads or deals:
            self.report.seconds["daily totals"] = time.monotonic() - began
        with connection.cursor() as cursor:  # fresh planner statistics after a bulk load
            cursor.execute("ANALYZE")


def generate(*, leads: int = 0, deals: int = 0, contacts: int = 0, companies: int = 0, batch: int = 5000,
             seed: int | None = None, progress: Progress | None = None, now: dt.datetime | None = None) -> Report:
    """Write synthetic records; companies first, then contacts, leads and deals (which link to them)."""
    gen = Generator(seed=seed, batch=batch, progress=progress, now=now)
    gen.companies(companies)
    gen.contacts(contacts)
    gen.leads(leads)
    gen.deals(deals)
    gen.rebuild_totals(leads=leads > 0, deals=deals > 0)
    return gen.report
