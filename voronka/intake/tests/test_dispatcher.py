"""The source dispatcher (seed 004): robots on lead creation with a condition on the source, configured as
data: «registration → mark converted, create the contact, start the welcome sequence» and «unsubscribe →
mark the contact». The registrations arrive through the intake API like a site's handler sends them."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail as outbox_mail
from django.utils import translation

from voronka.api.tests.conftest import bearer
from voronka.automation.actions import create_robot
from voronka.core import entity_types
from voronka.core.errors import ValidationFailed
from voronka.core.management.commands.worker import drain
from voronka.core.models import TimelineEntry
from voronka.customfields.actions import define_field
from voronka.deals.models import Deal
from voronka.intake import actions
from voronka.intake.models import IntakeSource
from voronka.leads.models import Lead
from voronka.parties.actions import create_contact
from voronka.parties.models import Contact
from voronka.pipelines.actions import create_pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def dispatcher(admin, lead_pipeline):
    new = lead_pipeline.stages.get(code="new").pk
    welcome = create_pipeline(admin, entity_type_id=entity_types.DEAL, name="Welcome letters", code="welcome",
                              stages=[{"name": "Letters", "code": "letters"},
                                      {"name": "Done", "code": "done", "semantics": "success"}])
    create_robot(admin, stage=welcome.stages.get(code="letters").pk, name="Welcome letter", action="email_client",
                 params={"subject": "Welcome, {title}", "body": "Here is how to start."})
    define_field(admin, entity_type_id=entity_types.CONTACT, code="uf_unsubscribed", label="Unsubscribed",
                 kind="boolean")
    create_robot(admin, stage=new, name="Registration", trigger="on_create", action="convert_lead",
                 conditions={"all": [{"field": "source", "op": "equals", "value": "registration"}]},
                 params={"contact": True, "deal_pipeline": "welcome"})
    create_robot(admin, stage=new, name="Unsubscribe", trigger="on_create", action="mark_contact",
                 conditions={"all": [{"field": "source", "op": "equals", "value": "unsubscribe"}]},
                 params={"fields": {"custom.uf_unsubscribed": True}, "comment": "Unsubscribed from the mailings."})
    return welcome


def test_a_registration_is_converted_and_starts_the_welcome_sequence(admin_token, dispatcher):
    api = bearer(admin_token)
    answer = api.post("/intake/leads", {"source": "registration", "first_name": "Ян", "last_name": "Зорин",
                                        "emails": ["yan@zorin.example.ru"], "title": "Demo access"})
    assert answer.status_code == 201, answer.json()
    drain()
    lead = Lead.objects.get()
    assert lead.converted_at is not None and lead.stage.semantics == "success"
    contact = Contact.objects.get()
    assert (contact.first_name, contact.last_name, lead.contact_id) == ("Ян", "Зорин", contact.pk)
    deal = Deal.objects.get()
    assert deal.pipeline == dispatcher and deal.contact_id == contact.pk
    assert [m.to for m in outbox_mail.outbox] == [["yan@zorin.example.ru"]]
    assert outbox_mail.outbox[0].subject == "Welcome, Demo access"
    # the client answers the welcome letter: the reply threads onto the deal, no new lead
    from voronka.intake import mail
    from voronka.intake.models import Mailbox

    box = Mailbox.objects.create(name="Ответы", kind="smtp", recipients=["zayavki@crm.example.ru"])
    reply = (f"From: Ян <yan@other-address.example.ru>\r\nTo: zayavki@crm.example.ru\r\nSubject: Re: Welcome\r\n"
             f"Message-ID: <reply-1@client>\r\nIn-Reply-To: {outbox_mail.outbox[0].extra_headers['Message-ID']}\r\n"
             f"\r\nСпасибо, а где найти отчёты?\r\n").encode()
    answered = mail.store_and_process(box, reply)
    assert (answered.status, answered.entity_type_id, answered.entity_id) == ("attached", entity_types.DEAL, deal.pk)
    assert Lead.objects.count() == 1
    # a lead from another source is left to the people
    api.post("/intake/leads", {"source": "site", "first_name": "Ира", "phones": ["+79160000001"]})
    drain()
    other = Lead.objects.get(source="site")
    assert other.converted_at is None and Contact.objects.count() == 1


def test_a_registration_of_a_known_contact_links_it_instead_of_a_copy(admin, admin_token, dispatcher):
    known = create_contact(admin, first_name="Ян", emails=["yan@zorin.example.ru"])
    # «create»: a new lead even though the e-mail is known (the default would attach it to the contact)
    IntakeSource.objects.create(code="registration", duplicate_policy="create")
    bearer(admin_token).post("/intake/leads", {"source": "registration", "first_name": "Ян",
                                               "emails": ["yan@zorin.example.ru"]})
    drain()
    lead = Lead.objects.get()
    assert lead.converted_at and lead.contact_id == known.pk and Contact.objects.count() == 1


def test_an_unsubscribe_marks_the_contact(admin, admin_token, dispatcher, settings):
    settings.LANGUAGE_CODE = "en"  # timeline texts are asserted in English
    contact = create_contact(admin, first_name="Мария", emails=["maria@example.ru"])
    IntakeSource.objects.create(code="unsubscribe", duplicate_policy="create")
    bearer(admin_token).post("/intake/leads", {"source": "unsubscribe", "emails": ["Maria@Example.ru"],
                                               "title": "Unsubscribe"})
    drain()
    contact.refresh_from_db()
    assert contact.custom["uf_unsubscribed"] is True
    note = TimelineEntry.objects.get(entity_type_id=entity_types.CONTACT, entity_id=contact.pk, kind="automation",
                                     text="Unsubscribed from the mailings.")
    lead = Lead.objects.get()
    assert lead.contact_id == contact.pk and note.data["lead"] == lead.pk
    # nobody with that address: the lead says so, nothing else changes
    bearer(admin_token).post("/intake/leads", {"source": "unsubscribe", "emails": ["ghost@example.ru"]})
    drain()
    ghost = Lead.objects.exclude(pk=lead.pk).get()
    assert TimelineEntry.objects.filter(entity_type_id=entity_types.LEAD, entity_id=ghost.pk,
                                        text__startswith="No contact").exists()


def test_the_new_actions_check_their_parameters(admin, lead_pipeline):
    new = lead_pipeline.stages.get(code="new").pk
    with pytest.raises(ValidationFailed):
        create_robot(admin, stage=new, action="convert_lead", params={"contact": "yes"})
    with pytest.raises(ValidationFailed):
        create_robot(admin, stage=new, action="mark_contact", params={"fields": {}})
    with pytest.raises(ValidationFailed):
        create_robot(admin, stage=new, action="mark_contact", params={"fields": {"x": 1}, "extra": 2})


def test_the_demo_ships_both_dispatcher_examples(tmp_path, settings):
    from django.core.management import call_command

    from voronka.intake.actions import submit

    settings.VAR_DIR = tmp_path
    call_command("demo", leads=20, deals=10, no_progress=True, stdout=open("/dev/null", "w"))
    drain()
    sent = len(outbox_mail.outbox)
    registered = submit("api", {"source": "registration", "first_name": "Вера", "emails": ["vera@demo-client.ru"]},
                        source="registration")
    drain()
    lead = Lead.objects.get(pk=registered.entity_id)
    assert lead.converted_at and lead.contact.first_name == "Вера"
    assert Deal.objects.get(contact=lead.contact).pipeline.code == "welcome"
    assert [m.to for m in outbox_mail.outbox[sent:]] == [["vera@demo-client.ru"]]
    unsubscribed = submit("api", {"source": "unsubscribe", "emails": ["vera@demo-client.ru"]}, source="unsubscribe")
    drain()
    contact = Contact.objects.get(pk=lead.contact_id)
    assert contact.custom["uf_unsubscribed"] is True
    closed = Lead.objects.get(pk=unsubscribed.entity_id)
    assert closed.stage.code == "not_target" and closed.contact_id == contact.pk
    # the welcome sequence stopped: its deal left the letters stage, the later letters are skipped
    welcome = Deal.objects.get(contact=contact, pipeline__code="welcome")
    assert welcome.stage.code == "unsubscribed"
    from voronka.core import clock

    clock.freeze(clock.now() + datetime.timedelta(days=8))
    try:
        drain()
    finally:
        clock.freeze(None)
    assert [m.to for m in outbox_mail.outbox[sent:]] == [["vera@demo-client.ru"]]


def test_the_demo_has_a_queue_and_a_published_form_that_feeds_it(admin, lead_pipeline):
    """The demo's call-centre queue (its operators) and the site's form (``intake.demo.install_form``)."""
    from django.test import Client

    from voronka.core import entity_types
    from voronka.distribution.models import Queue
    from voronka.identity.models import User
    from voronka.intake import demo
    from voronka.intake.models import WebForm
    from voronka.leads.models import Lead

    operators = [User.objects.create_user(f"operator{i}", f"op{i}@example.ru", "x-pass-123") for i in range(1, 5)]
    demo.install_form(admin, {(entity_types.LEAD, "leads"): lead_pipeline})
    queue = Queue.objects.get(code="call-centre")
    assert sorted(queue.members.values_list("user__username", flat=True)) == [u.username for u in operators]
    form = WebForm.objects.get(slug="zapchasti")
    assert form.is_active and form.queue_id == queue.pk and form.source == "site"
    answer = Client().post("/f/zapchasti/", {"name": "Олег", "phone": "+7 916 000-11-22", "consent": "1",
                                             "question": "Колодки на КАМАЗ"}, HTTP_ACCEPT="application/json")
    # the demo's form works in the background: accepted at once, the lead comes with the worker's tick
    assert answer.status_code == 202, answer.content
    assert form.mode == WebForm.Mode.BACKGROUND and not Lead.objects.exists()
    assert actions.process_queued() == 1
    assert Lead.objects.get().responsible_id in {u.pk for u in operators}
