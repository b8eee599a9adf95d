"""event.bind and the outgoing notices: queued from the outbox, POSTed by the worker job, retried with back-off."""

from __future__ import annotations

import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest

from voronka.compat_b24 import events
from voronka.core import clock, outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """A loopback HTTP server that records POSTs and answers with the statuses queued in ``answers``."""
    received: list[dict] = []
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            received.append({"type": self.headers.get("Content-Type"),
                             "body": dict(parse_qsl(self.rfile.read(length).decode()))})
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}/hook", "received": received, "answers": answers}
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def private_handlers(settings):
    settings.VORONKA_B24_EVENT_PRIVATE_HANDLERS = True  # the receiver of these tests listens on loopback


@pytest.fixture
def frozen():
    clock.freeze(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC))
    yield
    clock.freeze(None)


def test_bind_deliver_retry(rest, receiver, lead_pipeline, frozen):
    assert rest("event.bind", {"event": "onCrmLeadAdd", "handler": receiver["url"]})[1]["result"] is True
    assert rest("event.bind", {"event": "ONCRMLEADUPDATE", "handler": receiver["url"]})[1]["result"] is True
    _s, body = rest("event.get")
    assert {e["event"] for e in body["result"]} == {"ONCRMLEADADD", "ONCRMLEADUPDATE"}
    lead_id = rest("crm.lead.add", {"fields": {"TITLE": "Событие"}})[1]["result"]
    outbox.dispatch_pending()
    outbox.dispatch_pending()  # a second sweep queues nothing twice
    from voronka.compat_b24.models import EventDelivery

    assert EventDelivery.objects.count() == 1
    receiver["answers"].append(503)
    assert events.deliver_due() == 1
    assert len(receiver["received"]) == 1
    delivery = EventDelivery.objects.get()
    assert delivery.delivered_at is None and delivery.attempts == 1 and "503" in delivery.last_error
    assert events.deliver_due() == 0  # not due yet: back-off
    clock.advance(dt.timedelta(seconds=31))
    assert events.deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.delivered_at is not None and delivery.attempts == 2
    notice = receiver["received"][-1]
    assert notice["type"] == "application/x-www-form-urlencoded"
    assert notice["body"]["event"] == "ONCRMLEADADD" and notice["body"]["data[FIELDS][ID]"] == str(lead_id)
    assert notice["body"]["auth[application_token]"] and int(notice["body"]["ts"]) > 0
    assert rest("event.unbind", {"event": "ONCRMLEADADD", "handler": receiver["url"]})[1]["result"] == {"count": 1}


def test_handler_of_a_user_who_may_not_read_gets_nothing(client, admin, manager_user, rest, receiver, lead_pipeline,
                                                         admin_user, frozen):
    from voronka.compat_b24.actions import create_webhook
    from voronka.compat_b24.models import EventDelivery

    _hook, secret = create_webhook(admin, user_id=manager_user.pk, scopes=["crm"])
    resp = client.post(f"/rest/{manager_user.pk}/{secret}/event.bind",
                       {"event": "ONCRMLEADADD", "handler": receiver["url"]}, content_type="application/json")
    assert resp.json()["result"] is True
    rest("crm.lead.add", {"fields": {"TITLE": "Закрытый", "ASSIGNED_BY_ID": admin_user.pk, "OPENED": "N"}})
    outbox.dispatch_pending()
    assert EventDelivery.objects.count() == 0


def test_gives_up_after_max_attempts(rest, receiver, lead_pipeline, frozen, settings):
    from voronka.compat_b24.models import EventDelivery

    settings.VORONKA_B24_EVENT_MAX_ATTEMPTS = 2
    rest("event.bind", {"event": "ONCRMLEADDELETE", "handler": receiver["url"]})
    lead_id = rest("crm.lead.add", {"fields": {"TITLE": "x"}})[1]["result"]
    rest("crm.lead.delete", {"id": lead_id})
    outbox.dispatch_pending()
    receiver["answers"].extend([500, 500])
    events.deliver_due()
    clock.advance(dt.timedelta(minutes=5))
    events.deliver_due()
    delivery = EventDelivery.objects.get()
    assert delivery.failed_at is not None and delivery.attempts == 2 and delivery.delivered_at is None


