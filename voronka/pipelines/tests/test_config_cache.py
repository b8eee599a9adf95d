"""The settings cache never serves what a rolled-back or a newer change contradicts."""

from __future__ import annotations

import pytest
from django.db import transaction

from voronka.core.errors import ValidationFailed
from voronka.leads.actions import create_lead, move_lead
from voronka.pipelines.actions import create_stage, update_stage

pytestmark = pytest.mark.django_db


def test_stage_changes_are_seen_by_the_next_write(admin, lead_pipeline):
    lead = create_lead(admin, title="x")
    stage = lead_pipeline.stages.get(code="assigned")
    update_stage(admin, stage.pk, required_fields=["comment"])
    with pytest.raises(ValidationFailed):
        move_lead(admin, lead.pk, stage="assigned")
    update_stage(admin, stage.pk, required_fields=[])
    assert move_lead(admin, lead.pk, stage="assigned").stage_id == stage.pk


def test_a_rolled_back_change_is_not_served_later(admin, lead_pipeline):
    lead = create_lead(admin, title="x")
    try:
        with transaction.atomic():
            create_stage(admin, lead_pipeline.pk, name="Призрак", code="ghost")
            move_lead(admin, lead.pk, stage="ghost")  # caches the settings that include the ghost stage
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with pytest.raises(ValidationFailed):
        move_lead(admin, lead.pk, stage="ghost")
    create_stage(admin, lead_pipeline.pk, name="Настоящая", code="real")
    assert move_lead(admin, lead.pk, stage="real").stage.code == "real"


def _state_writes(ctx) -> int:
    return sum(1 for q in ctx.captured_queries if "pipelines_dailytotalstate" in q["sql"])


def test_the_stage_order_is_noted_once_per_process_and_settings_version(admin, lead_pipeline,
                                                                          django_capture_on_commit_callbacks):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.pipelines import daily
    from voronka.pipelines.models import DailyTotalState

    daily._noted.clear()
    with django_capture_on_commit_callbacks(execute=True):
        create_lead(admin, title="first")
    state = DailyTotalState.objects.get(entity_type_id=1, pipeline_id=lead_pipeline.pk)
    with CaptureQueriesContext(connection) as ctx:
        create_lead(admin, title="second")
    assert _state_writes(ctx) == 0  # the committed note already holds this order
    # the stages change: the next write notes the new order, and the pipeline's totals are marked stale
    stage = lead_pipeline.stages.get(code="assigned")
    update_stage(admin, stage.pk, sort=-1)
    with CaptureQueriesContext(connection) as ctx:
        create_lead(admin, title="third")
    assert _state_writes(ctx) == 1
    assert DailyTotalState.objects.get(pk=state.pk).signature == daily.STALE


def test_a_rolled_back_note_is_written_again(admin, lead_pipeline):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.pipelines import daily

    daily._noted.clear()
    try:
        with transaction.atomic():
            create_lead(admin, title="rolled back")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    with CaptureQueriesContext(connection) as ctx:
        create_lead(admin, title="kept")
    assert _state_writes(ctx) == 1
