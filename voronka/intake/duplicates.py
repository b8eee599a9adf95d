"""Duplicate search (F13) by normalised phone, e-mail and similar name + company, and the merge of records.

Every lookup goes through an index: phones and e-mails through ``parties.Communication`` (kind,
normalized), names through ``intake.NameKey`` (kind, key). Similar names are then scored with rapidfuzz
among a bounded set of candidates (the same company, then those sharing a pair of name words), never by a
scan.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from rapidfuzz import fuzz, process

from voronka.core import audit, entity_types, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.bound import cursor as bound_cursor
from voronka.core.errors import ValidationFailed
from voronka.core.normalize import normalize_email as _normalize_email
from voronka.core.normalize import normalize_phone as _normalize_phone
from voronka.core.prepared import Prepared
from voronka.core.recordkit import RecordSpec, lock, update_one
from voronka.links import actions as links_actions
from voronka.parties.models import Communication, Contact

from . import names
from .models import NameKey

_CONTACT_COMPANY = Contact._meta.get_field("company")
CANDIDATES = 200  # at most this many phone/e-mail rows are read
TYPE_ORDER = {entity_types.CONTACT: 0, entity_types.LEAD: 1, entity_types.COMPANY: 2, entity_types.DEAL: 3}


def threshold() -> int:
    return int(getattr(settings, "VORONKA_DUPLICATE_NAME_THRESHOLD", 88))


_UNREAD = object()  # a match whose record has not been read (only its id and whether it is an open lead are known)


class Match:
    """A record found by ``find``: its kind and id, why (``reasons``) and how well (``score``). ``open_lead``: a
    live lead not converted and in a stage in progress (``best_target``'s first choice). ``obj``, the record
    itself, is read on first use unless ``find`` was asked to read it (``load``) or ``load`` read it since: the
    search's own answer needs only the ids and ``open_lead``."""

    __slots__ = ("entity_type_id", "id", "reasons", "score", "open_lead", "_obj")

    def __init__(self, entity_type_id: int, id: int, reasons: list[str] | None = None, score: int = 0,
                 obj: object = None, open_lead: bool = False):
        self.entity_type_id, self.id, self.score = entity_type_id, id, score
        self.reasons = reasons if reasons is not None else []
        self.open_lead, self._obj = open_lead, _UNREAD
        if obj is not None:
            self.obj = obj

    @property
    def obj(self):
        if self._obj is _UNREAD:
            load([self])
        return self._obj

    @obj.setter
    def obj(self, value) -> None:
        self._obj = value
        self.open_lead = _is_open_lead(self.entity_type_id, value) if value is not None else False

    def __repr__(self) -> str:
        return f"Match({self.entity_type_id}, {self.id}, {self.reasons!r}, score={self.score})"

    def as_dict(self) -> dict:
        return {"entity_type_id": self.entity_type_id, "id": self.id, "reasons": self.reasons, "score": self.score,
                "title": str(self.obj) if self.obj is not None else ""}


def _is_open_lead(entity_type_id: int, obj) -> bool:
    return entity_type_id == entity_types.LEAD and obj.converted_at is None and obj.stage_semantics == "process"


@functools.lru_cache(maxsize=512)
def _phone(value: str, region: str) -> str:
    return _normalize_phone(value, region)


@functools.lru_cache(maxsize=512)
def _email(value: str) -> str:
    return _normalize_email(value)


def normalize_phone(value: str) -> str:
    """``core.normalize.normalize_phone`` of the default region, remembered for the last few hundred numbers: a
    submission's phone is normalised by the form's check and again by the duplicate search (a number that is not
    one raises each time)."""
    return _phone(value, settings.VORONKA_DEFAULT_REGION)


def normalize_email(value: str) -> str:
    """``core.normalize.normalize_email``, remembered like ``normalize_phone``."""
    return _email(value)


def _clean(values, normalizer) -> list[str]:
    result = []
    for value in values or ():
        if isinstance(value, dict):
            value = value.get("value")
        if not isinstance(value, str):
            continue
        try:
            normalized = normalizer(value)
        except ValidationError:
            continue
        if normalized not in result:
            result.append(normalized)
    return result[:20]


NAME_WORDS = 3  # name words of a request that make pair keys (at most 3 pairs)
MATCHES = 10  # at most this many matches are returned (and loaded), best first


def candidates() -> int:
    """At most this many records are scored per index key (a company, a pair of name words)."""
    return int(getattr(settings, "VORONKA_DUPLICATE_CANDIDATES", 50))


def find(*, phones=(), emails=(), name: str = "", company: str = "", types=names.TYPES,
         exclude: tuple[int, int] | None = None, stats: dict | None = None, load: bool = True) -> list[Match]:
    """Live records that look like the same person or company, best first.

    A phone or e-mail match is the strongest proof: when one is found the name search does not run. Else the
    company and its people are looked at first (the company's key, and each pair of name words at that
    company), then the records with the same whole name, then those sharing a pair of name words (one bounded
    walk per key, at most three pairs; all the walks in one statement that reads only the covering index).
    Candidates are scored from their index rows; only the matches (at most ``MATCHES``) are read from their
    tables: as model instances (``Match.obj``) with ``load``, else only which of them are live and which are open
    leads (one statement for the three kinds; a match's ``obj`` is then read on first use). ``stats``, if given, is
    filled with the number of candidates scored and the index walks made.
    """
    found: dict[tuple[int, int], Match] = {}
    phones, emails = _clean(phones, normalize_phone), _clean(emails, normalize_email)
    types = list(types)
    if phones or emails:
        for kind, t, pk in _comm_query(len(phones), len(emails), tuple(types)).rows(*phones, *emails):
            match = found.setdefault((t, pk), Match(t, pk, score=100))
            if kind not in match.reasons:
                match.reasons.append(kind)
    scored: set[tuple[int, int]] = set()
    walks: list[tuple[str, str, tuple[int, ...]]] = []
    if not found:  # a phone or e-mail matched: that is the record; no name search
        name_words, ckey = names.words(name), names.company_key(company)
        # the company first: the company itself, then the person at that company (a pair of name words joined
        # to the company key: selective however common the name or the company); then the pairs of name words
        # alone, for a namesake with no company on file, the whole name first (the exact person among many who
        # share the pairs). Every walk is bounded; all of them are one statement.
        people = tuple(t for t in types if t != entity_types.COMPANY)
        companies = tuple(t for t in types if t == entity_types.COMPANY)
        pairs = names.pair_keys(name_words, NAME_WORDS) if name_words else []
        if ckey:
            walks.append(("c", ckey, companies))
            walks += [("q", names.with_company(key, ckey), people) for key in pairs]
        if len(name_words) > 1:
            walks.append(("f", names.full_key(name_words), people))
        walks += [("p", key, people) for key in pairs]
        walks = [w for w in walks if w[2]]
        if walks:
            _score(_walk_rows(walks, candidates()), " ".join(name_words), ckey, threshold(), found, scored)
    if stats is not None:
        stats.update(candidates=len(scored), walks=len(walks))
    best = [m for m in sorted(found.values(), key=_rank)[:MATCHES + (1 if exclude else 0)]
            if (m.entity_type_id, m.id) != exclude]
    if load:
        objs = _load({(m.entity_type_id, m.id) for m in best})
        for match in best:
            match.obj = objs.get((match.entity_type_id, match.id))
        return [m for m in best if m.obj is not None][:MATCHES]
    live = _live([(m.entity_type_id, m.id) for m in best])
    result = []
    for match in best:
        state = live.get((match.entity_type_id, match.id))
        if state is None:  # deleted (its index rows go with the outbox consumer)
            continue
        if isinstance(state, bool):
            match.open_lead = state
        else:  # a kind without a light read: read whole
            match.obj = state
        result.append(match)
    return result[:MATCHES]


def load(matches) -> None:
    """Read the records of these matches that are not read yet (one statement per kind); a record deleted
    meanwhile leaves ``obj`` None."""
    unread = [m for m in matches if m._obj is _UNREAD]
    if unread:
        objs = _load({(m.entity_type_id, m.id) for m in unread})
        for match in unread:
            match.obj = objs.get((match.entity_type_id, match.id))


def recheck(match: Match) -> bool:
    """Read again whether the match's record is live and an open lead (under the write lock, for a search made
    before it); its ``obj`` is read anew on next use. False: it is gone."""
    state = _live([(match.entity_type_id, match.id)]).get((match.entity_type_id, match.id))
    if state is None:
        return False
    if isinstance(state, bool):
        match._obj, match.open_lead = _UNREAD, state
    else:
        match.obj = state
    return True


_queries: dict[tuple, Prepared] = {}


def _comm_query(n_phones: int, n_emails: int, types: tuple) -> Prepared:
    """The phone/e-mail lookup of ``find`` for one shape of request, compiled once (the ``parties.Communication``
    (kind, normalized) index)."""
    key = ("comm", n_phones, n_emails, types)
    prepared = _queries.get(key)
    if prepared is None:
        def build(*values):
            q = Q()
            if n_phones:
                q |= Q(kind="phone", normalized__in=values[:n_phones])
            if n_emails:
                q |= Q(kind="email", normalized__in=values[n_phones:])
            return Communication.objects.filter(q, entity_type_id__in=types) \
                .values_list("kind", "entity_type_id", "entity_id")[:CANDIDATES]

        # bound: on PostgreSQL values bound on the server, prepared once per connection; on SQLite the driver's cursor
        # without Django's wrapper layers (it runs on every submission)
        prepared = _queries[key] = Prepared(build, [f"\x00v{i}" for i in range(n_phones + n_emails)], bound=True)
    return prepared


def _score(rows, wanted: str, ckey: str, limit: int, found: dict, scored: set) -> None:
    """Score the candidates of the index walks (their rows carry the record's name words and company key).

    A record comes once however many of its keys were walked (every row of a record carries the same words and
    company, so which walk brought it does not matter); a person at another company is not scored by name; the
    distinct names left are scored in one batch (``name_scores``), each company once."""
    company_scores: dict[str, float] = {}
    people: list[tuple[int, int, str, bool]] = []
    for t, pk, their_words, their_company in rows:
        if (t, pk) in scored:
            continue
        scored.add((t, pk))
        company_score = None
        if ckey and their_company:
            company_score = company_scores.get(their_company)
            if company_score is None:
                company_score = company_scores[their_company] = fuzz.token_sort_ratio(ckey, their_company)
            if company_score < limit:  # another company: neither it nor its people are this one
                continue
        if t == entity_types.COMPANY:
            if company_score is not None:
                found.setdefault((t, pk), Match(t, pk, score=int(company_score))).reasons.append("company")
        elif wanted and their_words:
            people.append((t, pk, their_words, company_score is not None))
    scores = name_scores(wanted, {their_words for _, _, their_words, _ in people}, limit) if people else {}
    for t, pk, their_words, at_company in people:
        score = scores.get(their_words, 0)
        if score >= limit:
            m = found.setdefault((t, pk), Match(t, pk, score=int(score)))
            # the same company too: a stronger match than a namesake with no company on file
            for reason in ("name", "company") if at_company else ("name",):
                if reason not in m.reasons:
                    m.reasons.append(reason)


def name_scores(name: str, others, cutoff: float) -> dict[str, float]:
    """``name_score`` of one name against many, in at most two rapidfuzz batch calls (no Python call per name);
    only the names scoring ``cutoff`` or more are given."""
    others = list(others)
    best = {others[i]: score for _, score, i in process.extract(
        name, others, scorer=fuzz.token_sort_ratio, processor=None, score_cutoff=cutoff, limit=None)}
    if len(name.split()) >= 2:
        several = [o for o in others if best.get(o, 0) < 100 and len(o.split()) >= 2]
        for _, score, i in process.extract(name, several, scorer=fuzz.token_set_ratio, processor=None,
                                           score_cutoff=cutoff, limit=None):
            if score > best.get(several[i], 0):
                best[several[i]] = score
    return best


_walk_sql: dict[tuple, str] = {}


def _walk_statement(walks: list[tuple[str, str, tuple[int, ...]]], bound: int) -> tuple[str, list]:
    """The bounded index walks of one search as one statement: for each (kind, key, types) the newest ``bound``
    rows under the key, as (entity_type_id, entity_id, words, company).

    Each walk is a range of the covering index ``namekey_walk_idx`` (kind, key, newest first, then every column
    read), so no table row is read; a ``UNION ALL`` of ``LIMIT``ed subqueries keeps each walk bounded on its own.
    The text depends only on the shape (the kinds and types of the walks, the bound): it is built once per shape
    and, on PostgreSQL, prepared once per connection."""
    from django.db import connection

    shape = (connection.vendor, bound, tuple((kind, types) for kind, _, types in walks))
    sql = _walk_sql.get(shape)
    if sql is None:
        q = connection.ops.quote_name
        table = q(NameKey._meta.db_table)
        t, pk, kind, key, words, company = (q(NameKey._meta.get_field(f).column) for f in (
            "entity_type_id", "entity_id", "kind", "key", "words", "company"))
        sql = _walk_sql[shape] = " UNION ALL ".join(
            f"SELECT * FROM (SELECT {t}, {pk}, {words}, {company} FROM {table} WHERE {kind} = %s AND {key} = %s "
            f"AND {t} IN ({', '.join(str(int(i)) for i in of_types)}) ORDER BY {pk} DESC LIMIT {int(bound)}) w{n}"
            for n, (_, of_types) in enumerate(shape[2]))
    return sql, [value for kind, key, _ in walks for value in (kind, key)]


def _walk_rows(walks: list[tuple[str, str, tuple[int, ...]]], bound: int) -> list[tuple]:
    from django.db import connection

    sql, params = _walk_statement(walks, bound)
    with bound_cursor(connection, prepare=True) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _columns(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


def _load_query(entity_type_id: int, n: int) -> Prepared:
    """The live records of one kind among ``n`` ids, every column (for ``Model.from_db``), compiled once."""
    key = ("load", entity_type_id, n)
    prepared = _queries.get(key)
    if prepared is None:
        model = entity_types.get(entity_type_id).model
        columns = _columns(model)
        if entity_type_id == entity_types.CONTACT:  # its company's columns too (a LEFT JOIN, as select_related)
            from voronka.parties.models import Company

            columns = columns + [f"company__{c}" for c in _columns(Company)]
        prepared = _queries[key] = Prepared(
            lambda *ids: model.objects.filter(pk__in=ids, deleted_at__isnull=True).order_by()
            .values_list(*columns), [-(i + 1) for i in range(n)])
    return prepared


_LIGHT = (entity_types.LEAD, entity_types.CONTACT, entity_types.COMPANY)
_live_sql: dict[tuple, str] = {}


def _live(keys) -> dict[tuple[int, int], object]:
    """Which of these records are live: {(kind, id): whether it is an open lead} for leads, contacts and companies,
    in one statement (a ``UNION ALL`` of one part per kind, built once per shape: the kinds and how many ids of
    each), no model instances; {(kind, id): the record} for any other kind (read whole)."""
    from django.db import connection

    by_type: dict[int, list[int]] = {}
    for t, pk in keys:
        by_type.setdefault(t, []).append(pk)
    result: dict[tuple[int, int], object] = {}
    other = {(t, pk) for t, ids in by_type.items() if t not in _LIGHT for pk in ids}
    if other:
        result.update(_load(other))
    light = sorted((t, ids) for t, ids in by_type.items() if t in _LIGHT)
    if not light:
        return result
    shape = (connection.vendor, tuple((t, len(ids)) for t, ids in light))
    sql = _live_sql.get(shape)
    if sql is None:
        q = connection.ops.quote_name
        parts = []
        for t, n in shape[1]:
            model = entity_types.get(t).model
            table, pk, deleted = q(model._meta.db_table), q(model._meta.pk.column), q(
                model._meta.get_field("deleted_at").column)
            is_open = "0"
            if t == entity_types.LEAD:
                is_open = (f"CASE WHEN {q(model._meta.get_field('converted_at').column)} IS NULL AND "
                           f"{q(model._meta.get_field('stage_semantics').column)} = 'process' THEN 1 ELSE 0 END")
            parts.append(f"SELECT {int(t)}, {pk}, {is_open} FROM {table} WHERE {pk} IN ({', '.join(['%s'] * n)}) "
                         f"AND {deleted} IS NULL")
        if len(_live_sql) > 512:  # bounded however many shapes come
            _live_sql.clear()
        sql = _live_sql[shape] = " UNION ALL ".join(parts)
    with bound_cursor(connection, prepare=True) as cursor:
        cursor.execute(sql, [pk for _, ids in light for pk in ids])
        for t, pk, is_open in cursor.fetchall():
            result[(t, pk)] = bool(is_open)
    return result


def _rank(m: Match):
    return (-len(m.reasons) - (1 if {"phone", "email"} & set(m.reasons) else 0), -m.score,
            TYPE_ORDER.get(m.entity_type_id, 9), -m.id)


def name_score(a: str, b: str, cutoff: float = 0) -> float:
    """Similarity of two normalised names; a middle name present on one side only does not count against it,
    but a single word (a first name alone) is never «the same person» as a longer name. With ``cutoff`` a score
    below it may be given as 0 (rapidfuzz stops early)."""
    score = fuzz.token_sort_ratio(a, b, score_cutoff=cutoff)
    if score < 100 and min(len(a.split()), len(b.split())) >= 2:
        score = max(score, fuzz.token_set_ratio(a, b, score_cutoff=cutoff))
    return score


def _load(keys) -> dict[tuple[int, int], object]:
    by_type: dict[int, list[int]] = {}
    for t, pk in keys:
        by_type.setdefault(t, []).append(pk)
    objs = {}
    for t, ids in by_type.items():
        if t in (entity_types.LEAD, entity_types.COMPANY, entity_types.CONTACT):  # compiled once per count
            model = entity_types.get(t).model
            columns = _columns(model)
            width = len(columns)
            for row in _load_query(t, len(ids)).rows(*ids):
                obj = model.from_db("default", columns, row[:width])
                if t == entity_types.CONTACT:  # as select_related("company"): the company is loaded with it
                    from voronka.parties.models import Company

                    company = Company.from_db("default", _columns(Company), row[width:]) \
                        if obj.company_id is not None and row[width] is not None else None
                    _CONTACT_COMPANY.set_cached_value(obj, company)
                objs[(t, obj.pk)] = obj
            continue
        qs = entity_types.get(t).model.objects.filter(pk__in=ids, deleted_at__isnull=True)
        for obj in qs:
            objs[(t, obj.pk)] = obj
    return objs


def find_for(actor: Actor, **criteria) -> list[Match]:
    """``find`` narrowed to what the actor may read (the lookup of the API and the UI)."""
    return [m for m in find(**criteria, load=True) if policies.can(actor, policies.READ, m.entity_type_id, m.obj)]


def is_open_lead(match: Match) -> bool:
    return match.open_lead


def best_target(matches: list[Match]) -> Match | None:
    """Where an inbound message belongs: an open lead first, then a contact, then a company."""
    for test in (is_open_lead, lambda m: m.entity_type_id == entity_types.CONTACT,
                 lambda m: m.entity_type_id == entity_types.COMPANY):
        for match in matches:
            if test(match):
                return match
    return None


def open_deals_of(entity_type_id: int, obj) -> list[int]:
    """Open deals of a contact or company (an inbound message is shown on them too)."""
    return open_deal_ids(entity_type_id, obj.pk)


def open_deal_ids(entity_type_id: int, pk: int) -> list[int]:
    """``open_deals_of`` by id: no query at all for a lead."""
    query = _OPEN_DEALS.get(entity_type_id)
    if query is None:
        return []
    return [row[0] for row in query.rows(pk)]


def _open_deals_query(column: str) -> Prepared:
    """The open deals of a contact or company, newest 20: compiled once (it runs on every attached submission)."""
    def build(pk):
        from voronka.deals.models import Deal

        return Deal.objects.filter(**{column: pk}, deleted_at__isnull=True, stage_semantics="process") \
            .order_by("-id").values_list("id")[:20]
    return Prepared(build, [-7], bound=True)


_OPEN_DEALS = {entity_types.CONTACT: _open_deals_query("contact_id"), entity_types.COMPANY: _open_deals_query("company_id")}


# --- merge ---------------------------------------------------------------------------------------

def spec_for(entity_type_id: int) -> RecordSpec:
    from voronka.deals.actions import DEAL
    from voronka.leads.actions import LEAD
    from voronka.parties.actions import COMPANY, CONTACT

    specs = {entity_types.LEAD: LEAD, entity_types.DEAL: DEAL, entity_types.CONTACT: CONTACT,
             entity_types.COMPANY: COMPANY}
    if entity_type_id not in specs:
        raise ValidationFailed(_("Records of this kind cannot be merged."), fields={"entity_type_id": [_("unknown")]})
    return specs[entity_type_id]


def _repoint_links(entity_type_id: int, keep: int, others: list[int]) -> dict[str, int]:
    """Links from other records to the merged ones now point at the kept record."""
    from voronka.activities.models import Task
    from voronka.core.models import Observer
    from voronka.deals.models import Deal
    from voronka.leads.models import Lead
    from voronka.parties.models import Contact

    from .models import DuplicateMark, IntakeLog, MailAttachment, MailMessage, TelegramChat

    moved = {"tasks": Task.objects.filter(entity_type_id=entity_type_id, entity_id__in=others).update(entity_id=keep)}
    if entity_type_id == entity_types.CONTACT:
        moved["leads"] = Lead.objects.filter(contact_id__in=others).update(contact_id=keep)
        moved["deals"] = Deal.objects.filter(contact_id__in=others).update(contact_id=keep)
    elif entity_type_id == entity_types.COMPANY:
        moved["leads"] = Lead.objects.filter(company_id__in=others).update(company_id=keep)
        moved["deals"] = Deal.objects.filter(company_id__in=others).update(company_id=keep)
        moved["contacts"] = Contact.objects.filter(company_id__in=others).update(company_id=keep)
    elif entity_type_id == entity_types.LEAD:
        moved["deals"] = Deal.objects.filter(lead_id__in=others).update(lead_id=keep)
    watching = set(Observer.objects.filter(entity_type_id=entity_type_id, entity_id=keep).values_list("user_id", flat=True))
    for obs in Observer.objects.filter(entity_type_id=entity_type_id, entity_id__in=others):
        if obs.user_id not in watching:
            Observer.objects.create(entity_type_id=entity_type_id, entity_id=keep, user_id=obs.user_id)
            watching.add(obs.user_id)
    TelegramChat.objects.filter(entity_type_id=entity_type_id, entity_id__in=others).update(entity_id=keep)
    IntakeLog.objects.filter(entity_type_id=entity_type_id, entity_id__in=others).update(entity_id=keep)
    # replies to mail that went to a merged record thread onto the kept one; its attachments follow
    MailMessage.objects.filter(entity_type_id=entity_type_id, entity_id__in=others).update(entity_id=keep)
    MailAttachment.objects.filter(entity_type_id=entity_type_id, entity_id__in=others).update(entity_id=keep)
    DuplicateMark.objects.filter(entity_type_id=entity_type_id, entity_id__in=others).update(resolved_at=timezone.now())
    # phones and e-mails the kept record does not have yet move over; identical ones stay with the merged record
    have = set(Communication.objects.filter(entity_type_id=entity_type_id, entity_id=keep)
               .values_list("kind", "normalized"))
    move_ids = []
    for comm in Communication.objects.filter(entity_type_id=entity_type_id, entity_id__in=others).order_by("id"):
        if (comm.kind, comm.normalized) not in have:
            have.add((comm.kind, comm.normalized))
            move_ids.append(comm.pk)
    moved["communications"] = Communication.objects.filter(pk__in=move_ids).update(entity_id=keep)
    return moved


def merge_records(actor: Actor, entity_type_id: int, keep_id: int, other_ids: list[int], *,
                  values: dict[str, int] | None = None):
    """Merge ``other_ids`` into ``keep_id`` (records of one kind).

    ``values`` picks field values: ``{"first_name": 12, "custom.inn": 14}`` takes that field from record 12 or
    14 (one of the merged). Every timeline entry of the merged records is shown on the kept one, tasks,
    links, observers and phones/e-mails move to it, stage history stays as it was, and the merged records
    go to the recycle bin (restorable). The merge is written to the timeline and the audit log.
    """
    spec = spec_for(entity_type_id)
    values = values or {}
    if not isinstance(other_ids, list) or not other_ids or not all(isinstance(i, int) for i in other_ids):
        raise ValidationFailed(_("Give the records to merge."), fields={"merge": [_("a list of ids")]})
    others = sorted(set(other_ids) - {keep_id})
    if not others:
        raise ValidationFailed(_("Give at least one other record to merge."), fields={"merge": [_("a list of ids")]})
    if not isinstance(values, dict):
        raise ValidationFailed(_("Values must map a field to a record id."), fields={"values": [_("not valid")]})
    with transaction.atomic():
        records = {pk: lock(spec, pk) for pk in sorted([keep_id, *others])}  # one order: no deadlock
        for obj in records.values():
            policies.require(actor, policies.READ, entity_type_id, obj)
            policies.require(actor, policies.UPDATE, entity_type_id, obj)
        data: dict = {}
        custom: dict = {}
        bad = {}
        for name, source_id in values.items():
            source = records.get(source_id) if isinstance(source_id, int) else None
            if source is None:
                bad[name] = [_("Must be the id of one of the merged records.")]
            elif name.startswith("custom."):
                custom[name.removeprefix("custom.")] = (source.custom or {}).get(name.removeprefix("custom."))
            elif name in spec.writable:
                data[name] = getattr(source, f"{name}_id") if name in spec._fk else getattr(source, name)
            else:
                bad[name] = [_("Unknown field.")]
        if bad:
            raise ValidationFailed(_("Some fields are not valid."), fields=bad)
        if custom:
            data["custom"] = custom
        moved = _repoint_links(entity_type_id, keep_id, others)
        moved["record_links"] = sum(links_actions.repoint(actor, (entity_type_id, pk), (entity_type_id, keep_id))
                                    for pk in others)
        now = timezone.now()
        for pk in others:
            obj = records[pk]
            history.bind_history((entity_type_id, pk), [(entity_type_id, keep_id)])
            obj.deleted_at = now
            obj.save(update_fields=["deleted_at"])
            for hook in spec.hooks:
                hook.after_delete(obj, spec)
            history.entry(actor, entity_type_id, pk, "deleted", text=_("Merged into #%(id)s.") % {"id": keep_id},
                          data={"merged_into": keep_id})
            outbox.emit(actor, f"{spec.code}.deleted", entity_type_id, pk, {"merged_into": keep_id})
        if "site" in spec.writable and "site" not in data:  # a company's site is its first web address
            first = (Communication.objects.filter(entity_type_id=entity_type_id, entity_id=keep_id, kind="web")
                     .values_list("value", flat=True).first() or "")[:255]
            if first != (records[keep_id].site or ""):
                data["site"] = first
        kept = update_one(actor, spec, keep_id, data) if data else records[keep_id]
        if entity_type_id == entity_types.LEAD:  # the deals re-pointed above bypassed the deals' hooks
            from voronka.deals.leadstatus import sync

            sync([keep_id, *others])
            kept.refresh_from_db(fields=["deal_status"])
        elif entity_type_id == entity_types.DEAL:  # the links (items made from a deal) moved to the kept deal
            # without the deals' hooks: its lead, the merged deals' leads and the leads of the deals it was made
            # from have their end-to-end outcome recomputed (``voronka/deals/leadstatus.py``)
            from voronka.deals.leadstatus import leads_around, sync

            sync({records[pk].lead_id for pk in (keep_id, *others)} | leads_around([keep_id]))
        history.entry(actor, entity_type_id, keep_id, "updated",
                      text=_("Merged with %(ids)s.") % {"ids": ", ".join(f"#{pk}" for pk in others)},
                      changes={"merged": [[], others]}, data={"merged": others, "values": values, "moved": moved})
        audit.record(actor, "record.merged", entity_type_id=entity_type_id, entity_id=keep_id, count=len(others),
                     merged=others, values=values)
        outbox.emit(actor, f"{spec.code}.merged", entity_type_id, keep_id, {"merged": others})
        names.refresh(entity_type_id, [keep_id, *others])
        return kept
