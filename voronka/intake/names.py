"""The name index of duplicate search: normalised name words and company names of leads, contacts and companies.

Kept current in two ways: intake and merges refresh the rows of the records they write in their own
transaction, and an outbox consumer refreshes them for records written through any other door (UI, API,
import). ``voronka intake reindex`` rebuilds the whole index.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import combinations

from voronka.core import entity_types

from .models import NameKey

NAME_FIELDS = {"first_name", "last_name", "middle_name", "company_name", "name"}
LEGAL_FORMS = {"ооо", "оао", "зао", "пао", "ао", "ип", "нко", "гк", "llc", "ltd", "inc", "gmbh", "corp", "co"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
TYPES = (entity_types.LEAD, entity_types.CONTACT, entity_types.COMPANY)
PREFIX = 3  # letters of a word in a pair key: a typo after them still finds the person
RECORD_WORDS = 4  # name words of a record that make pair keys (at most 6 pairs)


def words(text: str) -> list[str]:
    """Lower-case letter words of two letters or more, «ё» as «е», each once, in order."""
    seen: list[str] = []
    for word in _WORD.findall((text or "").lower().replace("ё", "е")):
        if len(word) >= 2 and word not in seen:
            seen.append(word[:100])
    return seen[:8]


def company_key(name: str) -> str:
    return " ".join(w for w in words(name) if w not in LEGAL_FORMS)[:100]


def person_name(obj) -> str:
    return " ".join(p for p in (getattr(obj, "last_name", ""), getattr(obj, "first_name", ""),
                                getattr(obj, "middle_name", "")) if p)


def company_of(entity_type_id: int, obj) -> str:
    if entity_type_id == entity_types.COMPANY:
        return obj.name
    if entity_type_id == entity_types.LEAD:
        return obj.company_name
    company = getattr(obj, "company", None) if getattr(obj, "company_id", None) else None
    return company.name if company is not None else ""


def pair_keys(name_words: list[str], limit: int = RECORD_WORDS) -> list[str]:
    """Keys of a name: every pair of its words cut to ``PREFIX`` letters (sorted, so the order of surname and
    first name does not matter), or the cut word of a one-word name. Two names that ``duplicates.name_score``
    can call the same person share at least one key unless a word is misspelt within its first letters."""
    cut = [w[:PREFIX] for w in name_words[:limit]]
    if len(cut) == 1:
        return cut
    return sorted({" ".join(sorted(pair)) for pair in combinations(cut, 2)})


def full_key(name_words: list[str]) -> str:
    """The key of a whole name (kind ``f``): its words sorted, so the exact person is found among thousands
    of people who share every pair of name prefixes."""
    return " ".join(sorted(name_words[:RECORD_WORDS]))[:100]


def with_company(pair: str, company: str) -> str:
    """The key of a pair of name words at one company (kind ``q``)."""
    return f"{pair}|{company}"[:100]


def keys_for(entity_type_id: int, obj) -> list[tuple[str, str]]:
    """Index keys of a record: a company has its name (``c``); a person the whole name (``f``, two words or
    more), the pairs of name words (``p``) and, with a company, the same pairs joined to the company key (``q``:
    the person at that company, however common the name or the company)."""
    company = company_key(company_of(entity_type_id, obj))
    if entity_type_id == entity_types.COMPANY:
        return [("c", company)] if company else []
    name_words = words(person_name(obj))
    pairs = pair_keys(name_words)
    full = [("f", full_key(name_words))] if len(name_words) > 1 else []
    return full + [("p", k) for k in pairs] + ([("q", with_company(k, company)) for k in pairs] if company else [])


def rows_for(entity_type_id: int, obj) -> list[NameKey]:
    return [NameKey(entity_type_id=t, entity_id=pk, kind=kind, key=key, words=name, company=company)
            for t, pk, kind, key, name, company in
            row_values(entity_type_id, obj.pk, "" if entity_type_id == entity_types.COMPANY else person_name(obj),
                       company_of(entity_type_id, obj))]


def row_values(entity_type_id: int, pk: int, person: str, company_name: str) -> list[tuple]:
    """The index rows of one record as plain tuples (entity_type_id, entity_id, kind, key, words, company), from
    its person name («last first middle», empty for a company) and its company's name."""
    company = company_key(company_name)
    if entity_type_id == entity_types.COMPANY:
        return [(entity_type_id, pk, "c", company, "", company)] if company else []
    name_words = words(person)
    name = " ".join(name_words)[:300]
    pairs = pair_keys(name_words)
    rows = [(entity_type_id, pk, "f", full_key(name_words), name, company)] if len(name_words) > 1 else []
    rows += [(entity_type_id, pk, "p", k, name, company) for k in pairs]
    if company:
        rows += [(entity_type_id, pk, "q", with_company(k, company), name, company) for k in pairs]
    return rows


