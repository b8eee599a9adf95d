"""Every robot action, executed by the engine as the system actor of the robot."""

import datetime
import hashlib
import hmac
import http.server
import json
import threading

import pytest
from django.core import mail
from django.utils import timezone, translation

from voronka.activities.models import Notification, Task
from voronka.automation import effects
from voronka.automation.models import RoundRobinPointer, Run
from voronka.core import clock
from voronka.core.models import Observer, TimelineEntry
from voronka.deals.models import Deal
from voronka.identity.models import Department, Role, RoleAssignment, User
from voronka.leads.actions import create_lead
from voronka.leads.models import Lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(manager_user, lead_pipeline):
    from voronka.identity.permissions import rights_changed

    head = User.objects.create_user("head", "head@example.ru", "x", first_name="Ольга", last_name="Начальникова")
    RoleAssignment.objects.create(role=Role.objects.get(code="head_of_sales"), user=head)
    dept = manager_user.department
    dept.head = head
    dept.save()
    other = User.objects.create_user("other", "other@example.ru", "x", first_name="Олег", last_name="Другов",
                                     department=Department.objects.create(name="Склад"))
    role = Role.objects.create(code="closer", name="Closer")
    RoleAssignment.objects.create(role=role, user=other)
    rights_changed()
    return {"manager": manager_user, "head": head, "other": other}


def soon() -> datetime.datetime:
    """A moment just after now: runs of records created now are due, and times are exact."""
    return timezone.now().replace(microsecond=0) + datetime.timedelta(minutes=1)


def new_lead(admin, people, **data):
    return create_lead(admin, **{"title": "Окна", "responsible": people["manager"].pk, **data})


def only_run():
    run = Run.objects.get()
    assert run.status in ("done", "failed", "skipped")
    return run


def test_create_task_templated_with_deadline_responsible_and_observers(admin, people, robot, drive):
    now = soon()
    clock.freeze(now)
    robot("create_task", {"title": "Позвонить: {title}", "description": "Ответственный {responsible}",
                          "deadline": {"amount": 2, "unit": "hours"}, "responsible": "head",
                          "observers": ["responsible", "role:closer"]})
    lead = new_lead(admin, people)
    drive()
    run = only_run()
    assert run.status == "done", run.error
    task = Task.objects.get()
    assert (task.title, task.description) == ("Позвонить: Окна", "Ответственный Пётр Менеджеров")
    assert task.responsible == people["head"]
    assert task.deadline == now + datetime.timedelta(hours=2)
    assert set(task.observers.all()) == {people["manager"], people["other"]}
    assert task.cause == f"robot:{run.robot_id}" and task.created_by is None
    assert run.outputs["task"] == task.pk and (task.entity_type_id, task.entity_id) == (1, lead.pk)


@pytest.mark.parametrize("who, expected", [("responsible", "manager"), ("user:head", "head"), ("role:closer", "other")])
def test_create_task_responsible_kinds(admin, people, robot, drive, who, expected):
    robot("create_task", {"title": "t", "responsible": who})
    new_lead(admin, people)
    drive()
    assert Task.objects.get().responsible == people[expected]


def test_notify_in_app_and_by_mail(admin, people, robot, drive):
    robot("notify", {"text": "Новый лид «{title}»", "to": ["responsible", "head"], "email": True, "subject": "Лид {id}"})
    lead = new_lead(admin, people)
    drive()
    assert only_run().status == "done"
    notes = list(Notification.objects.order_by("user_id"))
    assert [(n.user, n.text, n.link) for n in notes] == [
        (people["manager"], "Новый лид «Окна»", f"/crm/leads/{lead.pk}/"),
        (people["head"], "Новый лид «Окна»", f"/crm/leads/{lead.pk}/")]


