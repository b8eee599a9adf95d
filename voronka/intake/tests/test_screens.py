"""Intake screens: the at-work/away switch, take and hand-off through the distribution actions, the intake log
with filters and replay, intake mailboxes, the duplicates list and the merge screen; and who may see them."""

from __future__ import annotations

import pytest
from django.test import Client

from voronka.core import entity_types
from voronka.core.models import TimelineEntry
from voronka.distribution.models import FreeItem
from voronka.identity.models import User
from voronka.intake import actions as intake
from voronka.intake import secretbox
from voronka.intake.models import DuplicateMark, IntakeLog, Mailbox
from voronka.leads.actions import create_lead
from voronka.leads.models import Lead
from voronka.parties.actions import create_contact
from voronka.parties.models import Contact

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.cookies["django_language"] = "en"
    client.force_login(user)
    return client


@pytest.fixture
def sellers(users):
    """The queue's members as sales managers (who see the leads of their department and free ones)."""
    from voronka.identity.models import Department, Role, RoleAssignment
    from voronka.identity.permissions import rights_changed

    dept = Department.objects.create(name="Продажи")
    for user in users[:3]:
        user.department = dept
        user.save(update_fields=["department"])
        RoleAssignment.objects.create(role=Role.objects.get(code="sales_manager"), user=user)
    rights_changed()
    return users


def test_presence_switch_and_taking_a_free_lead(queue, sellers, lead_pipeline):
    users = sellers
    User.objects.filter(pk__in=[u.pk for u in users]).update(is_present=False)
    entry = intake.submit("api", {"first_name": "Ян", "phones": ["+79160000011"]}, source="site")
    assert entry.status == "created"
    from voronka.intake.models import IntakeSource

    IntakeSource.objects.create(code="line", queue=queue)
    free = intake.submit("api", {"first_name": "Ира", "phones": ["+79160000012"]}, source="line")
    lead = Lead.objects.get(pk=free.entity_id)
    assert lead.responsible_id is None and FreeItem.objects.filter(entity_id=lead.pk).exists()
    seller = login(users[0])
    home = seller.get("/")
    assert "Away" in home.text and 'action="/presence/"' in home.text
    # a member of the queue sees it among the free requests (not yet on a card: it is nobody's) and takes it
    assert seller.get(f"/crm/leads/{lead.pk}/").status_code == 404
    free_page = seller.get("/free/")
    assert free_page.status_code == 200 and f'action="/crm/leads/{lead.pk}/take/"' in free_page.text
    assert seller.post(f"/crm/leads/{lead.pk}/take/").status_code == 302
    assert "Take this lead" not in seller.get(f"/crm/leads/{lead.pk}/").text
    lead.refresh_from_db()
    assert lead.responsible_id == users[0].pk and not FreeItem.objects.filter(entity_id=lead.pk).exists()
    assert TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk, kind="responsible",
                                        data__event="taken").exists()
    # coming to work picks up the next free item
    third = intake.submit("api", {"first_name": "Оля", "phones": ["+79160000013"]}, source="line")
    seller2 = login(users[1])
    assert seller2.post("/presence/", {"present": "1", "next": "/crm/leads/"})["Location"] == "/crm/leads/"
    assert User.objects.get(pk=users[1].pk).is_present
    assert Lead.objects.get(pk=third.entity_id).responsible_id == users[1].pk
    assert "At work" in seller2.get("/").text
    # not a member of any queue: no switch
    outsider = User.objects.create_user("outsider", "o@example.ru", "x")
    assert 'action="/presence/"' not in login(outsider).get("/").text