def refresh(entity_type_id: int, ids: Iterable[int], *, objs: Iterable | None = None, new: bool = False) -> None:
    """Rewrite the index rows of these records from their current state (deleted records get none).
    ``objs``: the records as just written (a contact with its ``company`` loaded), to spare reading them;
    ``new``: they were created in this transaction (no rows to delete)."""
    if entity_type_id not in TYPES:
        return
    ids = list(ids)
    if not new:
        NameKey.objects.filter(entity_type_id=entity_type_id, entity_id__in=ids).delete()
    if objs is None:
        model = entity_types.get(entity_type_id).model
        objs = model.objects.filter(pk__in=ids, deleted_at__isnull=True)
        if entity_type_id == entity_types.CONTACT:
            objs = objs.select_related("company")
    rows = [row for obj in objs if obj.deleted_at is None for row in rows_for(entity_type_id, obj)]
    NameKey.objects.bulk_create(rows)


def on_record_event(event) -> None:
    """Outbox consumer (idempotent): a lead, contact or company was created, changed, deleted, restored or merged."""
    if event.entity_type_id not in TYPES or event.entity_id is None:
        return
    action = event.name.rsplit(".", 1)[-1]
    if action == "updated" and not NAME_FIELDS.intersection((event.payload or {}).get("changed") or ()) \
            and "company" not in ((event.payload or {}).get("changed") or ()):
        return
    if action in ("created", "updated", "deleted", "restored", "purged", "merged"):
        refresh(event.entity_type_id, [event.entity_id])


def _source_rows(entity_type_id: int):
    """(id, person name, company name) of every live record of a kind, as plain values (no model instances)."""
    model = entity_types.get(entity_type_id).model
    qs = model.objects.filter(deleted_at__isnull=True)
    if entity_type_id == entity_types.COMPANY:
        return qs, ("pk", "name"), lambda r: (r[0], "", r[1])
    company = "company_name" if entity_type_id == entity_types.LEAD else "company__name"
    return qs, ("pk", "last_name", "first_name", "middle_name", company), \
        lambda r: (r[0], " ".join(p for p in r[1:4] if p), r[4] or "")


def rebuild(batch: int = 5000, *, progress=None) -> int:
    """Rebuild the whole index (after an import that bypassed actions, or to fill it the first time).

    One transaction: the index is emptied, its two B-tree indexes dropped, the rows of every live record written
    in record order (plain tuples, ``executemany`` of ``batch`` records at a time, no model instances), then the
    indexes are built again in one sorted pass and the table analysed (and, on PostgreSQL, vacuumed after the
    commit, so the walks are index-only scans). Writing millions of rows into the kept
    indexes put each row on a random index page, which is what made the 1M-contact rebuild take most of an hour on
    SQLite. A crash rolls everything back (the old index stays). Other writers wait for the transaction (on SQLite
    readers go on reading the old index; on PostgreSQL the table is locked), so run it in a quiet hour."""
    from django.db import connection, transaction

    meta = NameKey._meta
    q = connection.ops.quote_name
    table = q(meta.db_table)
    columns = ", ".join(q(meta.get_field(f).column) for f in ("entity_type_id", "entity_id", "kind", "key", "words",
                                                              "company"))
    insert = f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s)"
    editor = connection.SchemaEditorClass(connection, collect_sql=True)  # only to render the index DDL
    editor.deferred_sql = []
    drop = [str(index.remove_sql(NameKey, editor)) for index in meta.indexes]
    create = [str(index.create_sql(NameKey, editor)) for index in meta.indexes]
    total = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for sql in drop:
            cursor.execute(sql)
        cursor.execute(f"TRUNCATE {table}" if connection.vendor == "postgresql" else f"DELETE FROM {table}")
        for entity_type_id in TYPES:
            qs, fields, shape = _source_rows(entity_type_id)
            last = 0
            while True:
                chunk = list(qs.filter(pk__gt=last).order_by("pk").values_list(*fields)[:batch])
                if not chunk:
                    break
                rows = [row for r in chunk for row in row_values(entity_type_id, *shape(r))]
                if rows:
                    cursor.executemany(insert, rows)
                total += len(chunk)
                last = chunk[-1][0]
                if progress:
                    progress(entity_type_id, total)
        for sql in create:
            cursor.execute(sql)
        cursor.execute(f"ANALYZE {table}")
    if connection.vendor == "postgresql" and not connection.in_atomic_block:
        # mark the new rows visible to all, so that the walks of duplicate search are index-only scans from the
        # first search on (else each reads the table until autovacuum comes by); VACUUM runs outside a transaction
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM {table}")
    return total
