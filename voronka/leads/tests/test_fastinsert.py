"""``core.fastinsert`` must store exactly what the ORM would: it replaced ``bulk_create`` on the write path."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from django.utils import timezone

from voronka.core import fastinsert
from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.leads.models import Lead
from voronka.pipelines.models import Stage, StageHistory

pytestmark = pytest.mark.django_db


def _lead(pipeline, stage, **extra):
    now = timezone.now()
    return Lead(pipeline=pipeline, stage=stage, stage_semantics=stage.semantics, stage_changed_at=now,
                created_at=now, updated_at=now, **extra)


def test_instances_round_trip_and_get_their_ids_in_order(lead_pipeline):
    stage = Stage.objects.filter(pipeline=lead_pipeline).order_by("sort").first()
    when = dt.datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)
    objs = [_lead(lead_pipeline, stage, title=f"Лид {i}", opportunity=decimal.Decimal("1234.5") + i,
                  currency="RUB", custom={"ключ": [i, "значение"]}, converted_at=when) for i in range(700)]
    fastinsert.insert(objs, returning=True)  # more rows than one statement takes: chunks keep the order
    assert [o.pk for o in objs] == sorted(o.pk for o in objs)
    for i in (0, 350, 699):
        stored = Lead.objects.get(pk=objs[i].pk)
        assert stored.title == f"Лид {i}"
        assert stored.opportunity == decimal.Decimal("1234.50") + i
        assert stored.custom == {"ключ": [i, "значение"]}
        assert stored.converted_at == when
        assert stored.stage_semantics == stage.semantics


def test_choices_members_are_stored_by_value(lead_pipeline):
    stage = Stage.objects.filter(pipeline=lead_pipeline).order_by("sort").first()
    fastinsert.insert_rows(StageHistory, [{
        "entity_type_id": 1, "entity_id": 5, "pipeline_id": lead_pipeline.pk, "to_stage_id": stage.pk,
        "semantics": Stage.Semantics.SUCCESS, "moved_at": timezone.now()}])
    row = StageHistory.objects.get(entity_id=5)
    assert row.semantics == "success" == Stage.Semantics.SUCCESS.value
    assert row.from_stage_id is None and row.entry_point == "" and row.seconds_in_previous is None


def test_rows_get_defaults_for_missing_columns():
    before = timezone.now()
    fastinsert.insert_rows(OutboxEvent, [{"name": "x.created", "entity_type_id": 1, "entity_id": i,
                                           "payload": {"fields": ["title"]}} for i in range(3)])
    events = list(OutboxEvent.objects.order_by("id"))
    assert [e.entity_id for e in events] == [0, 1, 2]
    assert all(e.payload == {"fields": ["title"]} and e.dispatched_at is None and e.created_at >= before
               for e in events)
    with pytest.raises(ValueError):
        fastinsert.insert_rows(TimelineEntry, [{"no_such_column": 1}])


def test_deferred_rows_get_their_ids_at_once_and_land_at_the_end_of_the_block(lead_pipeline):
    """``deferred`` (PostgreSQL) sets primary keys from the sequence at once and writes the rows when the block
    ends; elsewhere it inserts at once. Either way the stored rows are those given, under the ids given."""
    from django.db import connection, transaction

    from voronka.core import history
    from voronka.core.actor import Actor

    actor = Actor.system(cause="test", entry_point="test")
    with transaction.atomic():
        with fastinsert.deferred([TimelineEntry, OutboxEvent], chunk=4):
            entries = [history.entry(actor, 1, 7, "comment", text=f"c{i}") for i in range(10)]
            events = [OutboxEvent(name="lead.commented", entity_type_id=1, entity_id=7, payload={"entry": e.pk})
                      for e in entries]
            fastinsert.insert(events[:5], returning=True)
            for event in events[5:]:
                fastinsert.insert([event], returning=True)
            assert all(e.pk for e in entries) and all(e.pk for e in events)
            assert [e.pk for e in entries] == sorted(e.pk for e in entries)
            stored_inside = TimelineEntry.objects.filter(entity_id=7, kind="comment").count()
            assert stored_inside == (0 if connection.vendor == "postgresql" else 10)
        stored = dict(TimelineEntry.objects.filter(entity_id=7, kind="comment").values_list("pk", "text"))
        assert stored == {e.pk: f"c{i}" for i, e in enumerate(entries)}
        assert dict(OutboxEvent.objects.filter(entity_id=7).values_list("pk", "payload")) == {
            ev.pk: {"entry": e.pk} for ev, e in zip(events, entries, strict=True)}
    # outside the block nothing is held back
    entry = history.entry(actor, 1, 8, "comment", text="now")
    assert TimelineEntry.objects.filter(pk=entry.pk).exists()


def test_deferred_rows_are_dropped_when_the_block_raises(lead_pipeline):
    from django.db import transaction

    from voronka.core import history
    from voronka.core.actor import Actor

    actor = Actor.system(cause="test", entry_point="test")
    with pytest.raises(RuntimeError), transaction.atomic():
        with fastinsert.deferred([TimelineEntry]):
            history.entry(actor, 1, 9, "comment", text="lost")
            raise RuntimeError("boom")
    assert not TimelineEntry.objects.filter(entity_id=9).exists()
    with transaction.atomic(), fastinsert.deferred([TimelineEntry]):
        history.entry(actor, 1, 9, "comment", text="kept")
    assert list(TimelineEntry.objects.filter(entity_id=9).values_list("text", flat=True)) == ["kept"]


def test_update_writes_only_the_named_columns_as_the_orm_would(lead_pipeline):
    stage = Stage.objects.filter(pipeline=lead_pipeline).order_by("sort").first()
    lead = _lead(lead_pipeline, stage, title="Было", inquiry="не трогать")
    fastinsert.insert([lead], returning=True)
    Lead.objects.filter(pk=lead.pk).update(inquiry="изменено другим")  # a column the update does not name
    when = dt.datetime(2026, 4, 2, 10, 0, 1, 654321, tzinfo=dt.UTC)
    lead.title, lead.opportunity, lead.custom, lead.converted_at = "Стало", decimal.Decimal("99.9"), {"к": [1]}, when
    assert fastinsert.update(lead, ["title", "opportunity", "custom", "converted_at"]) == 1
    stored = Lead.objects.get(pk=lead.pk)
    assert (stored.title, stored.opportunity, stored.custom, stored.converted_at) == (
        "Стало", decimal.Decimal("99.90"), {"к": [1]}, when)
    assert stored.inquiry == "изменено другим"  # untouched
    lead.pk = 10 ** 12
    assert fastinsert.update(lead, ["title"]) == 0  # no such row: the caller is told


def test_a_pipelined_block_keeps_the_order_of_effects(lead_pipeline):
    """On PostgreSQL the block holds its INSERTs back for one statement; a read inside the block sends them
    first, so it sees them (elsewhere every row is written at once: the same result)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    rows = [{"entity_type_id": 1, "entity_id": 424242, "kind": "created", "actor_kind": "system", "text": str(i)}
            for i in range(3)]
    with CaptureQueriesContext(connection) as ctx, fastinsert.pipelined(1):
        fastinsert.insert_rows(TimelineEntry, rows[:2])
        assert TimelineEntry.objects.filter(entity_id=424242).count() == 2  # sends what is held first
        fastinsert.insert_rows(TimelineEntry, rows[2:])
        fastinsert.insert_rows(OutboxEvent, [{"name": "test.held", "entity_type_id": 1, "entity_id": 424242}])
    assert TimelineEntry.objects.filter(entity_id=424242).count() == 3
    assert OutboxEvent.objects.filter(name="test.held").count() == 1
    if connection.vendor == "postgresql":
        assert [q["sql"].split()[0] for q in ctx.captured_queries] == ["INSERT", "SELECT", "WITH"]


