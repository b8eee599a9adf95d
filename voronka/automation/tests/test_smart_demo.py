"""The demo ships the production flow as a smart process, the complaints round trip and the Licences list."""

from __future__ import annotations

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_demo_production_flow_complaints_and_licences(tmp_path, settings):
    from voronka.activities.actions import decide_task
    from voronka.activities.models import Notification, Task
    from voronka.automation.models import Run
    from voronka.core import entity_types
    from voronka.core.actor import Actor
    from voronka.core.management.commands.worker import drain
    from voronka.deals.actions import create_deal, move_deal
    from voronka.deals.models import Deal
    from voronka.identity.models import User
    from voronka.items import actions
    from voronka.items.models import ListRow, SmartItem
    from voronka.links.models import Link
    from voronka.pipelines.models import StageHistory

    settings.VAR_DIR = tmp_path
    call_command("demo", leads=20, deals=10, no_progress=True, stdout=open("/dev/null", "w"))
    drain()
    assert Run.objects.count() == 0  # the history started nothing
    orders, licences = entity_types.by_code("production-orders"), entity_types.by_code("licences")
    assert ListRow.objects.filter(entity_type_id=licences.id).count() == 5
    assert not SmartItem.objects.exists()

    manager, head = User.objects.get(username="manager1"), User.objects.get(username="sales_head")
    as_manager = Actor.for_user(manager, "test")
    deal = create_deal(as_manager, title="Кронштейны для КАМАЗа", pipeline="production", stage="free",
                       opportunity="240000")
    drain()
    order = SmartItem.objects.get(entity_type_id=orders.id)
    assert Link.objects.filter(source_type_id=2, source_id=deal.pk, target_id=order.pk).exists()
    assert order.responsible.username == "prod_head"
    task = Task.objects.get(entity_type_id=orders.id, entity_id=order.pk)
    assert task.responsible_id == head.pk and task.approval
    decide_task(Actor.for_user(head, "test"), task.pk, outcome="approved")
    drain()
    master = Actor.for_user(User.objects.get(username="master1"), "test")
    for code in ("cutting", "painting", "done"):
        actions.move_item(master, orders.id, order.pk, stage=code)
        drain()
    deal.refresh_from_db()
    assert deal.stage.code == "shipped"
    assert Notification.objects.filter(user=manager, entity_type_id=orders.id).count() == 4  # queued … done

    # the complaints round trip
    other = create_deal(as_manager, title="Прицеп", pipeline="production", stage="free")
    drain()
    move_deal(as_manager, other.pk, stage="defects", fields={"custom": {"uf_defect": "Трещина сварного шва"}})
    drain()
    other = Deal.objects.get(pk=other.pk)
    assert (other.pipeline.code, other.stage.code) == ("complaints", "new")
    support = Actor.for_user(User.objects.get(username="support_head"), "test")
    move_deal(support, other.pk, stage="fixing")
    move_deal(support, other.pk, stage="resolved")
    drain()
    other = Deal.objects.get(pk=other.pk)
    assert (other.pipeline.code, other.stage.code) == ("production", "shipped")
    path = list(StageHistory.objects.filter(entity_type_id=2, entity_id=other.pk).order_by("id")
                .values_list("pipeline__code", "to_stage__code"))
    assert path == [("production", "free"), ("production", "defects"), ("complaints", "new"),
                    ("complaints", "fixing"), ("complaints", "resolved"), ("production", "shipped")]