def test_hand_off_goes_through_distribution_and_needs_rights(admin_user, users, lead_pipeline, admin):
    lead = create_lead(admin, title="Баня", responsible=admin_user.pk)
    client = login(admin_user)
    answer = client.post(f"/crm/leads/{lead.pk}/hand-off/", {"responsible": users[2].pk, "note": "Клиент ждёт звонка"})
    assert answer.status_code == 302
    lead.refresh_from_db()
    assert lead.responsible_id == users[2].pk
    line = TimelineEntry.objects.get(entity_type_id=1, entity_id=lead.pk, kind="responsible", data__event="hand_off")
    assert "Клиент ждёт звонка" in line.text
    # a user without rights on it gets «not found» and changes nothing
    stranger = login(users[3])
    assert stranger.post(f"/crm/leads/{lead.pk}/hand-off/", {"responsible": users[3].pk}).status_code == 404
    assert stranger.post(f"/crm/leads/{lead.pk}/take/").status_code == 404
    lead.refresh_from_db()
    assert lead.responsible_id == users[2].pk
    assert client.post(f"/crm/leads/{lead.pk}/hand-off/", {"responsible": "99999"}).status_code == 302
    lead.refresh_from_db()
    assert lead.responsible_id == users[2].pk


def test_intake_log_screen_filters_and_replays(admin_user, manager_user, lead_pipeline):
    bad = intake.submit("api", {"nonsense": 1}, source="site")
    good = intake.submit("api", {"first_name": "Вера", "emails": ["vera@example.ru"]}, source="site")
    assert bad.status == "rejected" and good.status == "created"
    client = login(admin_user)
    page = client.get("/settings/intake/log/?status=rejected")
    assert page.status_code == 200 and f'href="/settings/intake/log/{bad.pk}/"' in page.text
    assert f'href="/settings/intake/log/{good.pk}/"' not in page.text
    entry = client.get(f"/settings/intake/log/{bad.pk}/")
    assert entry.status_code == 200 and "nonsense" in entry.text
    assert client.get("/settings/intake/log/99999/").status_code == 404
    IntakeLog.objects.filter(pk=bad.pk).update(payload={"first_name": "Исправлено", "phones": ["+79160000099"]})
    assert client.post(f"/settings/intake/log/{bad.pk}/replay/").status_code == 302
    assert IntakeLog.objects.get(pk=bad.pk).status == "created"
    assert client.post(f"/settings/intake/log/{good.pk}/replay/").status_code == 302  # conflict: a message, no 500
    manager = login(manager_user)
    assert manager.get("/settings/intake/log/").status_code == 403
    assert manager.post(f"/settings/intake/log/{bad.pk}/replay/").status_code == 403
    assert "Intake log" not in manager.get("/").text


def test_mailbox_screens(admin_user, manager_user):
    client = login(admin_user)
    assert client.get("/settings/intake/mailboxes/new/?kind=imap").status_code == 200
    wrong = client.post("/settings/intake/mailboxes/new/", {"name": "Почта", "kind": "imap", "imap_port": "99999",
                                                            "imap_folder": "INBOX"})
    assert wrong.status_code == 422 and not Mailbox.objects.exists()
    made = client.post("/settings/intake/mailboxes/new/", {
        "name": "Почта", "kind": "imap", "source": "mail", "imap_host": "imap.example.ru", "imap_port": "993",
        "imap_tls": "on", "imap_login": "zayavki", "imap_password": "secret", "imap_folder": "INBOX",
        "poll_seconds": "120", "is_active": "on"})
    assert made.status_code == 302
    box = Mailbox.objects.get()
    assert (secretbox.reveal(box.imap_password), box.poll_seconds, box.imap_tls) == ("secret", 120, True)
    assert "secret" not in box.imap_password  # stored encrypted
    page = client.get(f"/settings/intake/mailboxes/{box.pk}/")
    assert page.status_code == 200 and "secret" not in page.text
    assert "zayavki@imap.example.ru" in client.get("/settings/intake/mailboxes/").text
    manager = login(manager_user)
    assert manager.get("/settings/intake/mailboxes/").status_code == 403
    assert manager.post(f"/settings/intake/mailboxes/{box.pk}/", {"name": "X"}).status_code == 403