def test_a_failing_held_row_fails_the_block(lead_pipeline):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic(), fastinsert.pipelined(1):
        fastinsert.insert_rows(TimelineEntry, [{"entity_type_id": 1, "entity_id": 1, "kind": None,  # NOT NULL
                                                "actor_kind": "system"}])
        fastinsert.insert_rows(OutboxEvent, [{"name": "test.never", "entity_type_id": 1, "entity_id": 1}])
    assert not OutboxEvent.objects.filter(name="test.never").exists()


@pytest.mark.parametrize("value", [{}, [], {"fields": ["phones", "title"]}, {"ключ": [1, 2.5, None, True]}, [{"a": "б"}],
                                   "text", 5])
def test_json_columns_are_stored_as_the_orm_stores_them(value):
    from django.db import connection

    field = OutboxEvent._meta.get_field("payload")
    [converter] = [c for f, c in zip(fastinsert._plan(OutboxEvent, "default", False).fields,
                                     fastinsert._plan(OutboxEvent, "default", False).converters, strict=True)
                   if f is field]
    fast, orm = converter(value), field.get_db_prep_save(value, connection)
    if connection.vendor == "sqlite":
        assert fast == orm
    elif isinstance(value, dict | list):  # the text psycopg's Jsonb wrapper would send
        assert fast == orm.dumps(orm.obj)
    else:  # the wrapper itself: the same value and the same dumps function
        assert type(fast) is type(orm) and fast.obj == orm.obj and fast.dumps == orm.dumps
    fastinsert.insert_rows(OutboxEvent, [{"name": "x.created", "payload": value}])
    stored = OutboxEvent.objects.get(name="x.created").payload
    assert stored == value
    fastinsert.insert_rows(OutboxEvent, [{"name": "x.copied", "payload": value}] * 25)  # COPY on PostgreSQL
    assert [e.payload for e in OutboxEvent.objects.filter(name="x.copied")] == [value] * 25
    event = OutboxEvent.objects.get(name="x.created")
    event.payload = value
    fastinsert.update(event, ["payload"])
    assert OutboxEvent.objects.get(pk=event.pk).payload == value


