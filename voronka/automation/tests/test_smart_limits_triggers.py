"""A smart process gets stage time limits and triggers with no per-type code (issue 7, Deliver 1): the same engine,
keyed by its entity type id, driven by the worker in this process."""

import datetime

import pytest

from voronka.activities.models import Notification
from voronka.automation.actions import create_trigger, set_stage_limit
from voronka.automation.models import Run, Timer
from voronka.core import clock, entity_types

pytestmark = pytest.mark.django_db


@pytest.fixture
def orders(admin):
    from voronka.items.actions import create_type
    from voronka.pipelines.models import Pipeline

    t = create_type(admin, name="Production order", name_plural="Production orders", code="orders", stages=[
        {"name": "Queued", "code": "queued"}, {"name": "Cutting", "code": "cutting"},
        {"name": "Shipped", "code": "shipped", "semantics": "success"},
        {"name": "Rejected", "code": "rejected", "semantics": "failure"}])
    pipe = Pipeline.objects.get(entity_type_id=t.id)
    return {"type": t, "stages": {s.code: s for s in pipe.stages.all()}}


def test_a_time_limit_on_a_process_stage(admin, orders, drive):
    from voronka.identity.models import User
    from voronka.items.actions import create_item, move_item

    worker = User.objects.create_user("worker", "w@example.ru", "x", first_name="Олег", last_name="Сварщиков",
                                      language="en")
    from voronka.identity.models import Role, RoleAssignment, RolePermission, Scope
    from voronka.identity.permissions import rights_changed

    role = Role.objects.create(code="workshop", name="Workshop")  # notices go only to those who may read the item
    RolePermission.objects.create(role=role, entity_type_id=orders["type"].id, perm="read", scope=Scope.OWN)
    RoleAssignment.objects.create(role=role, user=worker)
    rights_changed()
    set_stage_limit(admin, orders["stages"]["cutting"].pk, amount=2, unit="hours",
                    steps=[{"after": {"amount": 0, "unit": "minutes"}, "notify": ["responsible"]}])
    item = create_item(admin, "orders", title="Frame", responsible=worker.pk)
    item = move_item(admin, "orders", item.pk, stage="cutting")
    drive()
    [timer] = Timer.objects.all()
    assert (timer.entity_type_id, timer.entity_id) == (orders["type"].id, item.pk)
    clock.freeze(item.stage_changed_at + datetime.timedelta(hours=1, minutes=59))
    drive()
    assert not Notification.objects.exists()
    clock.freeze(item.stage_changed_at + datetime.timedelta(hours=2))
    drive()
    drive()
    [note] = Notification.objects.all()
    assert note.user == worker and "Frame" in note.text and "Cutting" in note.text
    assert Timer.objects.get().status == "fired"


def test_a_trigger_moves_the_item_when_its_deal_is_won(admin, orders, deal_pipelines, drive):
    """«When the linked deal reaches «won», move the order to «shipped»»: the trigger sits on the order's stage."""
    from voronka.deals.actions import create_deal, move_deal
    from voronka.items.actions import create_item
    from voronka.items.models import SmartItem
    from voronka.links.actions import link

    sales = {s.code: s for s in deal_pipelines["sales"].stages.all()}
    trigger = create_trigger(admin, stage=orders["stages"]["shipped"].pk, kind="linked_stage",
                             params={"stage": sales["won"].pk})
    deal = create_deal(admin, title="Kitchen", opportunity=1000, pipeline=deal_pipelines["sales"].pk)
    item = create_item(admin, "orders", title="Kitchen: order")
    other = create_item(admin, "orders", title="Unlinked")
    link(admin, (entity_types.DEAL, deal.pk), (orders["type"].id, item.pk))
    drive()
    move_deal(admin, deal.pk, stage=sales["won"].pk)
    drive()
    item, other = SmartItem.objects.get(pk=item.pk), SmartItem.objects.get(pk=other.pk)
    assert (item.stage_id, other.stage_id) == (orders["stages"]["shipped"].pk, orders["stages"]["queued"].pk)
    run = Run.objects.get(trigger=trigger)
    assert (run.status, run.entity_type_id, run.entity_id) == ("done", orders["type"].id, item.pk)
