"""Triggers: an outside event moves the item to the trigger's stage, once, forward only unless allowed."""

import json
import re

import pytest
from django.core import mail
from django.test import Client

from voronka.activities.actions import complete_task, create_task
from voronka.automation import triggers
from voronka.automation.actions import (
    call_trigger,
    create_robot,
    create_trigger,
    delete_trigger,
    update_trigger,
)
from voronka.automation.models import Run, TrackedEmailEvent
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed
from voronka.core.models import OutboxEvent
from voronka.deals.actions import create_deal
from voronka.deals.models import Deal
from voronka.deals.payments import payment_received
from voronka.intake import actions as intake
from voronka.intake import forms
from voronka.leads.actions import create_lead, move_lead, update_lead
from voronka.leads.models import Lead
from voronka.parties.actions import create_contact

pytestmark = pytest.mark.django_db


@pytest.fixture
def trigger(admin, stages):
    def make(kind, stage="assigned", params=None, **extra):
        return create_trigger(admin, stage=stages[stage].pk, kind=kind, params=params or {}, **extra)

    return make


def stage_of(lead) -> str:
    return Lead.objects.select_related("stage").get(pk=lead.pk).stage.code


def call(number: str, event: str = "incoming") -> None:
    entry = intake.submit("call", {"event": event, "from": number, "to": "+74950000000", "call_id": f"c-{event}-{number}"})
    assert entry.status in ("attached", "created"), (entry.status, entry.reason, entry.errors)


def test_an_incoming_call_moves_the_lead_forward(admin, manager_user, trigger, drive):
    t = trigger("call")
    lead = create_lead(admin, title="Окна", phones=["+79161234567"], responsible=manager_user.pk)
    drive()
    call("8 916 123-45-67")
    drive()
    assert stage_of(lead) == "assigned"
    run = Run.objects.get(trigger=t)
    assert (run.status, run.action, run.entity_id) == ("done", triggers.MOVE, lead.pk)
    assert run.outputs["kind"] == "call"
    history = lead.__class__.objects.get(pk=lead.pk)
    assert history.stage_changed_at > lead.stage_changed_at


def test_the_call_direction_filter(admin, trigger, drive):
    trigger("call", params={"directions": ["missed"]})
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    call("+79161234567", "incoming")
    drive()
    assert stage_of(lead) == "new" and not Run.objects.exists()
    call("+79161234567", "missed")
    drive()
    assert stage_of(lead) == "assigned"


def test_one_run_per_event_and_trigger_however_often_delivered(admin, trigger, drive):
    trigger("call")
    create_lead(admin, title="Окна", phones=["+79161234567"])
    call("+79161234567")
    event = OutboxEvent.objects.get(name="call.logged")
    triggers.on_event(event)
    triggers.on_event(event)
    drive()
    OutboxEvent.objects.filter(pk=event.pk).update(dispatched_at=None, claimed_until=None)
    drive()
    assert Run.objects.filter(action=triggers.MOVE).count() == 1


def test_forward_only_unless_allowed_backwards(admin, trigger, drive):
    t = trigger("call", stage="assigned")
    lead = create_lead(admin, title="Окна", phones=["+79161234567"], stage="qualified")
    call("+79161234567")
    drive()
    run = Run.objects.get(trigger=t)
    assert (run.status, run.error) == ("skipped", "The record is further along; the trigger moves forward only.")
    assert stage_of(lead) == "qualified"
    update_trigger(admin, t.pk, allow_backwards=True)
    call("+79161234567", "missed")
    drive()
    assert stage_of(lead) == "assigned"


def test_a_closed_record_is_not_reopened(admin, trigger, drive):
    t = trigger("call", stage="assigned")
    lead = create_lead(admin, title="Окна", phones=["+79161234567"], stage="junk")
    call("+79161234567")
    drive()
    assert Run.objects.get(trigger=t).error == "The record is closed; the trigger does not move it back."
    assert stage_of(lead) == "junk"


def test_the_furthest_stage_wins_and_its_robots_run(admin, trigger, drive, stages):
    trigger("call", stage="assigned")
    far = trigger("call", stage="qualified")
    create_robot(admin, stage=stages["qualified"].pk, action="comment", params={"text": "Квалифицирован звонком"})
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    call("+79161234567")
    drive()
    assert stage_of(lead) == "qualified"
    assert list(Run.objects.filter(action=triggers.MOVE).values_list("trigger", flat=True)) == [far.pk]
    robot_run = Run.objects.get(robot__isnull=False)
    assert robot_run.status == "done" and robot_run.depth == 2  # the call (0) → the trigger's move (1) → the robot (2)


