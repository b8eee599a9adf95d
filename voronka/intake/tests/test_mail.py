"""Mail intake end to end with real servers on loopback: dovecot (IMAP, mail delivered with APPEND) polled by
the worker job, and Voronka's SMTP endpoint (aiosmtpd) fed with smtplib."""

from __future__ import annotations

import datetime
import os
import smtplib
import uuid
from email.message import EmailMessage

import pytest
from django.core.files.storage import default_storage

from voronka.core import clock, entity_types, jobs
from voronka.core.errors import PermissionDenied, ValidationFailed
from voronka.core.models import TimelineBinding, TimelineEntry
from voronka.deals.actions import create_deal
from voronka.intake import mail, secretbox
from voronka.intake.models import IntakeLog, MailAttachment, Mailbox
from voronka.leads.models import Lead
from voronka.parties.actions import create_contact

from .mailservers import DOVECOT, free_port, start_dovecot

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 11, 24, 9, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Attachment files go to a temporary media directory."""
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path / "media")}}}
    return tmp_path / "media"


@pytest.fixture(scope="module")
def imap_server():
    if DOVECOT is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dovecot is not installed: CI must install dovecot-imapd (.ci/run)")
        pytest.skip("dovecot is not installed on this machine (apt-get install dovecot-imapd); CI installs it")
    server, stop = start_dovecot()
    yield server
    stop()


@pytest.fixture
def frozen():
    clock.freeze(T0)
    yield T0
    clock.freeze(None)


@pytest.fixture
def box(admin, imap_server, lead_pipeline):
    folder = f"t{uuid.uuid4().hex[:10]}"
    imap = imap_server
    client = imap.client()
    client.create_folder(folder)
    client.logout()
    return mail.create_mailbox(admin, name="Заявки", source="mail-sales", imap_host=imap.host, imap_port=imap.port,
                               imap_tls=False, imap_login=imap.login, imap_password=imap.password, imap_folder=folder)


def message(frm: str, subject: str, body: str, *, msg_id: str | None = None, reply_to_id: str = "",
            files: list[tuple[str, str, bytes]] = (), headers: dict | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"] = frm
    msg["To"] = "sales@bani.example.ru"
    msg["Subject"] = subject
    msg["Message-ID"] = msg_id or f"<{uuid.uuid4().hex}@client.example.ru>"
    if reply_to_id:
        msg["In-Reply-To"] = reply_to_id
        msg["References"] = reply_to_id
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(body)
    for name, ctype, data in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def _poll(now):
    """One worker tick at ``now`` (the mail job and every other registered job)."""
    clock.freeze(now)
    return jobs.run_all()["mail"]


def test_unknown_sender_becomes_a_lead_with_its_attachment(box, imap_server, frozen, users, media):
    pdf = b"%PDF-1.4 fake price list \x00\xff"
    raw = message('"Иван Петров" <Ivan.Petrov@Example.ru>', "Баня-бочка 4 м", "Здравствуйте!\nСколько стоит доставка?",
                  files=[("Прайс 2026.pdf", "application/pdf", pdf)])
    imap_server.append(box.imap_folder, raw)
    assert _poll(T0) == 1
    entry = IntakeLog.objects.get(channel="mail")
    assert entry.status == "created" and entry.mailbox_id == box.pk and entry.source == "mail-sales"
    assert mail.raw_bytes(entry).replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
    assert entry.external_id.startswith(f"imap:{box.pk}:")
    lead = Lead.objects.get()
    assert lead.title == "Баня-бочка 4 м" and lead.comment == "Здравствуйте!\nСколько стоит доставка?"
    assert (lead.first_name, lead.last_name, lead.source) == ("Иван", "Петров", "mail-sales")
    line = TimelineEntry.objects.get(entity_type_id=entity_types.LEAD, entity_id=lead.pk, kind="mail")
    assert line.data["from"] == "ivan.petrov@example.ru" and line.data["attachments"][0]["name"] == "Прайс 2026.pdf"
    att = MailAttachment.objects.get()
    assert (att.entity_type_id, att.entity_id, att.entry_id, att.size) == (entity_types.LEAD, lead.pk, line.pk, len(pdf))
    with default_storage.open(att.file.name) as fh:
        assert fh.read() == pdf
    assert (media / att.file.name).exists()
    # the same interval: the mailbox is not polled again; later it is, and nothing is stored twice
    assert _poll(T0 + datetime.timedelta(seconds=30)) == 0
    assert _poll(T0 + datetime.timedelta(minutes=2)) == 0
    assert IntakeLog.objects.filter(channel="mail").count() == 1 and Lead.objects.count() == 1
    box.refresh_from_db()
    assert box.last_uid == 1 and box.last_error == "" and box.uid_validity


def test_a_poll_that_crashes_halfway_stores_each_message_once(box, imap_server, frozen, monkeypatch):
    for n in range(3):
        imap_server.append(box.imap_folder, message(f"client{n}@example.ru", f"Заявка {n}", "Текст"))
    real = mail.store_and_process
    calls = []

    def crash_after_second_store(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionResetError("the connection dropped")
        return result

    monkeypatch.setattr(mail, "store_and_process", crash_after_second_store)
    _poll(T0)  # the first stored, the second stored, then the crash before its UID is recorded
    box.refresh_from_db()
    assert "ConnectionResetError" in box.last_error and box.last_uid == 1
    assert IntakeLog.objects.filter(channel="mail").count() == 2
    monkeypatch.setattr(mail, "store_and_process", real)
    assert _poll(T0 + datetime.timedelta(minutes=5)) == 2  # uid 2 again (already stored) and uid 3
    assert IntakeLog.objects.filter(channel="mail").count() == 3
    assert sorted(Lead.objects.values_list("title", flat=True)) == ["Заявка 0", "Заявка 1", "Заявка 2"]
    box.refresh_from_db()
    assert box.last_uid == 3 and box.last_error == ""


def test_known_contact_gets_the_mail_on_its_timeline_and_open_deal(admin, box, imap_server, frozen, deal_pipelines):
    contact = create_contact(admin, first_name="Мария", last_name="Ершова", emails=["m.ershova@cafe.ru"])
    deal = create_deal(admin, title="Баня для кафе", contact=contact.pk)
    imap_server.append(box.imap_folder, message("Мария <M.Ershova@cafe.ru>", "Re: счёт", "Оплатили вчера."))
    _poll(T0)
    entry = IntakeLog.objects.get(channel="mail")
    assert entry.status == "attached" and (entry.entity_type_id, entry.entity_id) == (entity_types.CONTACT, contact.pk)
    assert not Lead.objects.exists()
    line = TimelineEntry.objects.get(kind="mail")
    assert (line.entity_type_id, line.entity_id) == (entity_types.CONTACT, contact.pk)
    assert "Оплатили вчера." in line.text
    assert TimelineBinding.objects.filter(entry=line, entity_type_id=entity_types.DEAL, entity_id=deal.pk).exists()


def test_replies_thread_by_message_id(box, imap_server, frozen):
    first = "<first-1@client.example.ru>"
    imap_server.append(box.imap_folder, message("olga@client.example.ru", "Нужна баня", "Пришлите цены", msg_id=first))
    _poll(T0)
    lead = Lead.objects.get()
    # a colleague answers from another address, in the same thread: it goes to the same lead
    imap_server.append(box.imap_folder, message("boss@client.example.ru", "Re: Нужна баня", "И доставку тоже",
                                                reply_to_id=first))
    # the same message delivered twice (e.g. to two of our addresses) does not make a second lead either
    imap_server.append(box.imap_folder, message("olga@client.example.ru", "Нужна баня", "Пришлите цены", msg_id=first))
    _poll(T0 + datetime.timedelta(minutes=5))
    assert Lead.objects.count() == 1
    entries = list(IntakeLog.objects.filter(channel="mail").order_by("id"))
    assert [e.status for e in entries] == ["created", "attached", "attached"]
    assert all(e.entity_id == lead.pk for e in entries)
    assert TimelineEntry.objects.filter(entity_type_id=entity_types.LEAD, entity_id=lead.pk, kind="mail").count() == 3


def test_bad_and_automatic_messages_are_kept(box, frozen, settings):
    settings.LANGUAGE_CODE = "en"  # reasons are asserted in English
    no_sender = b"Subject: =?utf-8?b?0J/RgNC40LLQtdGC?=\r\nContent-Type: text/plain; charset=koi8-r\r\n\r\n\xf0\xd2\xc9\r\n"
    entry = mail.store_and_process(box, no_sender)
    assert entry.status == "rejected" and "sender" in entry.reason and entry.meta["raw_encoding"] == "base64"
    assert mail.raw_bytes(entry) == no_sender  # 8-bit mail is kept byte for byte
    auto = mail.store_and_process(box, message("robot@example.ru", "Out of office", "Away",
                                               headers={"Auto-Submitted": "auto-replied"}))
    assert auto.status == "ignored" and not Lead.objects.exists()
    # switched off: rejected, and a replay after switching it on creates the lead
    Mailbox.objects.filter(pk=box.pk).update(is_active=False)
    box.refresh_from_db()
    off = mail.store_and_process(box, message("late@example.ru", "Поздно", "Текст"))
    assert off.status == "rejected"
    Mailbox.objects.filter(pk=box.pk).update(is_active=True)
    from voronka.core.actor import Actor
    from voronka.intake.actions import replay

    assert replay(Actor.system("test"), off.pk).status == "created"


def test_mailbox_settings_need_the_integrations_right(manager, admin, imap_server):
    with pytest.raises(PermissionDenied):
        mail.create_mailbox(manager, name="X", imap_host="127.0.0.1", imap_login="x", imap_password="y")
    with pytest.raises(ValidationFailed) as exc:
        mail.create_mailbox(admin, name="", kind="imap", imap_port=70000)
    assert {"name", "imap_host", "imap_login", "imap_port"} <= set(exc.value.fields)
    with pytest.raises(ValidationFailed) as exc:
        mail.create_mailbox(admin, name="SMTP", kind="smtp", recipients=["not an address"])
    assert "recipients" in exc.value.fields
    a = mail.create_mailbox(admin, name="SMTP", kind="smtp", recipients="Sales@crm.example.ru, info@crm.example.ru")
    assert a.recipients == ["info@crm.example.ru", "sales@crm.example.ru"]
    with pytest.raises(ValidationFailed):
        mail.create_mailbox(admin, name="Other", kind="smtp", recipients=["sales@crm.example.ru"])
    with pytest.raises(PermissionDenied):
        mail.update_mailbox(manager, a.pk, name="Y")


@pytest.fixture
def smtp_endpoint():
    port = free_port()
    controller = mail.smtp_controller("127.0.0.1", port)
    controller.start()
    yield port
    controller.stop()


@pytest.mark.django_db(transaction=True)
def test_smtp_endpoint_accepts_only_its_addresses_and_makes_a_lead(smtp_endpoint, lead_pipeline):
    from voronka.core.actor import Actor

    admin = Actor.system("test")
    mail.create_mailbox(admin, name="Почта сайта", kind="smtp", source="mail-site", recipients=["zakaz@crm.example.ru"])
    raw = message("Пётр <petr@example.ru>", "Заказ сауны", "Позвоните мне", files=[("plan.txt", "text/plain", b"3x4")])
    with smtplib.SMTP("127.0.0.1", smtp_endpoint, timeout=10) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("petr@example.ru", ["nobody@crm.example.ru"], raw)
        refused = smtp.sendmail("petr@example.ru", ["zakaz@crm.example.ru", "stranger@crm.example.ru"], raw)
    assert list(refused) == ["stranger@crm.example.ru"]
    entry = IntakeLog.objects.get(channel="mail")
    assert entry.status == "created" and entry.meta["rcpt"] == ["zakaz@crm.example.ru"]
    assert entry.remote_addr == "127.0.0.1" and entry.meta["mail_from"] == "petr@example.ru"
    lead = Lead.objects.get()
    assert (lead.title, lead.source, lead.first_name) == ("Заказ сауны", "mail-site", "Пётр")
    assert MailAttachment.objects.get().filename == "plan.txt"
    # a retry of the same message by the sending server is stored once
    with smtplib.SMTP("127.0.0.1", smtp_endpoint, timeout=10) as smtp:
        smtp.sendmail("petr@example.ru", ["zakaz@crm.example.ru"], raw)
    assert IntakeLog.objects.filter(channel="mail").count() == 1 and Lead.objects.count() == 1


def test_mailboxes_and_attachments_over_the_api(admin_token, manager_user, users, lead_pipeline):
    from voronka.api.tests.conftest import bearer
    from voronka.identity.models import ApiToken

    api = bearer(admin_token)
    made = api.post("/intake/mailboxes", {"name": "Входящие", "imap_host": "imap.example.ru", "imap_login": "sales",
                                          "imap_password": "p4ss", "source": "mail-sales"})
    assert made.status_code == 201, made.json()
    assert "imap_password" not in made.json() and made.json()["imap_port"] == 993
    assert api.post("/intake/mailboxes", {"name": "Bad", "kind": "smtp"}).status_code == 422
    assert api.post("/intake/mailboxes", {"name": "Bad", "kind": "pop3"}).status_code == 422
    changed = api.patch(f"/intake/mailboxes/{made.json()['id']}", {"poll_seconds": 300, "imap_password": ""})
    assert changed.status_code == 200 and changed.json()["poll_seconds"] == 300
    stored = Mailbox.objects.get().imap_password
    assert "p4ss" not in stored and secretbox.reveal(stored) == "p4ss"  # encrypted; an empty password keeps it
    assert api.patch("/intake/mailboxes/999", {"name": "X"}).status_code == 404
    manager = bearer(ApiToken.issue(manager_user, name="t")[1])
    assert manager.get("/intake/mailboxes").status_code == 403
    assert manager.post("/intake/mailboxes", {"name": "X", "kind": "smtp", "recipients": ["a@b.ru"]}).status_code == 403
    # an attachment is served to whoever may read its record, and is «not found» for anyone else
    box = Mailbox.objects.get()
    entry = mail.store_and_process(box, message("anna@example.ru", "Смета", "См. файл",
                                                files=[("смета.xlsx", "application/octet-stream", b"PK\x03\x04")]))
    att = MailAttachment.objects.get()
    got = api.get(f"/intake/mail/attachments/{att.pk}")
    assert got.status_code == 200 and b"".join(got.streaming_content) == b"PK\x03\x04"
    assert "attachment" in got["Content-Disposition"]
    stranger = bearer(ApiToken.issue(users[0], name="t")[1])
    assert stranger.get(f"/intake/mail/attachments/{att.pk}").status_code == 404
    assert api.get("/intake/mail/attachments/99999").status_code == 404
    assert entry.status == "created"


def test_smtpd_command_refuses_a_bad_address():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="HOST:PORT"):
        call_command("mail-smtpd", "--bind", "localhost")


def test_deliver_refuses_when_no_mailbox_takes_the_message(admin):
    box = mail.create_mailbox(admin, name="SMTP", kind="smtp", recipients=["a@crm.example.ru"])
    Mailbox.objects.filter(pk=box.pk).update(is_active=False)
    with pytest.raises(LookupError):
        mail.deliver(["a@crm.example.ru"], message("x@example.ru", "S", "B"))
    assert not IntakeLog.objects.exists()


def test_mailbox_passwords_are_stored_encrypted_with_a_key_from_the_secret_key(admin, settings):
    box = mail.create_mailbox(admin, name="X", imap_host="127.0.0.1", imap_login="x", imap_password="пароль-1")
    stored = Mailbox.objects.get(pk=box.pk).imap_password
    assert stored.startswith("fernet:") and "пароль" not in stored
    assert secretbox.reveal(stored) == "пароль-1"
    assert secretbox.reveal("stored-before-encryption") == "stored-before-encryption"  # read as it is
    settings.SECRET_KEY = "another-installation-" + "k" * 40
    with pytest.raises(secretbox.CannotDecrypt):  # a changed secret key: the mailbox asks for the password again
        secretbox.reveal(stored)


def test_a_message_above_the_size_limit_is_rejected_with_its_headers_kept(box, imap_server, frozen, settings):
    settings.VORONKA_MAIL_MAX_BYTES = 4000
    imap_server.append(box.imap_folder, message("big@example.ru", "Прайс на всё", "Х" * 5000))
    imap_server.append(box.imap_folder, message("small@example.ru", "Вопрос", "Коротко"))
    assert _poll(T0) == 2
    big, small = IntakeLog.objects.order_by("id")
    assert (big.status, big.meta["code"], big.meta["headers_only"]) == ("rejected", "too_large", True)
    assert big.meta["size"] > 4000 and "Прайс на всё" == big.meta["subject"] and "Х" * 100 not in big.raw
    assert "4000" in big.reason
    assert small.status == "created"
    assert _poll(T0 + datetime.timedelta(minutes=5)) == 0  # not fetched again
