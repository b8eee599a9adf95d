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


def test_approval_task_moves_the_item_on_its_outcome(admin, manager, manager_user, drive):
    from voronka.activities.actions import complete_task, decide_task
    from voronka.activities.models import Task
    from voronka.core.errors import Conflict, NotFound
    from voronka.identity.models import User
    from voronka.items import actions

    head = User.objects.create_user("head", "h@example.ru", "x", first_name="Ольга", last_name="Начальникова")
    actions.create_type(admin, name="Production order", name_plural="Production", code="production", stages=[
        {"name": "Approval", "code": "approval"}, {"name": "Queued", "code": "queued"},
        {"name": "Done", "code": "done", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"}])
    stage = {s.code: s for s in __import__("voronka.pipelines.models", fromlist=["Stage"]).Stage.objects.filter(
        pipeline__entity_type_id=1030)}
    create_robot(admin, stage=stage["approval"].pk, action="create_task", params={
        "title": "Approve production of {title}", "responsible": f"user:{head.pk}",
        "approval": {"approved": "queued", "rejected": "rejected"}})
    first = actions.create_item(admin, "production", title="Kitchen", responsible=manager_user.pk)
    second = actions.create_item(admin, "production", title="Wardrobe", responsible=manager_user.pk)
    drive()
    task1, task2 = Task.objects.order_by("id")
    assert task1.approval == {"approved": stage["queued"].pk, "rejected": stage["rejected"].pk}
    with pytest.raises(Conflict):
        complete_task(admin, task1.pk)
    with pytest.raises(NotFound):  # the manager has no right on production items: the task is invisible
        decide_task(manager, task1.pk, outcome="approved")
    from voronka.core.actor import Actor

    approver = Actor.for_user(head, "test")
    decide_task(approver, task1.pk, outcome="approved", comment="OK, materials in stock")
    decide_task(approver, task2.pk, outcome="rejected")
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.stage_id == stage["queued"].pk and second.stage_id == stage["rejected"].pk
    task1.refresh_from_db()
    assert task1.status == "done" and task1.outcome == "approved" and task1.result == "OK, materials in stock"
    move = StageHistory.objects.filter(entity_id=first.pk, to_stage=stage["queued"]).get()
    assert move.cause == f"approval:{task1.pk}"
    with pytest.raises(Conflict):
        decide_task(approver, task1.pk, outcome="rejected")


def test_production_flow_end_to_end(admin, manager, manager_user, drive):
    """Seed 002: a deal reaching «Production» creates a linked production order with data asked from the manager,
    approved by the head of sales; production stages notify the manager, who observes the order; finished
    production moves the deal on."""
    from voronka.activities.actions import decide_task
    from voronka.activities.models import Notification, Task
    from voronka.core.actor import Actor
    from voronka.core.errors import ValidationFailed
    from voronka.core.selectors import get_record_for
    from voronka.identity.models import Role, RoleAssignment, User
    from voronka.identity.permissions import rights_changed
    from voronka.items import actions
    from voronka.items.models import SmartItem
    from voronka.links.models import Link
    from voronka.pipelines.models import Stage

    head = User.objects.create_user("head", "h@example.ru", "x", first_name="Ольга", last_name="Начальникова")
    master = User.objects.create_user("master", "p@example.ru", "x", first_name="Иван", last_name="Мастеров")
    RoleAssignment.objects.create(role=Role.objects.get(code="production_master"), user=master)
    rights_changed()
    create_pipeline(admin, entity_type_id=2, name="Sales", code="sales", is_default=True, stages=[
        {"name": "New", "code": "new"},
        {"name": "Production", "code": "production", "required_fields": ["close_date"]},
        {"name": "Installation", "code": "installation"},
        {"name": "Won", "code": "won", "semantics": "success"}])
    t = actions.create_type(admin, name="Production order", name_plural="Production", code="production", stages=[
        {"name": "Approval", "code": "approval"}, {"name": "Queued", "code": "queued"},
        {"name": "Cutting", "code": "cutting"}, {"name": "Done", "code": "done", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"}])
    deal_stage = {s.code: s for s in Stage.objects.filter(pipeline__code="sales")}
    item_stage = {s.code: s for s in Stage.objects.filter(pipeline__entity_type_id=t.id)}
    create_robot(admin, stage=deal_stage["production"].pk, action="create_linked", params={
        "entity_type": "production", "responsible": "role:production_master", "observers": ["responsible"],
        "fields": {"title": "Production: {title}", "opportunity": "{opportunity}", "close_date": "{close_date}"}})
    create_robot(admin, stage=item_stage["approval"].pk, action="create_task", params={
        "title": "Approve {title}", "responsible": "user:head", "approval": {"approved": "queued",
                                                                             "rejected": "rejected"}})
    for code in ("cutting", "done"):
        create_robot(admin, stage=item_stage[code].pk, action="notify",
                     params={"text": "{title}: {stage}", "to": ["observers"]})
    create_robot(admin, stage=item_stage["done"].pk, action="move_linked",
                 params={"entity_type": "deal", "stage": "installation", "from_stages": ["production"]})

    deal = create_deal(manager, title="Kitchen for Sidorov", opportunity="350000")
    with pytest.raises(ValidationFailed) as err:  # the manager is asked for the data first
        move_deal(manager, deal.pk, stage="production")
    assert "close_date" in err.value.fields
    move_deal(manager, deal.pk, stage="production", fields={"close_date": "2026-12-20"})
    drive()
    from voronka.automation.models import Run

    assert {(r.action, r.status, r.error) for r in Run.objects.all()} == {("create_linked", "done", ""),
                                                                           ("create_task", "done", "")}
    item = SmartItem.objects.get(entity_type_id=t.id)
    assert (item.title, str(item.opportunity), str(item.close_date)) == (
        "Production: Kitchen for Sidorov", "350000.00", "2026-12-20")
    assert item.responsible_id == master.pk and item.stage_id == item_stage["approval"].pk
    assert Link.objects.filter(source_type_id=2, source_id=deal.pk, target_type_id=t.id, target_id=item.pk).exists()
    assert get_record_for(manager, t.id, item.pk) == item  # an observer reads the order without rights on the type
    task = Task.objects.get(entity_type_id=t.id, entity_id=item.pk)
    assert task.responsible_id == head.pk
    decide_task(Actor.for_user(head, "test"), task.pk, outcome="approved")
    item.refresh_from_db()
    assert item.stage_id == item_stage["queued"].pk
    actions.move_item(admin, "production", item.pk, stage="cutting")
    drive()
    assert Notification.objects.filter(user=manager_user, entity_type_id=t.id, entity_id=item.pk).count() == 1
    actions.move_item(admin, "production", item.pk, stage="done")
    drive()
    deal.refresh_from_db()
    assert deal.stage_id == deal_stage["installation"].pk
    assert Notification.objects.filter(user=manager_user, entity_type_id=t.id).count() == 2
    assert not Notification.objects.filter(user=head).exists()