def test_merge_screen_from_the_card_and_the_duplicates_list(admin, admin_user, users, lead_pipeline):
    a = create_contact(admin, first_name="Мария", last_name="Ершова", phones=["+79161112233"], position="Директор")
    b = create_contact(admin, first_name="Мария", last_name="Ершова", middle_name="Ивановна", phones=["8 916 111-22-33"],
                       emails=["m@cafe.ru"])
    client = login(admin_user)
    found = client.get(f"/crm/contacts/{a.pk}/duplicates/")
    assert found.status_code == 200 and f'value="{b.pk}"' in found.text
    screen = client.get(f"/crm/contacts/merge/?ids={a.pk},{b.pk}")
    assert screen.status_code == 200 and 'name="v:middle_name"' in screen.text and 'name="v:first_name"' not in screen.text
    done = client.post("/crm/contacts/merge/", {"ids": f"{a.pk},{b.pk}", "keep": str(a.pk), "v:middle_name": str(b.pk),
                                                "v:position": str(a.pk)})
    assert done.status_code == 302 and done["Location"] == f"/crm/contacts/{a.pk}/"
    a.refresh_from_db()
    assert a.middle_name == "Ивановна" and a.position == "Директор"
    assert Contact.objects.get(pk=b.pk).deleted_at is not None
    # someone who may not read them: «not found»
    assert login(users[0]).get(f"/crm/contacts/merge/?ids={a.pk},{b.pk}").status_code == 404
    assert login(users[0]).get(f"/crm/contacts/{a.pk}/duplicates/").status_code == 404
    # the duplicates list shows flagged leads with a link to the merge screen
    first = create_lead(admin, title="Первый", phones=["+79165550000"])
    from voronka.intake.models import IntakeSource

    IntakeSource.objects.create(code="flagging", duplicate_policy="flag")
    second = intake.submit("api", {"title": "Второй", "phones": ["+7 916 555-00-00"]}, source="flagging")
    assert DuplicateMark.objects.filter(entity_id=second.entity_id).exists()
    listing = client.get("/crm/leads/duplicates/")
    assert listing.status_code == 200 and f"/crm/leads/merge/?ids={second.entity_id},{first.pk}" in listing.text
    assert entity_types.LEAD == 1


def test_web_form_builder(admin_user, manager_user, lead_pipeline, queue):
    client = login(admin_user)
    assert client.get("/settings/intake/forms/new/").status_code == 200
    post = {"name": "Бани", "slug": "bani", "source": "landing-bani", "pipeline": str(lead_pipeline.pk),
            "queue": str(queue.pk), "duplicate_policy": "flag", "consent_text": "Согласен", "is_active": "on",
            "allowed_origins": "https://bani.example.ru/\nhttps://sauna.example.ru", "rows": "4",
            "f0-name": "name", "f0-label": "Имя", "f0-type": "text", "f0-maps_to": "first_name", "f0-required": "on",
            "f1-name": "phone", "f1-label": "Телефон", "f1-type": "tel", "f1-maps_to": "phones", "f1-required": "on",
            "f2-name": "size", "f2-label": "Размер", "f2-type": "select", "f2-maps_to": "inquiry",
            "f2-options": "4 м, 6 м", "f3-name": ""}
    made = client.post("/settings/intake/forms/new/", post)
    assert made.status_code == 302, made.content[:500]
    from voronka.intake.models import WebForm

    form = WebForm.objects.get()
    assert [f["name"] for f in form.fields] == ["name", "phone", "size"] and form.fields[2]["options"] == ["4 м", "6 м"]
    assert form.allowed_origins == ["https://bani.example.ru", "https://sauna.example.ru"]
    assert (form.queue_id, form.duplicate_policy, form.source) == (queue.pk, "flag", "landing-bani")
    page = client.get(f"/settings/intake/forms/{form.pk}/")
    assert page.status_code == 200 and "http://testserver/f/bani/embed.js" in page.text and "?embed=1" in page.text
    # a field that goes nowhere: the form says so and nothing changes
    bad = client.post(f"/settings/intake/forms/{form.pk}/", {**post, "f0-maps_to": "nowhere"})
    assert bad.status_code == 422
    form.refresh_from_db()
    assert form.fields[0]["maps_to"] == "first_name"
    # removing a field
    assert client.post(f"/settings/intake/forms/{form.pk}/", {**post, "f2-delete": "on"}).status_code == 302
    form.refresh_from_db()
    assert [f["name"] for f in form.fields] == ["name", "phone"]
    manager = login(manager_user)
    assert manager.get("/settings/intake/forms/").status_code == 403
    assert manager.post(f"/settings/intake/forms/{form.pk}/", post).status_code == 403


