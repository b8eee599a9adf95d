"""The intake log: stored before processing, outcome recorded, rejected with a reason, crash → pending → replay."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.management import call_command

from voronka.core import entity_types
from voronka.core.errors import Conflict
from voronka.intake import actions
from voronka.intake.models import IntakeLog
from voronka.leads.models import Lead

pytestmark = pytest.mark.django_db


def test_registration_creates_a_lead_and_logs_the_outcome(lead_pipeline):
    entry = actions.submit("api", {"first_name": "Иван", "last_name": "Петров", "phones": ["8 916 123-45-67"],
                                   "source": "site-registration"}, source="site-registration", remote_addr="10.0.0.1")
    assert entry.status == "created" and entry.remote_addr == "10.0.0.1" and entry.attempts == 1
    lead = Lead.objects.get(pk=entry.entity_id)
    assert entry.entity_type_id == entity_types.LEAD and lead.source == "site-registration"
    assert lead.title == "Петров Иван" and lead.created_by_id is None
    assert entry.produced == [[1, lead.pk, "created"]]
    from voronka.core.models import TimelineEntry

    created = TimelineEntry.objects.get(entity_type_id=1, entity_id=lead.pk, kind="created")
    assert created.cause == f"intake:api:{entry.pk}" and created.entry_point == "intake"


def test_bad_payload_is_kept_as_rejected_with_the_reason(lead_pipeline):
    entry = actions.submit("api", {"nickname": "x"})
    assert entry.status == "rejected" and list(entry.errors) == ["nickname"] and entry.reason
    assert IntakeLog.objects.filter(pk=entry.pk, status="rejected").exists()
    assert not Lead.objects.exists()


def test_a_crash_leaves_the_payload_pending_and_replayable(lead_pipeline, admin):
    with mock.patch.dict(actions.HANDLERS, {"api": mock.Mock(side_effect=RuntimeError("boom"))}):
        entry = actions.submit("api", {"first_name": "Ольга", "phones": ["+79160000001"]})
    assert entry.status == "pending" and "boom" in entry.error
    assert not Lead.objects.exists()  # nothing half written
    entry = actions.replay(admin, entry.pk)
    assert entry.status == "created" and Lead.objects.count() == 1 and entry.attempts == 2
    with pytest.raises(Conflict):
        actions.replay(admin, entry.pk)
    again = actions.replay(admin, entry.pk, force=True)
    assert again.status == "attached"  # duplicate control: the same person is not created twice
    assert Lead.objects.count() == 1


def test_replay_from_the_command_line(lead_pipeline, capsys):
    with mock.patch.dict(actions.HANDLERS, {"api": mock.Mock(side_effect=RuntimeError("boom"))}):
        entry = actions.submit("api", {"first_name": "Ольга", "phones": ["+79160000002"]})
    call_command("intake", "pending")
    assert f"#{entry.pk} api" in capsys.readouterr().out
    call_command("intake", "replay", str(entry.pk))
    assert f"#{entry.pk}: created" in capsys.readouterr().out


def test_an_external_id_seen_before_is_not_processed_twice(lead_pipeline):
    first, new = actions.receive("call", {"event": "missed"}, external_id="missed:abc")
    second, again = actions.receive("call", {"event": "missed"}, external_id="missed:abc")
    assert new and not again and first.pk == second.pk


def test_replay_as_an_admin_action(lead_pipeline, admin_user):
    from django.test import Client

    with mock.patch.dict(actions.HANDLERS, {"api": mock.Mock(side_effect=RuntimeError("boom"))}):
        entry = actions.submit("api", {"first_name": "Ольга", "phones": ["+79160000003"]})
    client = Client()
    client.force_login(admin_user)
    answer = client.post("/admin/intake/intakelog/", {"action": "replay", "_selected_action": [entry.pk]}, follow=True)
    assert answer.status_code == 200
    entry.refresh_from_db()
    assert entry.status == "created"
    assert client.get("/admin/intake/intakelog/").status_code == 200


FORM_FIELDS = [
    {"name": "name", "label": "Имя", "maps_to": "first_name", "required": True},
    {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True},
]


def _crash_at_the_end(real):
    """``outbox.emit_rows`` that fails on the last write of a form submission (its events, «webform.submitted» the
    last of them): the lead, its distribution and its timeline are written by then."""
    def emit_rows(rows):
        if any(row["name"] == "webform.submitted" for row in rows):
            raise RuntimeError("the disk is full")
        return real(rows)
    return emit_rows


@pytest.mark.django_db(transaction=True)
def test_a_form_submission_that_crashes_late_writes_nothing_but_the_pending_payload(admin, lead_pipeline, queue):
    """One transaction per submission: the crash rolls back the lead, the distribution, the timeline and the events,
    and the payload is logged pending (committed, replayable) with the traceback; the visitor is told it is stored."""
    from django.test import Client

    from voronka.core import outbox
    from voronka.core.models import OutboxEvent, TimelineEntry
    from voronka.distribution.models import QueueMember
    from voronka.intake import forms

    forms.create_form(admin, slug="late", name="Поздно", source="late", fields=FORM_FIELDS, queue=queue.pk,
                      mode="now")
    events, entries = OutboxEvent.objects.count(), TimelineEntry.objects.count()
    picks = sorted(QueueMember.objects.values_list("pk", "assigned_count"))
    with mock.patch.object(outbox, "emit_rows", _crash_at_the_end(outbox.emit_rows)):
        answer = Client().post("/f/late/", "name=%D0%9E%D0%BB%D1%8F&phone=%2B79160000009",
                               content_type="application/x-www-form-urlencoded", HTTP_ACCEPT="application/json")
    assert answer.status_code == 202 and answer.json()["ok"]
    entry = IntakeLog.objects.get()
    assert (entry.status, entry.attempts, entry.entity_id) == ("pending", 1, None) and "the disk is full" in entry.error
    assert entry.payload == {"name": "Оля", "phone": "+79160000009"} and entry.channel == "form"
    assert not Lead.objects.exists()  # nothing half written
    assert (OutboxEvent.objects.count(), TimelineEntry.objects.count()) == (events, entries)
    assert sorted(QueueMember.objects.values_list("pk", "assigned_count")) == picks  # the pick was rolled back
    replayed = actions.replay(admin, entry.pk)
    assert replayed.status == "created" and replayed.attempts == 2 and Lead.objects.count() == 1
    assert Lead.objects.get().responsible_id is not None


@pytest.mark.django_db(transaction=True)
def test_a_refused_form_submission_is_logged_once_with_its_reason(admin, lead_pipeline):
    from django.test import Client

    from voronka.intake import forms

    forms.create_form(admin, slug="strict", name="Строго", source="strict", fields=FORM_FIELDS, mode="now")
    answer = Client().post("/f/strict/", {"name": "Оля"}, HTTP_ACCEPT="application/json")  # multipart, no phone
    assert answer.status_code == 422 and "phone" in answer.json()["fields"]
    entry = IntakeLog.objects.get()
    assert (entry.status, entry.attempts, entry.meta["code"]) == ("rejected", 1, "validation_failed")
    assert entry.payload == {"name": "Оля"} and entry.processed_at is not None and not Lead.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_payload_processed_at_once_is_inserted_once_with_its_outcome_under_a_fresh_id(admin, lead_pipeline):
    """The log row of a payload processed at once is written by one INSERT at the end of its transaction, with its
    outcome, under the id the table gives next (reserved first: it is in the cause of everything the handler
    writes), never the id of a deleted row."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from voronka.core.models import TimelineEntry
    from voronka.parties.actions import create_contact

    contact = create_contact(admin, first_name="Оля", phones=["+79160000021"])
    gone = actions.submit("api", {"first_name": "Никто", "phones": ["+79160000022"]})
    IntakeLog.objects.filter(pk=gone.pk).delete()  # the newest row deleted: its id is not given again
    with CaptureQueriesContext(connection) as ctx:
        entry = actions.submit("api", {"first_name": "Оля", "phones": ["8 916 000-00-21"]})
    assert entry.pk > gone.pk
    assert (entry.status, entry.entity_type_id, entry.entity_id, entry.attempts) == \
        ("attached", entity_types.CONTACT, contact.pk, 1)
    stored = IntakeLog.objects.get(pk=entry.pk)
    assert (stored.status, stored.entity_id, stored.produced, stored.payload["first_name"], stored.attempts) == \
        ("attached", contact.pk, [[entity_types.CONTACT, contact.pk, "comment"]], "Оля", 1)
    assert stored.received_at <= stored.processed_at
    comment = TimelineEntry.objects.get(entity_type_id=entity_types.CONTACT, entity_id=contact.pk, kind="comment")
    assert comment.cause == f"intake:api:{entry.pk}"
    writes = [q["sql"].lstrip().upper() for q in ctx.captured_queries if "intake_intakelog" in q["sql"]
              and q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE"))]
    assert len(writes) == 1 and writes[0].startswith("INSERT")
    later = actions.submit("api", {"first_name": "Пётр", "phones": ["+79160000023"]})
    assert later.pk == entry.pk + 1 or connection.vendor == "postgresql"
