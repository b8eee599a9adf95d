"""The cross-pipeline flows of seed 002: the complaints round trip (F25)."""

from __future__ import annotations

import pytest

from voronka.automation.actions import create_robot
from voronka.automation.models import Run
from voronka.deals.actions import create_deal, move_deal
from voronka.deals.models import Deal
from voronka.pipelines.actions import create_pipeline
from voronka.pipelines.models import StageHistory

pytestmark = pytest.mark.django_db


@pytest.fixture
def drive():
    from voronka.core.management.commands.worker import drain

    return drain


@pytest.fixture
def flows(admin):
    sales = create_pipeline(admin, entity_type_id=2, name="Sales", code="sales", is_default=True, stages=[
        {"name": "New", "code": "new"},
        {"name": "Production", "code": "production"},
        {"name": "Installation", "code": "installation"},
        {"name": "Won", "code": "won", "semantics": "success"},
        {"name": "Finished with defects", "code": "defects", "semantics": "failure"},
        {"name": "Lost", "code": "lost", "semantics": "failure"},
    ])
    complaints = create_pipeline(admin, entity_type_id=2, name="Complaints", code="complaints", stages=[
        {"name": "Complaint received", "code": "received"},
        {"name": "Fixing", "code": "fixing"},
        {"name": "Fixed", "code": "fixed", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"},
    ])
    stage = {f"{p.code}.{s.code}": s for p in (sales, complaints) for s in p.stages.all()}
    create_robot(admin, stage=stage["sales.defects"].pk, action="move_stage",
                 params={"stage": "received", "pipeline": "complaints"})
    create_robot(admin, stage=stage["complaints.fixed"].pk, action="return_to_origin", params={"stage": "previous"})
    return {"sales": sales, "complaints": complaints, "stage": stage}


def test_complaints_round_trip(admin, flows, drive):
    stage = flows["stage"]
    deal = create_deal(admin, title="Sauna for Petrov", opportunity="480000")
    move_deal(admin, deal.pk, stage="production")
    move_deal(admin, deal.pk, stage="installation")
    move_deal(admin, deal.pk, stage="defects")  # closed with the result «defects»
    drive()
    deal.refresh_from_db()
    assert (deal.pipeline_id, deal.stage_id) == (flows["complaints"].pk, stage["complaints.received"].pk)
    move_deal(admin, deal.pk, stage="fixing")
    move_deal(admin, deal.pk, stage="fixed")
    drive()
    deal.refresh_from_db()
    assert (deal.pipeline_id, deal.stage_id) == (flows["sales"].pk, stage["sales.installation"].pk)
    assert deal.closed_at is None and deal.stage_semantics == "process"
    path = list(StageHistory.objects.filter(entity_type_id=2, entity_id=deal.pk).order_by("id")
                .values_list("pipeline__code", "to_stage__code"))
    assert path == [("sales", "new"), ("sales", "production"), ("sales", "installation"), ("sales", "defects"),
                    ("complaints", "received"), ("complaints", "fixing"), ("complaints", "fixed"),
                    ("sales", "installation")]
    assert set(Run.objects.values_list("action", "status")) == {("move_stage", "done"), ("return_to_origin", "done")}
    # the deal can finish normally afterwards; its amount is still one deal's amount
    move_deal(admin, deal.pk, stage="won")
    assert Deal.objects.filter(stage_semantics="success").count() == 1


def test_return_to_a_named_stage_and_nowhere_to_return(admin, flows, drive):
    from voronka.automation.models import Robot

    Robot.objects.filter(action="return_to_origin").update(params={"stage": "won"})
    deal = create_deal(admin, title="Bath", pipeline="complaints")
    move_deal(admin, deal.pk, stage="fixed")  # it never was anywhere else
    drive()
    run = Run.objects.get(action="return_to_origin")
    assert run.status == "failed" and "nowhere to return" in run.error
    other = create_deal(admin, title="Barrel sauna")
    move_deal(admin, other.pk, stage="defects")
    drive()
    move_deal(admin, other.pk, stage="fixed")
    drive()
    other.refresh_from_db()
    assert other.stage_id == flows["stage"]["sales.won"].pk
