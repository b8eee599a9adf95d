"""Matching a whole chunk of import rows to existing contacts or companies with a few queries.

The per-row duplicate search (``intake.duplicates.find_for``) costs 4–6 queries a row; an import of 100k rows
would spend most of its time there. Here one chunk is matched at once, with the same rules and order:

- tax numbers (INN): one query for every INN of the chunk (``BankRequisite.inn`` is indexed);
- phones and e-mails: one query per kind for every normalised value of the chunk (``Communication``
  (kind, normalized) index);
- similar names, only for rows without any strong key: one bounded index walk per *distinct* name key of the
  chunk (the newest ``duplicates.CANDIDATES`` records of that key, as in the per-row search), then one query for
  the candidates' index rows, scored with rapidfuzz like ``duplicates.find``;
- the matched records are loaded through ``policies.visible`` (one query per kind of record): a record the
  importing user may not read, or one in the recycle bin, is never matched.

A query is a constant per chunk (plus one per distinct name key of rows that carry no phone, e-mail or INN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rapidfuzz import fuzz

from voronka.core import entity_types, policies
from voronka.core.actor import Actor
from voronka.intake import duplicates, names
from voronka.intake.models import NameKey
from voronka.parties.models import BankRequisite, Communication


@dataclass
class Query:
    """What one row knows about the record it means."""

    phones: list[str] = field(default_factory=list)  # normalised
    emails: list[str] = field(default_factory=list)  # normalised
    inn: str = ""
    name: str = ""  # a person's name (contacts)
    company: str = ""  # the company's name (companies) or the contact's company
    strong: bool = False  # the row gave a phone, an e-mail or an INN: a similar name is not looked for


def query(*, phones=(), emails=(), inn: str = "", name: str = "", company: str = "") -> Query:
    strong = bool(phones or emails or inn)
    return Query(duplicates._clean(phones, duplicates.normalize_phone),
                 duplicates._clean(emails, duplicates.normalize_email), inn,
                 "" if strong else name, "" if strong else company, strong)


def match_many(actor: Actor, entity_type_id: int, queries: list[Query]) -> list[tuple[int, str] | None]:
    """For each query, the (id, title) of the readable live record it means, or None."""
    if not queries:
        return []
    by_inn = _inn_candidates(entity_type_id, queries)
    by_comm = _comm_candidates(entity_type_id, queries)
    by_name = _name_candidates(entity_type_id, [q if not q.strong else None for q in queries])
    wanted = set()
    for found in (by_inn, by_comm, by_name):
        for candidates in found:
            wanted.update(candidates)
    readable = _readable(actor, entity_type_id, wanted)
    result: list[tuple[int, str] | None] = []
    for i, _q in enumerate(queries):
        chosen = None
        for candidates in (by_inn[i], by_comm[i], by_name[i]):  # INN first, then phones/e-mails, then a name
            chosen = next((pk for pk in candidates if pk in readable), None)
            if chosen is not None:
                break
        result.append((chosen, str(readable[chosen])) if chosen is not None else None)
    return result


def _inn_candidates(entity_type_id: int, queries: list[Query]) -> list[list[int]]:
    """Companies with the row's tax number, oldest first."""
    inns = {q.inn for q in queries if q.inn}
    if entity_type_id != entity_types.COMPANY or not inns:
        return [[] for _q in queries]
    owners: dict[str, list[int]] = {}
    for inn, company_id in BankRequisite.objects.filter(inn__in=inns).order_by("company_id") \
            .values_list("inn", "company_id"):
        if company_id not in owners.setdefault(inn, []):
            owners[inn].append(company_id)
    return [owners.get(q.inn, []) if q.inn else [] for q in queries]