def test_notify_email_is_sent_after_commit(admin, people, django_capture_on_commit_callbacks):
    from voronka.activities.actions import notify

    lead = new_lead(admin, people)
    with django_capture_on_commit_callbacks(execute=True):
        notify(admin, users=[people["manager"]], text="Привет", entity_type_id=1, entity_id=lead.pk, email=True,
               subject="Тема")
    assert [(m.subject, m.to) for m in mail.outbox] == [("Тема", ["m@example.ru"])]
    assert Notification.objects.get().emailed is True


def test_notify_reaches_only_readers(admin, people):
    from voronka.activities.actions import notify

    lead = new_lead(admin, people, is_open=False)
    rows = notify(admin, users=[people["manager"], people["other"]], text="x", entity_type_id=1, entity_id=lead.pk)
    assert [n.user for n in rows] == [people["manager"]]  # «other» may not read the lead


def test_set_fields_with_templates_and_raw_values(admin, people, robot, drive):
    robot("set_fields", {"fields": {"comment": "Из {source}", "opportunity": "{opportunity}", "utm_term": "x"}})
    lead = new_lead(admin, people, source="site", opportunity="700")
    drive()
    assert only_run().status == "done"
    lead.refresh_from_db()
    assert (lead.comment, str(lead.opportunity), lead.utm_term) == ("Из site", "700.00", "x")
    entry = TimelineEntry.objects.filter(entity_id=lead.pk, kind="updated").get()
    assert entry.cause.startswith("robot:") and entry.entry_point == "automation" and entry.actor_kind == "system"


def test_set_fields_failure_is_stored_not_swallowed(admin, people, robot, drive):
    robot("set_fields", {"fields": {"opportunity": "много"}})
    lead = new_lead(admin, people)
    drive()
    run = only_run()
    assert run.status == "failed" and "opportunity" in run.error and run.attempts == 1
    line = TimelineEntry.objects.get(entity_id=lead.pk, kind="automation")
    assert line.data["status"] == "failed" and "opportunity" in line.data["error"]


def test_change_responsible_to_user_and_head(admin, people, robot, drive, stages):
    robot("change_responsible", {"mode": "user", "user": "user:other"})
    robot("change_responsible", {"mode": "head"}, stage="assigned")
    lead = new_lead(admin, people)
    drive()
    lead.refresh_from_db()
    assert lead.responsible == people["other"]
    from voronka.leads.actions import move_lead, update_lead

    update_lead(admin, lead.pk, responsible=people["manager"].pk)
    move_lead(admin, lead.pk, stage="assigned")
    drive()
    lead.refresh_from_db()
    assert lead.responsible == people["head"]


def test_round_robin_keeps_its_pointer(admin, people, robot, drive):
    rr = robot("change_responsible", {"mode": "round_robin", "users": ["user:manager", "user:other", "user:head"]})
    leads = [new_lead(admin, people, title=f"L{i}") for i in range(5)]
    drive()
    got = [Lead.objects.get(pk=lead.pk).responsible.username for lead in leads]
    assert got == ["manager", "other", "head", "manager", "other"]
    assert RoundRobinPointer.objects.get(robot=rr).position == 5


def test_move_to_stage_and_the_chain_continues(admin, people, robot, drive):
    robot("move_stage", {"stage": "assigned"})
    robot("comment", {"text": "Назначен: {stage}"}, stage="assigned")
    lead = new_lead(admin, people)
    drive()
    lead.refresh_from_db()
    assert lead.stage.code == "assigned"
    runs = list(Run.objects.order_by("id"))
    assert [(r.action, r.status, r.depth) for r in runs] == [("move_stage", "done", 1), ("comment", "done", 2)]
    assert TimelineEntry.objects.get(entity_id=lead.pk, kind="comment").text == "Назначен: Назначен менеджер"


def test_move_to_another_pipeline(admin, people, robot, drive):
    from voronka.pipelines.actions import create_pipeline

    create_pipeline(admin, entity_type_id=1, name="Партнёры", code="partners", stages=[{"name": "Новый", "code": "p-new"}])
    robot("move_stage", {"stage": "p-new", "pipeline": "partners"})
    lead = new_lead(admin, people)
    drive()
    lead.refresh_from_db()
    assert (lead.pipeline.code, lead.stage.code) == ("partners", "p-new")


