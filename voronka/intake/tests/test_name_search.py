"""The name search of duplicate control (session 8): every walk of the name index in one statement that reads only
the covering index, the same matches as one walk per key scored one by one, and the recall cases people meet."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from voronka.core import entity_types
from voronka.intake import duplicates, names
from voronka.intake.models import NameKey
from voronka.leads.actions import create_lead
from voronka.parties.actions import create_company, create_contact

pytestmark = pytest.mark.django_db

CONTACT, LEAD, COMPANY = entity_types.CONTACT, entity_types.LEAD, entity_types.COMPANY
LAST = ["Иванов", "Иванова", "Иваненко", "Ивашов", "Петров", "Петрова"]
FIRST = ["Иван", "Иванна", "Пётр", "Петр", "Анна", "Анн"]
MIDDLE = ["Иванович", "Петрович", "Ивановна", ""]
COMPANIES = ["ООО «Ромашка»", "Ромашка", "ИП Ромашкина", "Лютик", "АО Лютик и партнёры", ""]


def _index(*objs):
    for obj in objs:
        names.refresh(obj.ENTITY_TYPE_ID, [obj.pk])


def _keys(found):
    return [(m.entity_type_id, m.id) for m in found]


@pytest.fixture
def crowd(admin, lead_pipeline):
    """Contacts, leads and companies whose names share prefixes, with and without a company."""
    companies = [create_company(admin, name=name) for name in COMPANIES if name]
    records = list(companies)
    for i in range(36):
        company = companies[i % (len(companies) + 1)] if i % (len(companies) + 1) < len(companies) else None
        records.append(create_contact(admin, last_name=LAST[i % 6], first_name=FIRST[(i // 6) % 6],
                                      middle_name=MIDDLE[i % 4], company=company.pk if company else None))
    for i in range(12):
        records.append(create_lead(admin, last_name=LAST[(i * 5) % 6], first_name=FIRST[i % 6],
                                   company_name=COMPANIES[i % 6]))
    _index(*records)
    return records


def _reference(name: str, company: str, bound: int) -> dict:
    """The search as it was before session 8: one ORM walk per key, every candidate scored on its own."""
    limit = duplicates.threshold()
    name_words, ckey = names.words(name), names.company_key(company)
    wanted = " ".join(name_words)
    pairs = names.pair_keys(name_words, duplicates.NAME_WORDS) if name_words else []
    walks = ([("c", ckey, [COMPANY])] + [("q", names.with_company(k, ckey), [LEAD, CONTACT]) for k in pairs]
             if ckey else [])
    if len(name_words) > 1:
        walks.append(("f", names.full_key(name_words), [LEAD, CONTACT]))
    walks += [("p", k, [LEAD, CONTACT]) for k in pairs]
    found, seen = {}, set()
    for kind, key, types in walks:
        for t, pk, words, their_company in NameKey.objects.filter(kind=kind, key=key, entity_type_id__in=types) \
                .order_by("-entity_id").values_list("entity_type_id", "entity_id", "words", "company")[:bound]:
            if (t, pk) in seen:
                continue
            seen.add((t, pk))
            company_score = fuzz.token_sort_ratio(ckey, their_company) if ckey and their_company else None
            if t == COMPANY:
                if company_score is not None and company_score >= limit:
                    found[(t, pk)] = (int(company_score), ["company"])
                continue
            if not wanted or not words:
                continue
            score = fuzz.token_sort_ratio(wanted, words)
            if min(len(wanted.split()), len(words.split())) >= 2:
                score = max(score, fuzz.token_set_ratio(wanted, words))
            if score >= limit and (company_score is None or company_score >= limit):
                found[(t, pk)] = (int(score), ["name", "company"] if company_score is not None else ["name"])
    return found


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(last=st.sampled_from(LAST + ["Иавнов", "Ивановъ"]), first=st.sampled_from(FIRST + ["Пеотр", ""]),
       middle=st.sampled_from(MIDDLE + ["Ивнович"]), company=st.sampled_from(COMPANIES + ["Ромашкa", "ООО Лютик"]),
       swap=st.booleans(), bound=st.sampled_from([2, 5, 50]))
def test_property_one_statement_finds_what_one_walk_per_key_found(crowd, monkeypatch, last, first, middle, company,
                                                                 swap, bound):
    monkeypatch.setattr(duplicates, "MATCHES", 1000)  # every match, not only the best ten
    from django.conf import settings as django_settings

    monkeypatch.setattr(django_settings, "VORONKA_DUPLICATE_CANDIDATES", bound, raising=False)
    name = " ".join(p for p in ((first, last, middle) if swap else (last, first, middle)) if p)
    found = {(m.entity_type_id, m.id): (m.score, m.reasons) for m in duplicates.find(name=name, company=company)}
    assert found == _reference(name, company, bound)


def test_all_walks_are_one_statement_that_reads_only_the_covering_index(admin, lead_pipeline):
    company = create_company(admin, name="ООО «Ромашка»")
    contact = create_contact(admin, last_name="Иванов", first_name="Пётр", middle_name="Сергеевич", company=company.pk)
    _index(company, contact)
    stats: dict = {}
    with CaptureQueriesContext(connection) as ctx:
        found = duplicates.find(name="Иванов Пётр Сергеевич", company="Ромашка", stats=stats)
    assert _keys(found)[:2] == [(CONTACT, contact.pk), (COMPANY, company.pk)]
    assert stats["walks"] == 8  # the company, three pairs at it, the whole name, three pairs alone
    walks = [q["sql"] for q in ctx.captured_queries if NameKey._meta.db_table in q["sql"]]
    assert len(walks) == 1 and walks[0].count("UNION ALL") == 7
    people = (LEAD, CONTACT)
    # (people's walks: on a table of two rows PostgreSQL may read the one company row through the owner index)
    sql, params = duplicates._walk_statement([("f", "иванов петр сергеевич", people), ("p", "ива пет", people),
                                               ("q", "ива пет|ромашка", people)], 50)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")  # a table of two rows: make the planner show its index
            cursor.execute("SET LOCAL enable_bitmapscan = off")
            # and no sort: on a table of two rows the planner may otherwise prefer the owner index plus a sort
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute(f"EXPLAIN {sql}", params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            # each walk is one range of the walk index, in its order (index-only once the table is vacuumed, as
            # `intake reindex` leaves it: «Heap Fetches: 0» at 1M, docs/benchmarks-intake.md)
            assert plan.count("using namekey_walk_idx") == 3 and "Sort" not in plan, plan
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
            plan = "\n".join(row[-1] for row in cursor.fetchall())
            assert plan.count("USING COVERING INDEX namekey_walk_idx") == 3, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # newest first straight from the index


@pytest.fixture
def people(admin, lead_pipeline):
    company = create_company(admin, name="ООО «Ромашка»")
    at_company = create_contact(admin, last_name="Иванов", first_name="Пётр", middle_name="Сергеевич",
                                company=company.pk)
    no_company = create_contact(admin, last_name="Белова", first_name="Анна", middle_name="Игоревна")
    _index(company, at_company, no_company)
    return company, at_company, no_company


@pytest.mark.parametrize("name, company", [
    ("Иванов Пётр Сергеевич", "Ромашка"),
    ("Иванов Петр Сергееич", "Ромашка"),  # a typo after the first letters of a word
    ("Ивонов Пётр Сергеевич", "Ромашка"),  # a typo within them: the other pairs still share a key
    ("Пётр Иванов Сергеевич", "Ромашка"),  # the first name first
    ("Иванов Пётр", "Ромашка"),  # no middle name
    ("Иванов Пётр Сергеевич", "Ромашка, ООО"),  # the legal form elsewhere
    ("Иванов Пётр Сергеевич", "ООО Ромашка"),
    ("Иванов Пётр Сергеевич", ""),  # no company asked
])
def test_recall_the_person_at_the_company(people, name, company):
    at_company = people[1]
    found = duplicates.find(name=name, company=company)
    assert _keys(found)[0] == (CONTACT, at_company.pk), (name, company)


@pytest.mark.parametrize("name, company", [
    ("Белова Анна Игоревна", "Лютик"),  # no company on file: the name alone matches
    ("Анна Белова", "АО Лютик"),
    ("Белова Ана Игоревна", ""),
])
def test_recall_a_person_with_no_company_on_file(people, name, company):
    no_company = people[2]
    found = duplicates.find(name=name, company=company)
    assert (CONTACT, no_company.pk) in _keys(found), (name, company)
    assert found[0].reasons == ["name"]


def test_a_namesake_at_another_company_is_not_a_match(people, admin):
    elsewhere = create_contact(admin, last_name="Иванов", first_name="Пётр", middle_name="Сергеевич",
                               company=create_company(admin, name="Лютик").pk)
    _index(elsewhere)
    found = _keys(duplicates.find(name="Иванов Пётр Сергеевич", company="Ромашка"))
    assert (CONTACT, people[1].pk) in found and (CONTACT, elsewhere.pk) not in found


def test_name_score_with_a_cutoff_keeps_every_score_above_it():
    for a, b in [("иванов петр сергеевич", "иванов петр"), ("иванов петр", "петр иванов"),
                 ("иванов петр", "иванова петра"), ("анна", "анна белова"), ("белова анна", "сидоров олег")]:
        plain = duplicates.name_score(a, b)
        cut = duplicates.name_score(a, b, cutoff=88)
        assert cut == plain if plain >= 88 else cut < 88
        assert duplicates.name_scores(a, [b, "сидоров олег"], 88) == ({b: plain} if plain >= 88 else {})


_WORDS = ["иванов", "иванова", "петр", "петра", "анна", "ан", "сергеевич", "белова", "олег", "ольга"]


@settings(max_examples=400, deadline=None)
@given(name=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4),
       others=st.lists(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4), min_size=1, max_size=12))
def test_the_batch_scores_are_the_one_by_one_scores(name, others):
    """``name_scores`` (two rapidfuzz batches) gives every name scoring the cutoff or more with ``name_score``'s
    score, to the last bit, and no other: repeated words included. (Session 10 tried the token-set batch only for
    names sharing a word: equal in theory, but a float's last bit differs, which could move a name across the
    cutoff.)"""
    wanted = " ".join(name)
    texts = {" ".join(o) for o in others}
    expected = {o: score for o in texts if (score := duplicates.name_score(wanted, o)) >= 88}
    assert duplicates.name_scores(wanted, texts, 88) == expected