def _comm_candidates(entity_type_id: int, queries: list[Query]) -> list[list[int]]:
    """Records sharing a phone or an e-mail with the row: both first, then the newest."""
    hits: dict[tuple[str, str], list[int]] = {}
    for kind, attr in (("phone", "phones"), ("email", "emails")):
        values = {v for q in queries for v in getattr(q, attr)}
        if not values:
            continue
        for normalized, pk in Communication.objects.filter(
                kind=kind, normalized__in=values, entity_type_id=entity_type_id) \
                .values_list("normalized", "entity_id"):
            hits.setdefault((kind, normalized), []).append(pk)
    result = []
    for q in queries:
        reasons: dict[int, set[str]] = {}
        for kind, attr in (("phone", "phones"), ("email", "emails")):
            for value in getattr(q, attr):
                for pk in hits.get((kind, value), ()):
                    reasons.setdefault(pk, set()).add(kind)
        result.append(sorted(reasons, key=lambda pk: (-len(reasons[pk]), -pk)))
    return result


def _name_candidates(entity_type_id: int, queries: list[Query | None]) -> list[list[int]]:
    """Records with a similar name (and company), best first, for the rows given (None: skip the row).

    The keys are those of the duplicate search (``intake.duplicates.find``): a company's key; for people the
    pairs of name words at the company, the whole name and the pairs alone. One bounded index walk per
    distinct key of the chunk; candidates are scored from the index rows (they carry the record's name words
    and company key), as the duplicate search scores them."""
    wanted: list[tuple[str, str, list[tuple[str, str]]] | None] = []
    all_keys: set[tuple[str, str]] = set()
    for q in queries:
        if q is None or not (q.name or q.company):
            wanted.append(None)
            continue
        ckey = names.company_key(q.company)
        if entity_type_id == entity_types.COMPANY:
            name_words: list[str] = []
            keys = [("c", ckey)] if ckey else []
        else:
            name_words = names.words(q.name)
            pairs = names.pair_keys(name_words, duplicates.NAME_WORDS) if name_words else []
            keys = [("q", names.with_company(pair, ckey)) for pair in pairs] if ckey else []
            if len(name_words) > 1:
                keys.append(("f", names.full_key(name_words)))
            keys += [("p", pair) for pair in pairs]
        wanted.append((" ".join(name_words), ckey, keys))
        all_keys.update(keys)
    if not all_keys:
        return [[] for _q in queries]
    bound = duplicates.candidates()
    per_key: dict[tuple[str, str], list[tuple[int, str, str]]] = {}
    for kind, key in sorted(all_keys):  # one bounded index walk per distinct key of the chunk
        per_key[(kind, key)] = list(
            NameKey.objects.filter(kind=kind, key=key, entity_type_id=entity_type_id).order_by("-entity_id")
            .values_list("entity_id", "words", "company")[:bound])
    limit = duplicates.threshold()
    result = []
    for item in wanted:
        if item is None:
            result.append([])
            continue
        wanted_name, ckey, keys = item
        scores: dict[int, float] = {}
        seen: set[int] = set()
        for key in keys:
            for pk, their_words, their_company in per_key.get(key, ()):
                if pk in seen:
                    continue
                seen.add(pk)
                company_score = fuzz.token_sort_ratio(ckey, their_company) if ckey and their_company else None
                if entity_type_id == entity_types.COMPANY:
                    if company_score is not None and company_score >= limit:
                        scores[pk] = company_score
                    continue
                if not wanted_name or not their_words:
                    continue
                score = duplicates.name_score(wanted_name, their_words)
                if score >= limit and (company_score is None or company_score >= limit):
                    scores[pk] = score
        result.append(sorted(scores, key=lambda pk: (-int(scores[pk]), -pk)))
    return result


def _readable(actor: Actor, entity_type_id: int, ids: set[int]) -> dict[int, object]:
    if not ids:
        return {}
    model = entity_types.get(entity_type_id).model
    qs = model.objects.filter(pk__in=ids, deleted_at__isnull=True)
    if entity_type_id == entity_types.CONTACT:
        qs = qs.select_related("company")
    return {obj.pk: obj for obj in policies.visible(actor, entity_type_id, qs)}