def test_a_refused_move_fails_with_the_reason(admin, trigger, drive):
    from voronka.core import config_cache
    from voronka.pipelines.models import Stage

    t = trigger("call", stage="qualified")
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    Stage.objects.filter(pk=t.stage_id).update(required_fields=["inquiry"])  # the stage wants an inquiry too
    config_cache.bump()
    call("+79161234567")
    drive()
    run = Run.objects.get(trigger=t)
    assert run.status == "failed" and "inquiry" in run.error
    assert stage_of(lead) == "new"


def test_disabled_and_deleted_triggers_plan_nothing(admin, trigger, drive):
    t = trigger("call")
    update_trigger(admin, t.pk, enabled=False)
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    call("+79161234567")
    drive()
    assert not Run.objects.exists() and stage_of(lead) == "new"
    delete_trigger(admin, t.pk)
    call("+79161234567", "missed")
    drive()
    assert not Run.objects.exists()


def test_a_task_completed_with_a_result(admin, manager_user, trigger, drive):
    trigger("task_completed", params={"result_contains": "договорились"})
    lead = create_lead(admin, title="Окна", responsible=manager_user.pk)
    first = create_task(admin, title="Позвонить", entity_type_id=1, entity_id=lead.pk, responsible=manager_user.pk)
    second = create_task(admin, title="Позвонить ещё", entity_type_id=1, entity_id=lead.pk, responsible=manager_user.pk)
    complete_task(admin, first.pk, result="Не дозвонился")
    drive()
    assert stage_of(lead) == "new"
    complete_task(admin, second.pk, result="Договорились о встрече")
    drive()
    assert stage_of(lead) == "assigned"


def test_a_field_gets_a_value(admin, trigger, drive):
    trigger("field_value", params={"field": "inquiry"})
    trigger("field_value", stage="qualified", params={"field": "source", "value": "partner"})
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    drive()
    assert stage_of(lead) == "new"
    update_lead(admin, lead.pk, last_name="Иванов")  # another field: nothing
    drive()
    assert stage_of(lead) == "new"
    update_lead(admin, lead.pk, inquiry="Нужна баня")
    drive()
    assert stage_of(lead) == "assigned"
    update_lead(admin, lead.pk, source="partner")
    drive()
    assert stage_of(lead) == "qualified"


def test_a_field_value_at_creation(admin, trigger, drive):
    trigger("field_value", params={"field": "inquiry"})
    lead = create_lead(admin, title="Окна", inquiry="Баня")
    drive()
    assert stage_of(lead) == "assigned"


def test_a_web_form_moves_the_existing_lead(admin, trigger, drive, lead_pipeline):
    form = forms.create_form(admin, slug="bani", name="Бани", source="landing", mode="now", fields=[
        {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True}])
    other = forms.create_form(admin, slug="okna", name="Окна", source="landing2", fields=form.fields, mode="now")
    trigger("webform", params={"form": "bani"})
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    drive()
    entry = intake.submit("form", {"phone": "8 916 123-45-67"}, form=other)
    assert entry.status == "attached", entry.reason
    drive()
    assert stage_of(lead) == "new"
    intake.submit("form", {"phone": "8 916 123-45-67"}, form=form)
    drive()
    assert stage_of(lead) == "assigned"


def test_a_call_from_a_deals_contact_moves_the_deal(admin, deal_pipelines, drive):
    sales = {s.code: s for s in deal_pipelines["sales"].stages.all()}
    create_trigger(admin, stage=sales["invoice"].pk, kind="call")
    contact = create_contact(admin, first_name="Иван", phones=["+79161234567"])
    deal = create_deal(admin, title="Баня", contact=contact.pk, pipeline="sales", opportunity=100000)
    call("+79161234567")
    drive()
    assert Deal.objects.get(pk=deal.pk).stage_id == sales["invoice"].pk


def test_a_payment_moves_the_deal_and_is_recorded_once(admin, manager, deal_pipelines, drive):
    sales = {s.code: s for s in deal_pipelines["sales"].stages.all()}
    create_trigger(admin, stage=sales["won"].pk, kind="payment", params={"min_amount": 1000})
    deal = create_deal(admin, title="Баня", pipeline="sales")
    assert payment_received(admin, deal.pk, amount="500", reference="p-1")["recorded"]
    drive()
    assert Deal.objects.get(pk=deal.pk).stage_id == sales["new"].pk
    assert payment_received(admin, deal.pk, amount="150000.50", reference="p-2")["recorded"]
    assert not payment_received(admin, deal.pk, amount="150000.50", reference="p-2")["recorded"]  # the same notice
    drive()
    assert Deal.objects.get(pk=deal.pk).stage_id == sales["won"].pk
    assert OutboxEvent.objects.filter(name="deal.payment_received").count() == 2
    with pytest.raises(ValidationFailed):
        payment_received(admin, deal.pk, amount="-1")
    with pytest.raises(NotFound):  # the manager may not see the admin's deal: it does not exist for him
        payment_received(manager, deal.pk, amount="10")


