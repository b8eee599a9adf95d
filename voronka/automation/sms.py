"""SMS providers beyond the default log one: SMS.ru over its HTTP JSON API.

Select one with ``VORONKA_SMS_PROVIDER = "voronka.automation.sms.SmsRuProvider"`` and configure
``VORONKA_SMSRU_API_ID`` (the key from the SMS.ru cabinet), ``VORONKA_SMSRU_SENDER`` (an approved sender
name; empty: the account's default) and ``VORONKA_SMSRU_URL`` (the API's base address, ``https://sms.ru``;
tests point it at a local server). One SMS is one POST of ``/sms/send`` with ``json=1``; the answer says
per number whether it was accepted. Any refusal raises ``SmsError`` with SMS.ru's own text: the engine
stores it on the run and retries with backoff (a balance topped up or a sender approved meanwhile makes a
later try succeed).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings
from django.utils.translation import gettext as _

from .effects import SmsProvider


class SmsError(Exception):
    """The provider refused or could not be reached; the message is meant for the automation log."""


def _setting(name: str, default: str = "") -> str:
    value = getattr(settings, name, None)
    if value is None:
        value = os.environ.get(name, default)
    return str(value or default)


class SmsRuProvider(SmsProvider):
    """SMS.ru (https://sms.ru/api/send): ``POST {base}/sms/send`` with api_id, to, msg, from, json=1."""

    def __init__(self, api_id: str | None = None, sender: str | None = None, base_url: str | None = None,
                 timeout: float | None = None):
        self.api_id = api_id if api_id is not None else _setting("VORONKA_SMSRU_API_ID")
        self.sender = sender if sender is not None else _setting("VORONKA_SMSRU_SENDER")
        self.base_url = (base_url or _setting("VORONKA_SMSRU_URL", "https://sms.ru")).rstrip("/")
        self.timeout = timeout if timeout is not None else float(_setting("VORONKA_SMSRU_TIMEOUT", "10"))

    def send(self, phone: str, text: str, key: str) -> dict:
        if not self.api_id:
            raise SmsError(_("SMS.ru is not configured: set VORONKA_SMSRU_API_ID."))
        number = "".join(ch for ch in phone if ch.isdigit())  # SMS.ru takes 79161234567, not +7 916 …
        form = {"api_id": self.api_id, "to": number, "msg": text, "json": "1"}
        if self.sender:
            form["from"] = self.sender
        request = urllib.request.Request(
            f"{self.base_url}/sms/send", data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "Voronka"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - configured URL
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise SmsError(_("SMS.ru answered HTTP %(s)s.") % {"s": exc.code}) from None
        except (urllib.error.URLError, OSError) as exc:
            raise SmsError(_("SMS.ru could not be reached: %(e)s") % {"e": getattr(exc, "reason", exc)}) from None
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise SmsError(_("SMS.ru answered something that is not JSON.")) from None
        if not isinstance(answer, dict):
            raise SmsError(_("SMS.ru answered something that is not JSON."))
        if answer.get("status") != "OK":
            raise SmsError(_("SMS.ru refused the request: %(t)s (code %(c)s).")
                           % {"t": answer.get("status_text") or "?", "c": answer.get("status_code")})
        per_number = (answer.get("sms") or {}).get(number)
        if not isinstance(per_number, dict):
            raise SmsError(_("SMS.ru did not answer for the number %(n)s.") % {"n": number})
        if per_number.get("status") != "OK":
            raise SmsError(_("SMS.ru refused the SMS: %(t)s (code %(c)s).")
                           % {"t": per_number.get("status_text") or "?", "c": per_number.get("status_code")})
        return {"provider": "smsru", "sms_id": per_number.get("sms_id", ""), "balance": answer.get("balance")}
