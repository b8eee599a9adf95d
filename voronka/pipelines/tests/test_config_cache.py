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
