"""The SMS.ru provider against a local HTTP server that answers like SMS.ru (no real network)."""

import http.server
import json
import threading
import urllib.parse

import pytest

from voronka.automation.models import Run
from voronka.automation.sms import SmsError, SmsRuProvider
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db


class FakeSmsRu:
    """Answers ``POST /sms/send`` the way SMS.ru does, with what the test sets in ``answer``."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answer = None  # None: accept every number
        self.http_status = 200
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                fake.requests.append({"path": self.path, "form": form})
                if fake.http_status != 200:
                    self.send_response(fake.http_status)
                    self.end_headers()
                    return
                answer = fake.answer
                if answer is None:
                    answer = {"status": "OK", "status_code": 100, "balance": 4122.56,
                              "sms": {form["to"]: {"status": "OK", "status_code": 100, "sms_id": "000000-10000000"}}}
                body = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def smsru(settings):
    fake = FakeSmsRu()
    settings.VORONKA_SMS_PROVIDER = "voronka.automation.sms.SmsRuProvider"
    settings.VORONKA_SMSRU_API_ID = "test-api-id"
    settings.VORONKA_SMSRU_SENDER = "Okna"
    settings.VORONKA_SMSRU_URL = fake.url
    yield fake
    fake.close()


def test_sends_the_form_sms_ru_expects(smsru):
    result = SmsRuProvider().send("+79161234567", "Привет", "key-1")
    assert result == {"provider": "smsru", "sms_id": "000000-10000000", "balance": 4122.56}
    [request] = smsru.requests
    assert request["path"] == "/sms/send"
    assert request["form"] == {"api_id": "test-api-id", "to": "79161234567", "msg": "Привет", "json": "1",
                               "from": "Okna"}


def test_no_sender_means_the_account_default(smsru, settings):
    settings.VORONKA_SMSRU_SENDER = ""
    SmsRuProvider().send("+79161234567", "x", "k")
    assert "from" not in smsru.requests[0]["form"]


@pytest.mark.parametrize("answer, message", [
    ({"status": "ERROR", "status_code": 200, "status_text": "Неправильный api_id"},
     "SMS.ru refused the request: Неправильный api_id (code 200)."),
    ({"status": "OK", "status_code": 100, "sms": {"79161234567": {
        "status": "ERROR", "status_code": 207, "status_text": "На этот номер нельзя отправлять сообщения"}}},
     "SMS.ru refused the SMS: На этот номер нельзя отправлять сообщения (code 207)."),
    ({"status": "OK", "status_code": 100, "sms": {}}, "SMS.ru did not answer for the number 79161234567."),
    (b"<html>maintenance</html>", "SMS.ru answered something that is not JSON."),
])
def test_refusals_are_errors_with_sms_ru_text(smsru, answer, message):
    smsru.answer = answer
    with pytest.raises(SmsError) as exc:
        SmsRuProvider().send("+79161234567", "x", "k")
    assert str(exc.value) == message


def test_http_errors_and_unreachable(smsru):
    smsru.http_status = 503
    with pytest.raises(SmsError, match="HTTP 503"):
        SmsRuProvider().send("+79161234567", "x", "k")
    closed = SmsRuProvider(base_url="http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(SmsError, match="could not be reached"):
        closed.send("+79161234567", "x", "k")


def test_not_configured(settings):
    settings.VORONKA_SMSRU_API_ID = ""
    with pytest.raises(SmsError, match="VORONKA_SMSRU_API_ID"):
        SmsRuProvider().send("+79161234567", "x", "k")


def test_a_robot_sends_through_sms_ru_and_retries_a_refusal(admin, manager_user, robot, drive, smsru):
    robot("sms", {"text": "{first_name}, мы получили заявку"})
    smsru.answer = {"status": "ERROR", "status_code": 201, "status_text": "Не хватает средств на лицевом счету"}
    create_lead(admin, title="Окна", first_name="Иван", phones=["8 (916) 123-45-67"], responsible=manager_user.pk)
    drive()
    run = Run.objects.get()
    assert run.status == "pending" and run.attempts == 1  # retried later with backoff
    assert "Не хватает средств" in run.error
    smsru.answer = None
    run.scheduled_at = run.created_at
    run.save()
    drive()
    run.refresh_from_db()
    assert run.status == "done", run.error
    assert run.outputs["sms_id"] == "000000-10000000"
    assert [r["form"]["msg"] for r in smsru.requests] == ["Иван, мы получили заявку"] * 2
