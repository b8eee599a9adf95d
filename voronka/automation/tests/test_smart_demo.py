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
    orders, licences = entity_types.by_code("production-orders"), entity_types.by_code("licences")
    assert ListRow.objects.filter(entity_type_id=licences.id).count() == 5
    # today's work in flight: orders at approval, in the queue, cutting, painting, and one done whose deal is
    # being fixed in Complaints; the history started nothing else
    head = User.objects.get(username="sales_head")
    in_flight = {o.title: o.stage.code for o in SmartItem.objects.filter(entity_type_id=orders.id)}
    assert in_flight == {"Кронштейны для КАМАЗа, 40 шт.": "approval", "Рама прицепа 8 м": "queued",
                         "Ограждения склада, 120 м": "cutting", "Металлоконструкции навеса": "painting",
                         "Кузов-фургон на ГАЗель": "done"}
    pending = Task.objects.get(entity_type_id=orders.id, status="open")
    assert pending.responsible_id == head.pk and pending.approval
    assert SmartItem.objects.get(title="Кронштейны для КАМАЗа, 40 шт.").pk == pending.entity_id
    for order in SmartItem.objects.filter(entity_type_id=orders.id):
        assert Link.objects.filter(source_type_id=2, target_type_id=orders.id, target_id=order.pk).count() == 1
    fixing = Deal.objects.get(title="Кузов-фургон на ГАЗель")
    assert (fixing.pipeline.code, fixing.stage.code) == ("complaints", "fixing")
    assert fixing.responsible.username in ("support1", "support2")
    assert Run.objects.exclude(entity_type_id__in=[orders.id, 2]).count() == 0
    drain()

    manager = User.objects.get(username="manager1")
    Notification.objects.all().delete()
    as_manager = Actor.for_user(manager, "test")
    # entering Production asks for the order's data (F23), named in the error; the order gets it
    from voronka.core.errors import ValidationFailed

    form = {"uf_product": "Кронштейн", "uf_quantity": 40, "uf_due_date": "2026-12-20", "uf_spec": "Сталь 4 мм"}
    with pytest.raises(ValidationFailed) as err:
        create_deal(as_manager, title="Кронштейны для КАМАЗа", pipeline="production", stage="free",
                    opportunity="240000", custom={"uf_product": "Кронштейн"})
    assert set(err.value.fields) == {"custom.uf_quantity", "custom.uf_due_date", "custom.uf_spec"}
    assert "Количество, шт., Срок изготовления, Размеры и комплектация" in err.value.message
    deal = create_deal(as_manager, title="Кронштейны для КАМАЗа", pipeline="production", stage="free",
                       opportunity="240000", custom=form)
    drain()
    order = SmartItem.objects.get(pk=Link.objects.get(source_type_id=2, source_id=deal.pk,
                                                      target_type_id=orders.id).target_id)
    assert order.responsible.username == "prod_head"
    assert order.custom == form
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
    other = create_deal(as_manager, title="Прицеп", pipeline="production", stage="free", custom=form)
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