def test_private_addresses_are_refused_unless_allowed(rest, settings, receiver, lead_pipeline, frozen):
    settings.LANGUAGE_CODE = "en"  # messages are asserted in English
    from voronka.compat_b24.models import EventDelivery

    settings.VORONKA_B24_EVENT_PRIVATE_HANDLERS = False
    for url in (receiver["url"], "http://10.1.2.3/hook", "http://[::1]:8080/x", "http://localhost/x"):
        status, body = rest("event.bind", {"event": "ONCRMLEADADD", "handler": url})
        assert status == 400 and body["error"] == "ERROR_ARGUMENT" and "public" in body["error_description"], body
    # a handler bound while allowed is not posted to once the setting is off again
    settings.VORONKA_B24_EVENT_PRIVATE_HANDLERS = True
    rest("event.bind", {"event": "ONCRMLEADADD", "handler": receiver["url"]})
    settings.VORONKA_B24_EVENT_PRIVATE_HANDLERS = False
    rest("crm.lead.add", {"fields": {"TITLE": "x"}})
    outbox.dispatch_pending()
    events.deliver_due()
    assert receiver["received"] == [] and "public" in EventDelivery.objects.get().last_error


def test_deal_move_to_category_and_smart_item_events(rest, receiver, admin, deal_pipelines, frozen):
    """A deal moved into another pipeline raises ONCRMDEALMOVETOCATEGORY with the new CATEGORY_ID and STAGE_ID;
    smart-process items raise ONCRMDYNAMICITEM{ADD,UPDATE,DELETE} with their ENTITY_TYPE_ID."""
    from voronka.deals.actions import move_deal
    from voronka.items.actions import create_type
    from voronka.pipelines.models import Stage

    production = create_type(admin, name="Заказ", code="production")
    for name in ("ONCRMDEALMOVETOCATEGORY", "ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMUPDATE", "ONCRMDYNAMICITEMDELETE"):
        assert rest("event.bind", {"event": name, "handler": receiver["url"]})[1]["result"] is True, name
    assert "ONCRMDEALMOVETOCATEGORY" in rest("events")[1]["result"]
    deal_id = rest("crm.deal.add", {"fields": {"TITLE": "Переезд"}})[1]["result"]
    rest("crm.deal.update", {"id": deal_id, "fields": {"TITLE": "Переезд!"}})  # no move: no notice
    repeat = deal_pipelines["repeat"]
    move_deal(admin, deal_id, stage=Stage.objects.get(pipeline=repeat, code="offer").pk, pipeline=repeat.pk)
    item_id = rest("crm.item.add", {"entityTypeId": production.id, "fields": {"title": "Котёл"}})[1]["result"]["item"]["id"]
    rest("crm.item.update", {"entityTypeId": production.id, "id": item_id, "fields": {"title": "Котёл 2"}})
    rest("crm.item.delete", {"entityTypeId": production.id, "id": item_id})
    outbox.dispatch_pending()
    while events.deliver_due():
        pass
    bodies = {n["body"]["event"]: n["body"] for n in receiver["received"]}
    assert sorted(bodies) == ["ONCRMDEALMOVETOCATEGORY", "ONCRMDYNAMICITEMADD", "ONCRMDYNAMICITEMDELETE",
                              "ONCRMDYNAMICITEMUPDATE"]
    assert len(receiver["received"]) == 4
    moved = bodies["ONCRMDEALMOVETOCATEGORY"]
    assert (moved["data[FIELDS][ID]"], moved["data[FIELDS][CATEGORY_ID]"], moved["data[FIELDS][STAGE_ID]"]) == (
        str(deal_id), str(repeat.pk), f"C{repeat.pk}:OFFER")
    added = bodies["ONCRMDYNAMICITEMADD"]
    assert added["data[FIELDS][ID]"] == str(item_id) and added["data[FIELDS][ENTITY_TYPE_ID]"] == str(production.id)