def test_queue_screens(admin_user, manager_user, users):
    from voronka.distribution.models import Queue

    client = login(admin_user)
    made = client.post("/settings/intake/queues/new/", {
        "name": "Колл-центр", "code": "cc", "mode": "weighted", "cap": "20", "is_active": "on",
        f"m{users[0].pk}": "on", f"w{users[0].pk}": "3", f"m{users[1].pk}": "on", f"c{users[1].pk}": "5"})
    assert made.status_code == 302
    queue = Queue.objects.get()
    members = {m.user_id: m for m in queue.members.all()}
    assert (queue.mode, queue.cap) == ("weighted", 20) and set(members) == {users[0].pk, users[1].pk}
    assert members[users[0].pk].weight == 3 and members[users[1].pk].cap == 5
    changed = client.post(f"/settings/intake/queues/{queue.pk}/", {"name": "Колл-центр", "mode": "least_loaded",
                                                                    "is_active": "on", f"m{users[2].pk}": "on"})
    assert changed.status_code == 302
    queue.refresh_from_db()
    assert queue.mode == "least_loaded" and queue.cap is None
    assert list(queue.members.values_list("user_id", flat=True)) == [users[2].pk]
    assert client.post(f"/settings/intake/queues/{queue.pk}/", {"name": "X", "mode": "chaos"}).status_code == 422
    assert "Колл-центр" in client.get("/settings/intake/queues/").text
    assert login(manager_user).get("/settings/intake/queues/").status_code == 403


def test_sources_and_bots_screens(admin_user, manager_user, queue, lead_pipeline):
    from voronka.intake.models import IntakeSource, TelegramBot

    client = login(admin_user)
    made = client.post("/settings/intake/sources/new/", {"code": "landing-bani", "name": "Бани",
                                                        "duplicate_policy": "merge", "queue": str(queue.pk),
                                                        "pipeline": str(lead_pipeline.pk), "stage": "new"})
    assert made.status_code == 302
    src = IntakeSource.objects.get()
    assert (src.duplicate_policy, src.queue_id, src.stage) == ("merge", queue.pk, "new")
    assert client.post("/settings/intake/sources/new/", {"code": "landing-bani", "duplicate_policy": "attach"}).status_code == 422
    assert client.post(f"/settings/intake/sources/{src.pk}/", {"code": "landing-bani", "duplicate_policy": "x"}).status_code == 422
    assert client.post("/settings/intake/telegram/new/", {"name": "Поддержка", "source": "telegram",
                                                          "header_token": "bad token!", "is_active": "on"}).status_code == 422
    assert client.post("/settings/intake/telegram/new/", {"name": "Поддержка", "source": "telegram",
                                                          "header_token": "s3cr3t", "is_active": "on"}).status_code == 302
    bot = TelegramBot.objects.get()
    listing = client.get("/settings/intake/sources/")
    assert f"/intake/telegram/{bot.secret}/" in listing.text and "landing-bani" in listing.text
    manager = login(manager_user)
    assert manager.get("/settings/intake/sources/").status_code == 403
    assert manager.post(f"/settings/intake/telegram/{bot.pk}/", {"name": "X", "source": "x"}).status_code == 403
