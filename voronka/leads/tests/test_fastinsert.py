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
