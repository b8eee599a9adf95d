"""Web forms «in the background»: the door checks and queues, the worker's job processes queued payloads in batches
(the same code as «at once»), one failing payload does not touch the others, and two workers never share one."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from voronka.core import entity_types
from voronka.core.management.commands.worker import drain
from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.deals.actions import create_deal
from voronka.intake import actions, forms
from voronka.intake.models import IntakeLog, WebForm
from voronka.leads.models import Lead
from voronka.parties.actions import create_contact

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "name", "label": "Имя", "maps_to": "first_name", "required": True},
    {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True},
    {"name": "email", "label": "E-mail", "type": "email", "maps_to": "emails"},
]


@pytest.fixture
def form(admin, lead_pipeline, queue):
    return forms.create_form(admin, slug="fon", name="Фон", source="landing-fon", fields=FIELDS, queue=queue.pk,
                             success_message="Спасибо! Перезвоним.")


def _post(data, **extra):
    return Client().post("/f/fon/", data, **extra)


def _queued() -> int:
    return IntakeLog.objects.filter(status="queued").count()


def test_a_new_form_works_in_the_background(form):
    assert form.mode == WebForm.Mode.BACKGROUND


def test_background_submissions_are_queued_then_processed_by_the_worker(admin, form, users, deal_pipelines):
    contact = create_contact(admin, first_name="Олег", last_name="Сидоров", phones=["+79161110000"])
    deal = create_deal(admin, title="Баня", contact=contact.pk)
    before = (Lead.objects.count(), TimelineEntry.objects.count(), OutboxEvent.objects.count())

    fresh = _post({"name": "Иван", "phone": "8 916 123-45-67", "email": "ivan@example.ru"})
    known = _post({"name": "Олег", "phone": "+7 916 111-00-00"}, HTTP_ACCEPT="application/json")
    assert fresh.status_code == 202 and "Спасибо! Перезвоним." in fresh.text
    assert known.status_code == 202 and known.json() == {"ok": True, "message": "Спасибо! Перезвоним.",
                                                         "redirect": None}
    # the request did the cheap part only: nothing but the two log rows
    assert _queued() == 2 and (Lead.objects.count(), TimelineEntry.objects.count(),
                               OutboxEvent.objects.count()) == before
    assert not OutboxEvent.objects.filter(name="webform.submitted").exists()

    drain()  # what `voronka worker` does on its tick (the job «intake», then the outbox sweep)

    assert _queued() == 0
    new, attached = IntakeLog.objects.order_by("id")
    lead = Lead.objects.get()
    assert (new.status, new.entity_id, new.attempts) == ("created", lead.pk, 1) and new.processed_at
    assert lead.first_name == "Иван" and lead.source == "landing-fon" and lead.responsible_id in {u.pk for u in users}
    assert TimelineEntry.objects.filter(entity_type_id=entity_types.LEAD, entity_id=lead.pk, kind="responsible").exists()
    assert TimelineEntry.objects.filter(entity_type_id=entity_types.LEAD, entity_id=lead.pk, kind="comment").exists()
    # the existing contact by its phone: a comment on it, shown on its open deal
    assert (attached.status, attached.entity_type_id, attached.entity_id) == ("attached", entity_types.CONTACT,
                                                                              contact.pk)
    comment = TimelineEntry.objects.get(entity_type_id=entity_types.CONTACT, entity_id=contact.pk, kind="comment")
    assert comment.bindings.filter(entity_type_id=entity_types.DEAL, entity_id=deal.pk).exists()
    # the events robots and triggers wait for
    submitted = OutboxEvent.objects.filter(name="webform.submitted").order_by("id")
    assert [(e.payload["log"], e.payload["status"]) for e in submitted] == [(new.pk, "created"),
                                                                           (attached.pk, "attached")]
    assert submitted[1].payload["deals"] == [deal.pk]
    assert OutboxEvent.objects.filter(name="lead.created", entity_id=lead.pk).exists()
    assert OutboxEvent.objects.filter(name="distribution.assigned", entity_id=lead.pk).exists()


def test_a_duplicate_within_one_batch_is_attached_like_at_once(form):
    """Two posts of one person wait in the queue together: the second meets the lead the first has just made."""
    for _i in range(2):
        assert _post({"name": "Пётр", "phone": "+79162220000"}).status_code == 202
    assert actions.process_queued() == 2
    first, second = IntakeLog.objects.order_by("id")
    assert (first.status, second.status) == ("created", "attached") and second.entity_id == first.entity_id
    assert Lead.objects.count() == 1


def test_a_similar_name_within_one_batch_is_searched_again_under_the_lock(admin, form, settings):
    """The name search of a chunk runs before its transaction: a lead written earlier in the same chunk is not in
    it, so a payload with a similar name is searched anew (and attached as at once)."""
    forms.update_form(admin, form.pk, duplicate_policy="flag")
    _post({"name": "Пётр", "phone": "+79163330001", "email": "a@example.ru"})
    _post({"name": "Пётр", "phone": "+79163330002", "email": "b@example.ru"})
    assert actions.process_queued() == 2
    first, second = IntakeLog.objects.order_by("id")
    assert first.status == "created" and second.status == "created"
    assert f"lead #{first.entity_id}" in second.reason  # flagged as a possible duplicate of the first


def test_a_target_deleted_between_the_search_and_the_lock_is_not_attached_to(admin, form, monkeypatch):
    from voronka.leads.actions import create_lead, delete_lead

    old = create_lead(admin, title="Старая заявка", first_name="Тимур", phones=["+79165550000"])
    drain()  # the name index follows the outbox
    _post({"name": "Тимур", "phone": "+79165550001"})  # the same name, another phone: found by name
    real = actions._presearch

    def then_deleted(entry):
        found = real(entry)
        assert [m.id for m in found.matches] == [old.pk]
        delete_lead(admin, old.pk)  # by someone else, before the chunk's transaction
        return found

    monkeypatch.setattr(actions, "_presearch", then_deleted)
    assert actions.process_queued() == 1
    entry = IntakeLog.objects.get()
    assert entry.status == "created" and entry.entity_id != old.pk


def test_a_bad_submission_is_refused_at_once_and_logged_rejected(form):
    answer = _post({"name": "", "phone": "not a phone"}, HTTP_ACCEPT="application/json")
    assert answer.status_code == 422 and answer.json()["code"] == "validation_failed"
    assert set(answer.json()["fields"]) == {"name", "phone"}
    spam = _post({"name": "Bot", "phone": "+79160000000", "website": "http://spam"})
    assert spam.status_code == 400
    foreign = _post({"name": "Анна", "phone": "+79160000012"}, HTTP_ORIGIN="https://evil.example.com")
    assert foreign.status_code == 403
    assert list(IntakeLog.objects.order_by("id").values_list("status", "meta__code")) == [
        ("rejected", "validation_failed"), ("rejected", "spam"), ("rejected", "origin_not_allowed")]
    assert _queued() == 0 and actions.process_queued() == 0 and not Lead.objects.exists()


def test_a_failing_payload_rolls_back_only_itself(admin, form, monkeypatch):
    for i, name in enumerate(("Анна", "Сбой", "Вера")):
        _post({"name": name, "phone": f"+791644400{i:02d}", "email": f"{i}@example.ru"})
    _post({"name": "Отказ", "phone": "+79164440099"})
    real = actions.create_intake_lead

    def flaky(actor, data, routing, **kwargs):
        lead = real(actor, data, routing, **kwargs)  # it writes, then breaks: the write must go
        if data.get("first_name") == "Сбой":
            raise RuntimeError("the disk is full")
        return lead

    monkeypatch.setattr(actions, "create_intake_lead", flaky)
    # the form changed after «Отказ» was accepted: it is refused when processed, with the reason
    WebForm.objects.filter(pk=form.pk).update(fields=[*FIELDS[:2], {**FIELDS[2], "required": True}])

    assert actions.process_queued() == 4
    anna, broken, vera, refused = IntakeLog.objects.order_by("id")
    assert anna.status == "created" and vera.status == "created"
    assert broken.status == "pending" and "the disk is full" in broken.error and broken.attempts == 1
    assert refused.status == "rejected" and list(refused.errors) == ["email"] and refused.reason
    assert sorted(Lead.objects.values_list("first_name", flat=True)) == ["Анна", "Вера"]
    assert not TimelineEntry.objects.filter(text__contains="Сбой").exists()

    monkeypatch.setattr(actions, "create_intake_lead", real)
    replayed = actions.replay(admin, broken.pk)
    assert replayed.status == "created" and Lead.objects.filter(first_name="Сбой").exists()


def test_claiming_is_exclusive_and_a_dead_worker_loses_nothing(form):
    for i in range(5):
        _post({"name": "Ира", "phone": f"+7916555000{i}"})
    first, token = actions._claim(3)
    second, other = actions._claim(3)
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert actions._claim(3)[0] == []  # everything is claimed
    # the first worker dies here: nothing was processed, its payloads are still queued
    assert _queued() == 5
    # a worker whose claim is not (or no longer) its own does not process those payloads
    mine = list(IntakeLog.objects.filter(pk__in=first).order_by("id"))
    assert actions._process_chunk(mine, other) == 0 and _queued() == 5
    # the second worker finishes its own
    assert actions._process_chunk(list(IntakeLog.objects.filter(pk__in=second).order_by("id")), other) == 2
    assert _queued() == 3
    # when the dead worker's lease has passed, its payloads are claimed again, oldest first
    IntakeLog.objects.filter(pk__in=first).update(claimed_until=timezone.now() - datetime.timedelta(seconds=1))
    assert actions.process_queued() == 3 and _queued() == 0 and Lead.objects.count() == 1  # one person


def test_a_crash_mid_batch_leaves_the_batch_queued(form, monkeypatch):
    class Killed(BaseException):
        """What a killed process looks like to the transaction: it never commits."""

    for i in range(3):
        _post({"name": "Лев", "phone": f"+7916666000{i}"})
    real = actions._run
    calls = []

    def dying(entry, **kwargs):
        calls.append(entry.pk)
        if len(calls) == 2:
            raise Killed
        return real(entry, **kwargs)

    monkeypatch.setattr(actions, "_run", dying)
    with pytest.raises(Killed):
        actions.process_queued()
    assert _queued() == 3 and not Lead.objects.exists()
    monkeypatch.setattr(actions, "_run", real)
    assert actions.process_queued() == 0  # claimed by the dead worker until its lease ends
    IntakeLog.objects.update(claimed_until=timezone.now() - datetime.timedelta(seconds=1))
    assert actions.process_queued() == 3 and Lead.objects.count() == 1  # one person: created, then attached twice


def test_replay_processes_a_queued_payload_and_the_worker_skips_it(admin, form):
    _post({"name": "Юля", "phone": "+79167770000"})
    entry = IntakeLog.objects.get()
    ids, token = actions._claim(10)
    assert actions.replay(admin, entry.pk).status == "created"
    # the worker that had claimed it finds it processed and leaves it alone
    assert actions._process_chunk(list(IntakeLog.objects.filter(pk__in=ids)), token) == 0
    assert Lead.objects.count() == 1


def test_the_intake_command_drains_the_queue(form):
    from io import StringIO

    from django.core.management import call_command

    for i in range(3):
        _post({"name": "Зоя", "phone": f"+7916888000{i}"})
    out = StringIO()
    call_command("intake", "process", "--batch", "2", stdout=out)
    assert out.getvalue().strip() == "processed 3 queued payload(s); 0 still queued"
    assert _queued() == 0


def test_the_intake_log_shows_the_queue_and_replays_a_queued_payload(admin_user, form):
    _post({"name": "Ника", "phone": "+79169990000"})
    entry = IntakeLog.objects.get()
    IntakeLog.objects.update(received_at=timezone.now() - datetime.timedelta(minutes=3))
    client = Client()
    client.cookies["django_language"] = "en"
    client.force_login(admin_user)
    page = client.get("/settings/intake/log/")
    assert page.status_code == 200
    assert "1 web-form submission is queued for the worker, the oldest for 3\xa0minutes." in page.text
    assert "waiting 3\xa0minutes" in page.text and f"/settings/intake/log/{entry.pk}/replay/" in page.text
    assert client.post(f"/settings/intake/log/{entry.pk}/replay/").status_code == 302
    assert IntakeLog.objects.get().status == "created"
    assert "queued for the worker" not in client.get("/settings/intake/log/").text


def test_a_form_switched_off_after_accepting_still_processes_what_it_accepted(admin, form):
    _post({"name": "Ася", "phone": "+79161010101"})
    forms.update_form(admin, form.pk, is_active=False)
    assert actions.process_queued() == 1 and IntakeLog.objects.get().status == "created"
    assert _post({"name": "Ася", "phone": "+79161010102"}).status_code == 404


def test_the_mode_over_the_api_and_the_settings_screen(admin, admin_token, form):
    from voronka.api.tests.conftest import bearer

    api = bearer(admin_token)
    changed = api.patch(f"/intake/forms/{form.pk}", {"mode": "now"})
    assert changed.status_code == 200 and changed.json()["mode"] == "now"
    assert api.patch(f"/intake/forms/{form.pk}", {"mode": "later"}).status_code == 422
    assert _post({"name": "Ян", "phone": "+79161212121"}).status_code == 200
    assert IntakeLog.objects.get().status == "created" and Lead.objects.count() == 1


def test_a_crash_of_the_door_checks_still_keeps_the_payload(form, monkeypatch):
    def broken(entry):
        raise RuntimeError("a bug in the checks")

    monkeypatch.setitem(actions.CHECKS, "form", broken)
    assert _post({"name": "Фома", "phone": "+79161313131"}).status_code == 202
    assert _queued() == 1
    monkeypatch.undo()
    assert actions.process_queued() == 1 and IntakeLog.objects.get().status == "created"


def test_a_chunk_reads_the_settings_versions_once(form):
    """The versions of the settings are read once per chunk (its checks and its transaction), as once per request
    at the door, not by every payload's routing and writes."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for i, name in enumerate(("Анна", "Борис", "Вера", "Глеб", "Дина")):
        _post({"name": name, "phone": f"+7916444000{i}"})
    with CaptureQueriesContext(connection) as ctx:
        assert actions.process_queued() == 5
    reads = [q for q in ctx.captured_queries if "core_configversion" in q["sql"] and q["sql"].startswith("SELECT")]
    assert len(reads) == 1
    assert set(IntakeLog.objects.values_list("status", flat=True)) == {"created"}
