"""The trigger «a linked record reaches a stage» (F24): when the production deal is done, the sales deal moves."""

import pytest

from voronka.automation.actions import create_trigger
from voronka.automation.models import Run
from voronka.core import entity_types
from voronka.core.errors import ValidationFailed
from voronka.deals.actions import create_deal, move_deal
from voronka.deals.models import Deal
from voronka.links.actions import link

pytestmark = pytest.mark.django_db

DEAL = entity_types.DEAL


def stage_of(deal) -> str:
    return Deal.objects.select_related("stage").get(pk=deal.pk).stage.code


@pytest.fixture
def flow(admin, deal_pipelines):
    sales, production = deal_pipelines["sales"], deal_pipelines["repeat"]
    s = {x.code: x for x in sales.stages.all()}
    p = {x.code: x for x in production.stages.all()}
    trigger = create_trigger(admin, stage=s["invoice"].pk, kind="linked_stage",
                             params={"stage": p["won"].pk, "role": "production"})
    return {"s": s, "p": p, "sales": sales, "production": production, "trigger": trigger}


def test_the_sales_deal_moves_when_its_production_deal_is_done(admin, flow, drive):
    deal = create_deal(admin, title="Кухня", opportunity=150000, pipeline=flow["sales"].pk)
    order = create_deal(admin, title="Кухня: производство", pipeline=flow["production"].pk)
    other = create_deal(admin, title="Без связи", opportunity=1000, pipeline=flow["sales"].pk)
    loose = create_deal(admin, title="Связь без роли", opportunity=1000, pipeline=flow["sales"].pk)
    link(admin, (DEAL, deal.pk), (DEAL, order.pk), role="production")
    link(admin, (DEAL, loose.pk), (DEAL, order.pk))  # another role: not followed by this trigger
    drive()
    move_deal(admin, order.pk, stage=flow["p"]["won"].pk)
    drive()
    assert stage_of(deal) == "invoice"
    assert stage_of(other) == "new" and stage_of(loose) == "new" and stage_of(order) == "won"
    run = Run.objects.get(trigger=flow["trigger"])
    assert (run.status, run.entity_id, run.outputs["kind"]) == ("done", deal.pk, "linked_stage")
    drive()  # delivered again or not: nothing more happens
    assert Run.objects.filter(trigger=flow["trigger"]).count() == 1


def test_another_stage_of_the_linked_deal_does_nothing(admin, flow, drive):
    deal = create_deal(admin, title="Кухня", opportunity=150000, pipeline=flow["sales"].pk)
    order = create_deal(admin, title="Кухня: производство", pipeline=flow["production"].pk)
    link(admin, (DEAL, deal.pk), (DEAL, order.pk), role="production")
    move_deal(admin, order.pk, stage=flow["p"]["lost"].pk)
    drive()
    assert stage_of(deal) == "new" and not Run.objects.filter(trigger=flow["trigger"]).exists()


@pytest.mark.parametrize("params", [{}, {"stage": "done"}, {"stage": 10**9}, {"stage": True},
                                    {"stage": 1, "role": 5}, {"stage": 1, "extra": 1}])
def test_bad_parameters_are_refused(admin, flow, params):
    with pytest.raises(ValidationFailed):
        create_trigger(admin, stage=flow["s"]["won"].pk, kind="linked_stage", params=params)


def _link_reads(admin, flow, triggers: int, deals: int) -> int:
    """Queries on the links table while one «production deal won» event is handled by the trigger consumer."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.automation import triggers as trigger_kinds
    from voronka.core.models import OutboxEvent

    stages = [flow["s"][c] for c in flow["s"] if flow["s"][c].semantics == "process"]
    for stage in stages[:triggers - 1]:
        create_trigger(admin, stage=stage.pk, kind="linked_stage", params={"stage": flow["p"]["won"].pk,
                                                                            "role": "production"})
    order = create_deal(admin, title="Производство", pipeline=flow["production"].pk)
    for i in range(deals):
        deal = create_deal(admin, title=f"Продажа {i}", opportunity=1000, pipeline=flow["sales"].pk)
        link(admin, (DEAL, deal.pk), (DEAL, order.pk), role="production")
    move_deal(admin, order.pk, stage=flow["p"]["won"].pk)
    event = OutboxEvent.objects.filter(name="deal.stage_changed", entity_id=order.pk).latest("id")
    with CaptureQueriesContext(connection) as queries:
        trigger_kinds.on_event(event)
    assert Run.objects.filter(cause_event_id=event.pk).count() == deals  # each linked deal gets its move
    return sum("links_link" in q["sql"] for q in queries.captured_queries)


def test_the_linked_records_are_read_once_per_event_not_per_candidate_trigger(admin, flow):
    many = _link_reads(admin, flow, triggers=3, deals=4)
    assert many <= 2, many  # the targets (any role) and the triggers' role: whatever the triggers and the deals