def test_incoming_webhook_trigger(admin, trigger, drive):
    t = trigger("webhook", stage="qualified")
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    client = Client()
    url = f"/hooks/trigger/{t.pk}/{t.secret}/"
    assert client.post(f"/hooks/trigger/{t.pk}/wrong/", {"id": lead.pk}).status_code == 404
    assert client.post(url, {}).status_code == 400
    assert client.post(url, {"id": "abc"}).status_code == 422
    assert client.post(url, {"id": lead.pk + 1000}).status_code == 404
    assert client.get(url).status_code == 405
    answer = client.post(url, json.dumps({"id": lead.pk}), content_type="application/json")
    assert answer.status_code == 202 and answer.json()["id"] == lead.pk
    drive()
    assert stage_of(lead) == "qualified"
    with pytest.raises(NotFound):
        call_trigger(t.pk, "", lead.pk)
    update_trigger(admin, t.pk, rotate_secret=True)
    assert client.post(url, {"id": lead.pk}).status_code == 404  # the old address no longer works


def test_a_webhook_call_sets_off_only_its_own_trigger(admin, trigger, drive):
    mine = trigger("webhook", stage="assigned")
    trigger("webhook", stage="qualified")
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    call_trigger(mine.pk, mine.secret, lead.pk)
    drive()
    assert stage_of(lead) == "assigned"


def test_email_opened_and_link_clicked(admin, trigger, drive, stages, settings):
    settings.VORONKA_PUBLIC_URL = "https://crm.example.ru"
    create_robot(admin, stage=stages["new"].pk, action="email_client",
                 params={"subject": "Каталог", "body": "Здравствуйте!\nКаталог: https://okna.example.ru/catalog?a=1."})
    trigger("email_opened", stage="assigned")
    trigger("link_clicked", stage="qualified", params={"url_contains": "catalog"})
    lead = create_lead(admin, title="Окна", phones=["+79161234567"], emails=["ivan@example.ru"])
    drive()
    [message] = mail.outbox
    html, _type = message.alternatives[0]
    assert "https://okna.example.ru/catalog?a=1." in message.body  # the text part keeps the real link
    pixel = re.search(r'<img src="https://crm\.example\.ru(/t/o/[^"]+/)"', html).group(1)
    link = re.search(r'<a href="https://crm\.example\.ru(/t/c/[^"]+/)">https://okna\.example\.ru/catalog\?a=1</a>\.',
                     html).group(1)
    client = Client()
    for _i in range(2):  # a mail program loads the picture again: recorded once
        answer = client.get(pixel)
        assert answer.status_code == 200 and answer["Content-Type"] == "image/gif"
    drive()
    assert stage_of(lead) == "assigned"
    answer = client.get(link)
    assert answer.status_code == 302 and answer["Location"] == "https://okna.example.ru/catalog?a=1"
    drive()
    assert stage_of(lead) == "qualified"
    assert TrackedEmailEvent.objects.count() == 2
    assert client.get("/t/c/forged/").status_code == 404
    assert client.get("/t/o/forged/").status_code == 200  # the picture is always served


def test_trigger_settings_are_validated_and_need_the_right(admin, manager, stages):
    with pytest.raises(ValidationFailed) as exc:
        create_trigger(admin, stage=stages["new"].pk, kind="telepathy")
    assert "kind" in exc.value.fields
    with pytest.raises(ValidationFailed) as exc:
        create_trigger(admin, stage=stages["new"].pk, kind="call", params={"directions": ["sideways"]})
    assert "params" in exc.value.fields
    with pytest.raises(ValidationFailed):
        create_trigger(admin, stage=stages["new"].pk, kind="field_value", params={})
    with pytest.raises(ValidationFailed):
        create_trigger(admin, stage=stages["new"].pk, kind="webform", params={"form": "nope"})
    with pytest.raises(PermissionDenied):
        create_trigger(manager, stage=stages["new"].pk, kind="call")
    t = create_trigger(admin, stage=stages["new"].pk, kind="call")
    assert t.name == "A call from or to the client" and len(t.secret) >= 24
    with pytest.raises(PermissionDenied):
        update_trigger(manager, t.pk, enabled=False)
    with pytest.raises(PermissionDenied):
        delete_trigger(manager, t.pk)
    with pytest.raises(NotFound):
        update_trigger(admin, 99999, enabled=False)


def test_moving_the_lead_by_hand_meanwhile_skips_nothing_wrongly(admin, trigger, drive):
    trigger("call", stage="assigned")
    lead = create_lead(admin, title="Окна", phones=["+79161234567"])
    call("+79161234567")
    move_lead(admin, lead.pk, stage="assigned")  # someone did it before the worker
    drive()
    run = Run.objects.get(action=triggers.MOVE)
    assert (run.status, run.error) == ("skipped", "The record is already in the stage.")
