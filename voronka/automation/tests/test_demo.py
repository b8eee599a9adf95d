"""The demo ships the seeds' automation, and its six months of history start no run and no timer."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from voronka.automation.models import Robot, Run, StageLimit, TaskEscalation, TaskTimer, Timer

pytestmark = pytest.mark.django_db


def test_demo_ships_the_seed_automation_without_a_storm(tmp_path, settings, drive):
    settings.VAR_DIR = tmp_path
    call_command("demo", leads=60, deals=30, no_progress=True, stdout=open("/dev/null", "w"))
    limit = StageLimit.objects.get(stage__pipeline__code="leads", stage__code="new")
    assert (limit.amount, limit.unit, limit.steps[0]["notify"]) == (3, "hours", ["user:director"])
    names = set(Robot.objects.values_list("name", flat=True))
    assert {"Презентация образцов", "Контроль подписания договора", "Уведомить менеджера по продажам"} <= names
    # 8 notifications, the production order robot and «to Complaints» (the smart-process flow, voronka.items)
    assert Robot.objects.filter(stage__pipeline__code="production").count() == 10
    drive()
    # history is history: only today's work in flight (``demo.in_flight``: five deals in Production, their orders
    # and the approval task) started runs and timers
    from voronka.activities.models import Task
    from voronka.automation.demo import COMPLAINT, IN_FLIGHT
    from voronka.deals.models import Deal
    from voronka.items.models import SmartItem

    live = {(2, pk) for pk in Deal.objects.filter(title__in=[t[0] for t in (*IN_FLIGHT, COMPLAINT)])
            .values_list("pk", flat=True)}
    live |= set(SmartItem.objects.values_list("entity_type_id", "pk"))
    assert len(live) == 10
    assert {(r.entity_type_id, r.entity_id) for r in Run.objects.all()} <= live
    assert {(t.entity_type_id, t.entity_id) for t in Timer.objects.all()} <= live
    live_tasks = set(Task.objects.filter(entity_type_id__in=[t for t, _pk in live])
                     .values_list("pk", flat=True))
    assert set(TaskTimer.objects.values_list("task_id", flat=True)) <= live_tasks
    assert Run.objects.exists() and len(TaskEscalation.objects.get().steps) == 2


def test_a_new_production_stage_notifies_the_sales_manager(tmp_path, settings, drive):
    from voronka.activities.models import Notification
    from voronka.core.actor import Actor
    from voronka.deals.actions import create_deal, move_deal
    from voronka.identity.models import User
    from voronka.pipelines.models import Pipeline

    settings.VAR_DIR = tmp_path
    call_command("demo", leads=20, deals=10, no_progress=True, stdout=open("/dev/null", "w"))
    manager, master = User.objects.get(username="manager1"), User.objects.get(username="master1")
    production = Pipeline.objects.get(code="production")
    form = {"uf_product": "Кронштейн", "uf_quantity": 40, "uf_due_date": "2026-12-20", "uf_spec": "Сталь 4 мм"}
    deal = create_deal(Actor.system("test", on_behalf_of=manager), title="Кронштейны", pipeline=production.pk,
                       stage="free", custom=form)  # entering Production asks for the order's data
    from voronka.core.recordkit import set_observers
    from voronka.deals.actions import DEAL

    set_observers(Actor.system("test", on_behalf_of=manager), DEAL, deal.pk, [manager.pk])
    move_deal(Actor.system("test", on_behalf_of=User.objects.get(username="prod_head")), deal.pk, stage="assigned",
              fields={"responsible": master.pk})
    drive()
    note = Notification.objects.filter(user=manager).order_by("-id").first()
    assert note is not None and "Кронштейны" in note.text and "принят в производство" in note.text
