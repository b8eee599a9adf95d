"""Web forms, call events, Telegram updates and registrations, end to end through HTTP."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from voronka.activities.models import Task
from voronka.api.tests.conftest import bearer
from voronka.core import entity_types
from voronka.core.models import TimelineEntry
from voronka.deals.actions import create_deal
from voronka.identity.models import ApiToken
from voronka.intake import forms
from voronka.intake.models import IntakeLog, TelegramBot, TelegramChat
from voronka.leads.actions import create_lead
from voronka.leads.models import Lead
from voronka.parties.actions import create_contact

pytestmark = pytest.mark.django_db

FIELDS = [
    {"name": "name", "label": "Имя", "maps_to": "first_name", "required": True},
    {"name": "phone", "label": "Телефон", "type": "tel", "maps_to": "phones", "required": True},
    {"name": "email", "label": "E-mail", "type": "email", "maps_to": "emails"},
    {"name": "question", "label": "Вопрос", "type": "textarea", "maps_to": "inquiry"},
]


@pytest.fixture
def form(admin, lead_pipeline, queue):
    return forms.create_form(admin, slug="bani", name="Бани — лендинг", source="landing-bani", fields=FIELDS,
                             consent_text="Согласен на обработку персональных данных", queue=queue.pk,
                             allowed_origins=["https://bani.example.ru"], success_message="Спасибо! Перезвоним.",
                             mode="now")


def _post(client, data, **extra):
    return client.post("/f/bani/?utm_source=yandex&utm_campaign=spring", data, **extra)


def test_form_page_renders_and_a_submission_becomes_a_distributed_lead(form, users):
    client = Client()
    page = client.get("/f/bani/?utm_medium=cpc", HTTP_ACCEPT_LANGUAGE="ru")
    assert page.status_code == 200 and "Бани — лендинг" in page.text and 'name="website"' in page.text
    assert 'name="utm_medium" value="cpc"' in page.text
    answer = _post(client, {"name": "Иван", "phone": "8 916 123-45-67", "question": "Сколько стоит баня-бочка?",
                            "consent": "1", "referrer": "https://bani.example.ru/price"})
    assert answer.status_code == 200 and "Спасибо! Перезвоним." in answer.text
    lead = Lead.objects.get()
    assert lead.source == "landing-bani" and lead.first_name == "Иван" and lead.inquiry == "Сколько стоит баня-бочка?"
    assert (lead.utm_source, lead.utm_campaign) == ("yandex", "spring")
    assert lead.responsible_id in {u.pk for u in users} and lead.title == "Бани — лендинг: Иван"
    note = TimelineEntry.objects.get(entity_type_id=1, entity_id=lead.pk, kind="comment").text
    assert "https://bani.example.ru/price" in note and "Согласен" not in note
    entry = IntakeLog.objects.get()
    assert entry.channel == "form" and entry.status == "created" and entry.form_id == form.pk


def test_form_errors_are_shown_and_logged_as_rejected(form):
    answer = _post(Client(), {"name": "", "phone": "not a phone"})
    assert answer.status_code == 422
    entry = IntakeLog.objects.get()
    assert entry.status == "rejected" and set(entry.errors) == {"name", "phone", "consent"}
    assert not Lead.objects.exists()
    as_json = _post(Client(), {"name": "Иван"}, HTTP_ACCEPT="application/json")
    assert as_json.status_code == 422 and as_json.json()["code"] == "validation_failed"


def test_honeypot_and_rate_limit(form, settings):
    answer = _post(Client(), {"name": "Bot", "phone": "+79160000000", "consent": "1", "website": "http://spam"})
    assert answer.status_code == 400 and IntakeLog.objects.get().meta["code"] == "spam"
    settings.VORONKA_FORM_RATE_LIMIT = 3
    codes = [_post(Client(), {"name": "Иван", "phone": f"+7916000000{i}", "consent": "1"}).status_code for i in range(4)]
    assert codes == [200, 200, 429, 429]  # the spam attempt counts too
    assert IntakeLog.objects.count() == 3  # a flood is not logged beyond the limit


def test_behind_a_reverse_proxy_each_visitor_has_his_own_rate_limit(form, settings):
    """Behind nginx every request comes from 127.0.0.1: with the proxy declared (``VORONKA_TRUSTED_PROXIES``) the
    limit counts the address nginx appended to X-Forwarded-For, so one visitor's flood does not shut the form for
    the others; without it, the header (which a client can send himself) is ignored."""
    settings.VORONKA_FORM_RATE_LIMIT = 2
    settings.VORONKA_TRUSTED_PROXIES = 1

    def post(i, ip):
        return _post(Client(), {"name": "Иван", "phone": f"+7916000010{i}", "consent": "1"},
                     HTTP_X_FORWARDED_FOR=f"10.0.0.1, {ip}").status_code

    assert [post(i, "203.0.113.7") for i in range(3)] == [200, 200, 429]
    assert post(3, "198.51.100.2") == 200  # another visitor
    assert IntakeLog.objects.filter(remote_addr="198.51.100.2").count() == 1
    settings.VORONKA_TRUSTED_PROXIES = 0  # not declared: the header is not believed, the connection's address counts
    assert post(4, "192.0.2.1") == 200
    assert IntakeLog.objects.filter(remote_addr="127.0.0.1").count() == 1
    assert not IntakeLog.objects.filter(remote_addr="192.0.2.1").exists()


def test_cors_only_for_allowed_origins_and_the_embed_script(form):
    client = Client()
    ok = client.post("/f/bani/", {"name": "Анна", "phone": "+79160000011", "consent": "1"},
                     HTTP_ORIGIN="https://bani.example.ru")
    assert ok.status_code == 200 and ok["Access-Control-Allow-Origin"] == "https://bani.example.ru"
    assert ok.json()["ok"] is True
    bad = client.post("/f/bani/", {"name": "Анна", "phone": "+79160000012", "consent": "1"},
                      HTTP_ORIGIN="https://evil.example.com")
    assert bad.status_code == 403 and "Access-Control-Allow-Origin" not in bad
    assert IntakeLog.objects.filter(status="rejected", meta__code="origin_not_allowed").exists()
    preflight = client.options("/f/bani/", HTTP_ORIGIN="https://bani.example.ru")
    assert preflight.status_code == 204 and preflight["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert client.options("/f/bani/", HTTP_ORIGIN="https://evil.example.com").status_code == 403
    script = client.get("/f/bani/embed.js")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "Бани — лендинг" in script.text and "http://testserver/f/bani/" in script.text
    frame = client.get("/f/bani/?embed=1")
    assert frame.status_code == 200 and "X-Frame-Options" not in frame


def test_call_events(admin, admin_token, lead_pipeline, deal_pipelines, users):
    api = bearer(admin_token)
    contact = create_contact(admin, first_name="Олег", phones=["+79161110000"], responsible=users[0].pk)
    deal = create_deal(admin, title="Баня", contact=contact.pk)
    known = api.post("/intake/calls", {"event": "incoming", "from": "8 916 111-00-00", "to": "+74950000000",
                                       "duration": 95, "recording_url": "https://pbx.example.ru/r/1.mp3", "call_id": "c1"})
    assert known.status_code == 200 and known.json()["entity_id"] == contact.pk
    call = TimelineEntry.objects.get(kind="call", entity_type_id=3)
    assert call.data["recording_url"] == "https://pbx.example.ru/r/1.mp3" and call.data["duration"] == 95
    assert call.bindings.filter(entity_type_id=2, entity_id=deal.pk).exists()
    again = api.post("/intake/calls", {"event": "incoming", "from": "89161110000", "to": "+74950000000", "call_id": "c1"})
    assert again.json()["log"] == known.json()["log"]  # the provider's retry is not a second call
    missed = api.post("/intake/calls", {"event": "missed", "from": "+7 916 999-88-77", "to": "+74950000000"})
    assert missed.status_code == 201
    lead = Lead.objects.get(pk=missed.json()["entity_id"])
    assert lead.source == "call" and "+7 916 999-88-77" in lead.title
    task = Task.objects.get(entity_type_id=1, entity_id=lead.pk)
    assert task.responsible_id == admin.user_id and task.deadline is not None
    bad = api.post("/intake/calls", {"event": "ringing", "from": "", "to": "x"})
    assert bad.status_code == 422 and set(bad.json()["fields"]) >= {"event", "from"}
    assert IntakeLog.objects.filter(channel="call", status="rejected").count() == 1
    broken = api.post("/intake/calls", raw="{not json")
    assert broken.status_code == 400 and IntakeLog.objects.get(pk=IntakeLog.objects.latest("id").pk).raw == "{not json"


def test_registration_endpoint_needs_a_token_with_the_right(admin_token, manager_user, lead_pipeline, anonymous):
    assert anonymous.post("/intake/leads", {"first_name": "Ян"}).status_code == 401
    read_only = bearer(ApiToken.issue(manager_user, scopes=["read"])[1])
    assert read_only.post("/intake/leads", {"first_name": "Ян"}).status_code == 403
    ok = bearer(admin_token).post("/intake/leads", {"source": "site-registration", "first_name": "Ян",
                                                    "emails": ["yan@example.ru"], "utm_source": "vk"})
    assert ok.status_code == 201
    lead = Lead.objects.get(pk=ok.json()["entity_id"])
    assert lead.source == "site-registration" and lead.utm_source == "vk"


def _update(update_id: int, text: str, *, chat_id: int = 555001, contact: dict | None = None) -> dict:
    """A Bot API Update with a private-chat Message, as Telegram sends it."""
    message = {"message_id": update_id * 10, "date": 1763900000,
               "from": {"id": chat_id, "is_bot": False, "first_name": "Мария", "last_name": "Ершова",
                        "username": "mershova", "language_code": "ru"},
               "chat": {"id": chat_id, "first_name": "Мария", "last_name": "Ершова", "username": "mershova",
                        "type": "private"}}
    if text:
        message["text"] = text
    if contact:
        message["contact"] = contact
    return {"update_id": update_id, "message": message}


def _send(bot, update, **headers):
    return Client().post(f"/intake/telegram/{bot.secret}/", json.dumps(update), content_type="application/json",
                         **headers)


def test_telegram_chat_creates_a_lead_then_messages_go_to_its_timeline(admin, lead_pipeline, deal_pipelines):
    bot = TelegramBot.objects.create(name="iReca bot", source="telegram-ireca", header_token="s3cret")
    assert _send(bot, _update(1, "Привет")).status_code == 403  # without Telegram's secret token header
    h = {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": "s3cret"}
    first = _send(bot, _update(1, "/start"), **h)
    assert first.status_code == 200 and first.json()["status"] == "created"
    link = TelegramChat.objects.get(bot=bot, chat_id=555001)
    lead = Lead.objects.get(pk=link.entity_id)
    assert lead.source == "telegram-ireca" and lead.first_name == "Мария" and "Мария Ершова" in lead.title
    from voronka.parties.communications import values_of

    assert [(c.value, c.value_type, c.normalized) for c in values_of(1, [lead.pk])[lead.pk]["im"]] == [
        ("@mershova", "telegram", "mershova")]  # the chat's username is the lead's Telegram handle
    assert _send(bot, _update(1, "/start"), **h).json()["status"] == "created"  # Telegram's retry: same entry
    contact = create_contact(admin, first_name="Мария", last_name="Ершова", emails=["m.ershova@cafe.ru"])
    second = _send(bot, _update(2, "Мой e-mail M.Ershova@cafe.ru, телефон 8 (916) 222-33-44"), **h)
    assert second.json()["status"] == "attached"
    lead.refresh_from_db()
    assert lead.contact_id == contact.pk
    texts = [e.text for e in TimelineEntry.objects.filter(entity_type_id=1, entity_id=lead.pk, kind="comment")]
    assert any("M.Ershova@cafe.ru" in t for t in texts) and any("/start" in t for t in texts)
    from voronka.parties.models import Communication

    assert {"m.ershova@cafe.ru", "+79162223344"} <= set(
        Communication.objects.filter(entity_type_id=1, entity_id=lead.pk).values_list("normalized", flat=True))
    assert TimelineEntry.objects.filter(entity_type_id=entity_types.CONTACT, entity_id=contact.pk, kind="linked").exists()
    assert _send(bot, {"update_id": 3, "my_chat_member": {}}, **h).json()["status"] == "ignored"
    bad = _send(bot, {"message": {"text": "no update id"}}, **h)
    assert bad.status_code == 400 and IntakeLog.objects.filter(channel="telegram", status="rejected").exists()
    assert Client().post("/intake/telegram/wrong/", "{}", content_type="application/json").status_code == 404


def test_duplicates_lookup_and_merge_over_the_api(admin, admin_token, lead_pipeline):
    api = bearer(admin_token)
    a = create_lead(admin, title="A", phones=["+79163334455"])
    b = create_lead(admin, title="B", phones=["8 916 333 44 55"])
    found = api.get("/duplicates", phone="89163334455")
    assert found.status_code == 200 and {m["id"] for m in found.json()["items"]} == {a.pk, b.pk}
    assert api.get("/duplicates").status_code == 400
    merged = api.post("/merge", {"entity_type_id": 1, "keep": a.pk, "merge": [b.pk], "values": {"title": b.pk}})
    assert merged.status_code == 200 and merged.json() == {"entity_type_id": 1, "id": a.pk, "merged": [b.pk]}
    assert [m["id"] for m in api.get("/duplicates", phone="89163334455").json()["items"]] == [a.pk]


def test_intake_log_read_and_replay_over_the_api(admin_token, manager_user, lead_pipeline):
    from unittest import mock

    from voronka.intake import actions

    with mock.patch.dict(actions.HANDLERS, {"api": mock.Mock(side_effect=RuntimeError("db hiccup"))}):
        pending = bearer(admin_token).post("/intake/leads", {"first_name": "Ян", "phones": ["+79160001234"]})
    assert pending.status_code == 202 and pending.json()["status"] == "pending"
    log_id = pending.json()["log"]
    manager = bearer(ApiToken.issue(manager_user)[1])
    assert manager.get(f"/intake/log/{log_id}").status_code == 403
    api = bearer(admin_token)
    assert api.get(f"/intake/log/{log_id}").json()["payload"]["first_name"] == "Ян"
    replayed = api.post(f"/intake/log/{log_id}/replay")
    assert replayed.status_code == 201 and replayed.json()["status"] == "created"
    assert api.post(f"/intake/log/{log_id}/replay").status_code == 409


def test_forms_over_the_api(admin_token, lead_pipeline):
    api = bearer(admin_token)
    made = api.post("/intake/forms", {"slug": "demo", "name": "Демо", "source": "site-demo",
                                      "fields": [{"name": "email", "maps_to": "emails", "type": "email", "required": True}],
                                      "allowed_origins": ["https://ireca.example.ru"]})
    assert made.status_code == 201, made.json()
    assert made.json()["embed_script"] == '<script src="http://testserver/f/demo/embed.js" async></script>'
    assert api.post("/intake/forms", {"slug": "x", "name": "X", "source": "s",
                                      "fields": [{"name": "a", "maps_to": "nope"}]}).status_code == 422
    changed = api.patch(f"/intake/forms/{made.json()['id']}", {"is_active": False})
    assert changed.status_code == 200 and changed.json()["is_active"] is False
    assert Client().get("/f/demo/").status_code == 404
    assert [f["slug"] for f in api.get("/intake/forms").json()["items"]] == ["demo"]
