"""Stage totals stay equal to a recount of the records after every kind of write."""

from __future__ import annotations

import pytest

from voronka.core import policies
from voronka.core.actor import Actor
from voronka.deals import actions
from voronka.deals.models import Deal
from voronka.pipelines import totals
from voronka.pipelines.models import StageTotal

pytestmark = pytest.mark.django_db


def snapshot():
    return sorted((t.pipeline_id, t.stage_id, t.responsible_id, t.is_open, t.currency, t.count, t.amount)
                  for t in StageTotal.objects.filter(entity_type_id=2) if t.count or t.amount)


def test_totals_follow_every_write(admin, manager, deal_pipelines):
    a = actions.create_deal(admin, title="a", opportunity=100)
    b = actions.create_deal(admin, title="b", opportunity=250, responsible=manager.user_id)
    actions.create_deals(admin, [{"title": "c", "opportunity": 5, "currency": "USD"}, {"title": "d"}])
    actions.move_deal(admin, a.pk, stage="invoice")
    actions.update_deal(admin, b.pk, opportunity=300, responsible=admin.user_id, is_open=False)
    actions.move_deal(admin, b.pk, pipeline="repeat", stage="offer")
    actions.delete_deal(admin, a.pk)
    live = snapshot()
    totals.rebuild(2, Deal)
    assert live == snapshot()
    actions.restore_deal(admin, a.pk)
    live = snapshot()
    totals.rebuild(2, Deal)
    assert live == snapshot()


def test_totals_respect_rights(admin, manager, deal_pipelines):
    from voronka.identity.permissions import RoleEngine

    actions.create_deal(admin, title="mine", opportunity=10, responsible=manager.user_id)
    actions.create_deal(admin, title="not mine", opportunity=1000, responsible=admin.user_id, is_open=False)
    sales = deal_pipelines["sales"].pk
    new = deal_pipelines["sales"].stages.get(code="new").pk
    assert totals.for_actor(admin, 2, sales)[new]["count"] == 2
    previous = policies._engine
    policies.install(RoleEngine())
    try:
        from voronka.identity.actions import assign_role
        from voronka.identity.models import Role

        assign_role(admin, Role.objects.get(code="sales_manager").pk, user_id=manager.user_id)
        mine = totals.for_actor(Actor.for_user(manager.user, "test"), 2, sales)
        assert mine[new]["count"] == 1 and mine[new]["amounts"] == {"RUB": 10}
    finally:
        policies.install(previous)