def test_database_errors_are_djangos_and_a_broken_transaction_is_refused():
    """The direct SQLite cursor (``core.bound``) translates the driver's errors and checks the transaction as
    Django's cursor does."""
    from django.db import IntegrityError, transaction
    from django.db.transaction import TransactionManagementError

    fastinsert.insert_rows(OutboxEvent, [{"name": "x.created", "payload": {}}])
    pk = OutboxEvent.objects.get().pk
    duplicate = OutboxEvent(pk=pk, name="x.again", payload={})
    with transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic():
            fastinsert.insert([duplicate])
    with transaction.atomic():
        try:
            with transaction.atomic(savepoint=False):  # marks the outer block for rollback
                fastinsert.insert([duplicate])
        except IntegrityError:
            pass
        with pytest.raises(TransactionManagementError):
            fastinsert.insert_rows(OutboxEvent, [{"name": "x.later", "payload": {}}])
        transaction.set_rollback(True)
    assert list(OutboxEvent.objects.values_list("name", flat=True)) == ["x.created"]


def test_staged_rows_wait_for_run_and_get_the_ids_that_were_pending(lead_pipeline):
    """A create prepares its side rows before its transaction (``recordkit._write_staged``): nothing is written in
    the block, the ids not known yet are filled in (rows and instances) when the rows run, in their order."""
    from django.db import transaction

    from voronka.core import history, outbox
    from voronka.core.actor import Actor
    from voronka.parties.models import Communication

    stage = Stage.objects.filter(pipeline=lead_pipeline).order_by("sort").first()
    objs = [_lead(lead_pipeline, stage, title=f"staged {i}") for i in range(2)]
    pending = [fastinsert.Pending(), fastinsert.Pending()]
    actor = Actor.system("test")
    order = []
    phone = Communication(kind="phone", value="+79990000001", normalized="+79990000001", entity_type_id=1,
                          entity_id=pending[1])
    with fastinsert.staged() as side:
        fastinsert.insert([phone])
        fastinsert.insert_rows(TimelineEntry, [history.entry_row(actor, 1, p, "created") for p in pending])
        fastinsert.then(lambda: order.append(TimelineEntry.objects.filter(kind="created").count()))
        outbox.emit_rows([outbox.row(actor, "lead.staged", 1, p) for p in pending])
        assert not TimelineEntry.objects.filter(kind="created").exists()  # reads run; nothing was written
    assert not TimelineEntry.objects.filter(kind="created").exists() and not order
    assert not OutboxEvent.objects.filter(name="lead.staged").exists() and not Communication.objects.exists()
    with transaction.atomic():
        fastinsert.insert_later(objs)()
        for obj, p in zip(objs, pending, strict=True):
            p.value = obj.pk
        side.run()
    ids = [o.pk for o in objs]
    assert order == [2]  # ``then`` ran after the rows before it
    assert sorted(TimelineEntry.objects.filter(kind="created").values_list("entity_id", flat=True)) == ids
    assert sorted(OutboxEvent.objects.filter(name="lead.staged").values_list("entity_id", flat=True)) == ids
    assert phone.entity_id == ids[1] and Communication.objects.get(value="+79990000001").entity_id == ids[1]
    assert [Lead.objects.get(pk=pk).title for pk in ids] == ["staged 0", "staged 1"]


def test_a_staged_block_refuses_writes_and_ids_it_cannot_know():
    from django.db import connection

    from voronka.core.models import OutboxEvent

    with fastinsert.staged():
        with pytest.raises(RuntimeError, match="cannot run while a write is staged"):
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM core_outboxevent")
        with pytest.raises(RuntimeError, match="cannot be staged"):
            fastinsert.insert([OutboxEvent(name="x", payload={})], returning=True)
    with fastinsert.staged() as side:
        fastinsert.insert_rows(TimelineEntry, [{"entity_type_id": 1, "entity_id": fastinsert.Pending(), "kind": "x"}])
    with pytest.raises(RuntimeError, match="not inserted"):
        side.run()
    assert not TimelineEntry.objects.filter(kind="x").exists()