def test_create_linked_deal_from_lead(admin, people, robot, drive, deal_pipelines):
    robot("create_linked", {"entity_type": "deal", "pipeline": "sales", "stage": "new",
                            "fields": {"title": "Сделка: {title}", "opportunity": "{opportunity}", "source": "{source}"}})
    lead = new_lead(admin, people, opportunity="5000", source="call")
    drive()
    run = only_run()
    assert run.status == "done", run.error
    deal = Deal.objects.get()
    assert (deal.title, str(deal.opportunity), deal.source, deal.lead_id, deal.responsible_id) == (
        "Сделка: Окна", "5000.00", "call", lead.pk, people["manager"].pk)
    assert run.outputs == {"created": [2, deal.pk]}
    linked = TimelineEntry.objects.get(entity_id=lead.pk, entity_type_id=1, kind="linked")
    assert linked.bindings.filter(entity_type_id=2, entity_id=deal.pk).exists()


def test_comment(admin, people, robot, drive):
    robot("comment", {"text": "Клиент {title}: {nope}"})
    lead = new_lead(admin, people)
    drive()
    assert TimelineEntry.objects.get(entity_id=lead.pk, kind="comment").text == "Клиент Окна: {nope}"


# --- external effects ----------------------------------------------------------------------------------

class Hook(http.server.BaseHTTPRequestHandler):
    answers: list[int] = []
    got: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        Hook.got.append({"body": body, "headers": dict(self.headers)})
        self.send_response(Hook.answers.pop(0) if Hook.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    Hook.answers, Hook.got = [], []
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhook_is_signed_retried_with_backoff_and_keyed(admin, people, robot, drive, hook_server):
    robot("webhook", {"url": hook_server, "secret": "s3cret", "fields": ["title", "opportunity"]})
    now = soon()
    clock.freeze(now)
    Hook.answers = [500, 502]
    lead = new_lead(admin, people, opportunity="10")
    drive()
    run = Run.objects.get()
    assert (run.status, run.attempts) == ("pending", 1) and "HTTP 500" in run.error
    assert run.scheduled_at == now + datetime.timedelta(seconds=30)
    clock.freeze(now + datetime.timedelta(seconds=30))
    drive()
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("pending", 2)
    assert run.scheduled_at == now + datetime.timedelta(seconds=90)  # 30 s, then 60 s
    clock.freeze(now + datetime.timedelta(seconds=90))
    drive()
    run.refresh_from_db()
    assert (run.status, run.attempts, run.outputs) == ("done", 3, {"status": 200})
    assert len(Hook.got) == 3
    bodies = {g["body"] for g in Hook.got}
    assert len(bodies) == 1  # every attempt sends the same request
    body = bodies.pop()
    assert json.loads(body)["record"] == {"title": "Окна", "opportunity": "10.00"}
    assert json.loads(body)["entity_id"] == lead.pk
    for g in Hook.got:
        assert g["headers"]["X-Voronka-Idempotency-Key"] == run.key
        assert g["headers"]["X-Voronka-Signature"] == "sha256=" + hmac.new(b"s3cret", body.encode(), hashlib.sha256).hexdigest()


def test_webhook_gives_up_after_max_attempts(admin, people, robot, drive, settings):
    settings.VORONKA_AUTOMATION_MAX_ATTEMPTS = 2
    robot("webhook", {"url": "http://127.0.0.1:9/nowhere"})
    now = soon()
    clock.freeze(now)
    new_lead(admin, people)
    drive()
    clock.freeze(now + datetime.timedelta(hours=1))
    drive()
    run = Run.objects.get()
    assert (run.status, run.attempts) == ("failed", 2) and "could not be reached" in run.error


def test_email_to_the_client(admin, people, robot, drive):
    robot("email_client", {"subject": "Ваш заказ «{title}»", "body": "Здравствуйте, {first_name}!"})
    new_lead(admin, people, first_name="Иван", emails=["Ivan@Example.ru"])
    drive()
    run = only_run()
    assert run.status == "done", run.error
    [message] = mail.outbox
    assert (message.subject, message.body, message.to) == ("Ваш заказ «Окна»", "Здравствуйте, Иван!", ["ivan@example.ru"])
    assert message.extra_headers["X-Voronka-Idempotency-Key"] == run.key


def test_email_to_a_client_without_address_fails_clearly(admin, people, robot, drive):
    robot("email_client", {"subject": "s", "body": "b"})
    new_lead(admin, people)
    drive()
    run = only_run()
    assert (run.status, run.error) == ("failed", "The client has no e-mail address.")
    assert mail.outbox == []


def test_sms_through_the_log_provider(admin, people, robot, drive):
    effects.LogSmsProvider.sent.clear()
    robot("sms", {"text": "{first_name}, мы получили заявку"})
    new_lead(admin, people, first_name="Иван", phones=["8 (916) 123-45-67"])
    drive()
    run = only_run()
    assert run.status == "done", run.error
    assert effects.LogSmsProvider.sent == [{"phone": "+79161234567", "text": "Иван, мы получили заявку", "key": run.key}]


def test_observers_of_the_record_are_untouched(admin, people, robot, drive):
    robot("comment", {"text": "x"})
    new_lead(admin, people)
    drive()
    assert not Observer.objects.exists()


def test_sms_to_an_unsubscribed_client_is_skipped_with_the_reason(admin, people, robot, drive):
    from voronka.customfields.actions import define_field
    from voronka.parties.actions import create_contact

    effects.LogSmsProvider.sent.clear()
    define_field(admin, entity_type_id=3, code="uf_unsubscribed", label="Отписан", kind="boolean")
    contact = create_contact(admin, first_name="Анна", phones=["+7 916 111-22-33"], custom={"uf_unsubscribed": True})
    robot("sms", {"text": "{first_name}, скидка"})
    with translation.override("en"):
        new_lead(admin, people, first_name="Анна", phones=["8 916 111 22 33"])  # found by the number
        drive()
    run = only_run()
    assert effects.LogSmsProvider.sent == []
    assert run.status == "skipped" and run.outputs["to"] == ["+79161112233"]  # «skipped», not «done»
    assert run.error == f"Not sent: the client unsubscribed from SMS and mailings (contact #{contact.pk})."
    new_lead(admin, people, first_name="Ира", phones=["8 916 444 55 66"])  # a subscribed client gets it
    drive()
    assert [m["phone"] for m in effects.LogSmsProvider.sent] == ["+79164445566"]


def test_email_to_an_unsubscribed_client_is_not_sent_and_the_log_says_why(admin, people, robot, drive):
    from voronka.customfields.actions import define_field
    from voronka.parties.actions import create_contact

    define_field(admin, entity_type_id=3, code="uf_unsubscribed", label="Отписан", kind="boolean")
    contact = create_contact(admin, first_name="Анна", emails=["anna@example.ru"], custom={"uf_unsubscribed": True})
    robot("email_client", {"subject": "s", "body": "b"})
    new_lead(admin, people, first_name="Анна", emails=["ANNA@example.ru"])  # not linked: found by the address
    drive()
    run = only_run()
    assert mail.outbox == []
    assert run.status == "skipped" and run.outputs["to"] == ["anna@example.ru"]  # «skipped», not «done»
    assert f"contact #{contact.pk}" in run.error  # the run log says why nothing was sent
    assert run.error.startswith("Not sent: the client unsubscribed from e-mails")
    new_lead(admin, people, first_name="Ира", emails=["ira@example.ru"])  # a subscribed client gets the letter
    drive()
    assert [m.to for m in mail.outbox] == [["ira@example.ru"]]
