"""Public doors of intake: web form pages and their embed script (F31), Telegram bot webhooks (F34).

Nothing here needs a sign-in. Every submission is logged before it is processed (``actions.submit``);
a bad one gets a clear 4xx (HTML for a person, JSON for a script) and stays in the log as rejected. A form «in
the background» (``WebForm.mode``) checks the submission's fields here and queues it for the worker.
"""

from __future__ import annotations

import datetime
import hmac
import json

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from voronka.core import bound
from voronka.core.clientip import client_ip

from . import actions
from .forms import HONEYPOT, origin_allowed
from .models import IntakeLog, TelegramBot, WebForm

MAX_BODY = 64 * 1024


_FORM_COLUMNS: list[str] = []
_FORM_JSON: list[int] = []  # the positions of its JSON columns (fields, allowed origins)


def _form(slug: str) -> WebForm:
    """The active form of a slug. Its row is kept per process behind the settings version (read once per request
    anyway; every change of a form bumps it, see ``apps.py``); a fresh instance per request. Unknown slugs are never
    kept, so random addresses cannot fill the memory."""
    from voronka.core import config_cache

    if not _FORM_COLUMNS:
        fields = WebForm._meta.concrete_fields
        _FORM_JSON[:] = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
        _FORM_COLUMNS[:] = [f.attname for f in fields]
    key = ("webform", slug)
    version = config_cache.current_version()
    hit = config_cache.peek(key, version)
    if hit is None:
        hit = WebForm.objects.filter(slug=slug, is_active=True).values_list(*_FORM_COLUMNS).first()
        if hit is None:
            raise Http404
        config_cache.cached(key, lambda: hit, version)
    row = list(hit)
    for i in _FORM_JSON:  # its JSON values are not shared between requests
        row[i] = _json_copy(row[i])
    return WebForm.from_db("default", _FORM_COLUMNS, row)


def _json_copy(value):
    """A copy of a value read from a JSON column (dicts, lists and immutable scalars): what ``copy.deepcopy`` did
    per submission, without its memo and dispatch (a form's fields were 64 deep copies per request)."""
    if isinstance(value, dict):
        return {k: _json_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_copy(v) for v in value]
    return value


def _own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _cors(response: HttpResponse, form: WebForm, origin: str) -> HttpResponse:
    if origin and origin_allowed(form, origin):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type, Accept"
        response["Access-Control-Max-Age"] = "600"
        response["Vary"] = "Origin"
    return response


_RATE_SQL: dict[str, str] = {}


def _rate_limited(ip: str) -> bool:
    """Submissions of this address in the last minute, through the (channel, remote_addr, received_at) index: a
    statement written once per database, not compiled by the ORM on every submission. It counts no further than the
    limit, so an address that floods the form costs each check at most ``limit`` index entries, not its whole
    minute."""
    from django.db import connection

    limit = int(getattr(settings, "VORONKA_FORM_RATE_LIMIT", 10))
    since = timezone.now() - datetime.timedelta(minutes=1)
    sql = _RATE_SQL.get(connection.vendor)
    if sql is None:
        q = connection.ops.quote_name
        sql = _RATE_SQL[connection.vendor] = (
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {q(IntakeLog._meta.db_table)} WHERE {q('channel')} = %s AND "
            f"{q('remote_addr')} = %s AND {q('received_at')} >= %s LIMIT %s) AS recent")
    with bound.cursor(connection, prepare=True) as cursor:  # SQLite: the driver's cursor without Django's layers
        cursor.execute(sql, [IntakeLog.Channel.FORM.value, ip, connection.ops.adapt_datetimefield_value(since), limit])
        return cursor.fetchone()[0] >= limit


def _wants_json(request: HttpRequest) -> bool:
    # the headers read from META directly: ``request.headers`` parses every header of the request first
    return "application/json" in request.META.get("HTTP_ACCEPT", "") or request.GET.get("format") == "json"


def _language(form: WebForm):
    return translation.override(form.language) if form.language else translation.override(translation.get_language())


def _page(request: HttpRequest, form: WebForm, *, status: int = 200, values=None, errors=None, done: str = "",
          problem: str = "") -> HttpResponse:
    referrer = (values or {}).get("referrer") or request.META.get("HTTP_REFERER", "")
    utm = {k: (values or {}).get(k) or request.GET.get(k, "") for k in actions.UTM}
    context = {"form": form, "values": values or {}, "errors": errors or {}, "done": done, "problem": problem,
               "referrer": referrer[:1000], "utm": utm, "honeypot": HONEYPOT, "embed": request.GET.get("embed") == "1",
               "fields": [{**f, "value": (values or {}).get(f["name"], ""), "errors": (errors or {}).get(f["name"], [])}
                          for f in form.fields]}
    return render(request, "intake/form_page.html", context, status=status)


@csrf_exempt  # a public form posted from any page; spam is held off by the honeypot, the rate limit and CORS
@xframe_options_exempt  # the iframe variant of the embed
@require_http_methods(["GET", "POST", "OPTIONS"])
def form_page(request: HttpRequest, slug: str) -> HttpResponse:
    form = _form(slug)
    origin = request.META.get("HTTP_ORIGIN", "")
    foreign = bool(origin) and origin.rstrip("/") != _own_origin(request)
    with _language(form):
        if request.method == "OPTIONS":
            if foreign and not origin_allowed(form, origin):
                return HttpResponse(status=403)
            return _cors(HttpResponse(status=204), form, origin)
        if request.method == "GET":
            return _page(request, form)
        return _cors(_submit(request, form, origin, foreign), form, origin)


def _submit(request: HttpRequest, form: WebForm, origin: str, foreign: bool) -> HttpResponse:
    as_json = _wants_json(request) or foreign
    ip = client_ip(request)
    if _rate_limited(ip):  # not logged: a flood must not fill the log
        message = _("Too many submissions from your address; try again in a minute.")
        if as_json:
            return JsonResponse({"code": "throttled", "message": message}, status=429)
        return _page(request, form, status=429, problem=message)
    if len(request.body or b"") > MAX_BODY:
        return JsonResponse({"code": "too_large", "message": _("The submission is too large.")}, status=413)
    if request.content_type == "application/json":
        try:
            posted = json.loads(request.body or b"{}")
        except ValueError:
            posted = {"_invalid_json": (request.body or b"")[:2000].decode("utf-8", "replace")}
        if not isinstance(posted, dict):
            posted = {"_invalid_json": posted}
    else:
        posted = {k: (v if len(v) > 1 else v[0]) for k, v in request.POST.lists()}
    meta = {"origin": origin, "embedded": foreign, "referrer": request.META.get("HTTP_REFERER", "")[:1000],
            "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300], "utm": {
                k: request.GET[k][:255] for k in actions.UTM if k in request.GET}}
    # «in the background»: only the form's checks run here; the payload is logged as queued for the worker
    entry = actions.submit(IntakeLog.Channel.FORM, posted, queue=form.mode == WebForm.Mode.BACKGROUND,
                           source=form.source, remote_addr=ip, meta=meta, form=form)
    if entry.status == IntakeLog.Status.REJECTED:
        code = (entry.meta or {}).get("code") or "validation_failed"
        status = 422 if code == "validation_failed" else (403 if code == "origin_not_allowed" else 400)
        if as_json:
            return JsonResponse({"code": code, "message": entry.reason, "fields": entry.errors}, status=status)
        values = {k: v for k, v in posted.items() if isinstance(v, str)}
        return _page(request, form, status=status, values=values, errors=entry.errors, problem=entry.reason)
    message = form.success_message or _("Thank you! We will contact you soon.")
    # 202: stored, processed later (by the worker when queued, by a replay when its processing crashed)
    status = 202 if entry.status in (IntakeLog.Status.QUEUED, IntakeLog.Status.PENDING) else 200
    if as_json:
        return JsonResponse({"ok": True, "message": message, "redirect": form.redirect_url or None}, status=status)
    if form.redirect_url:
        return redirect(form.redirect_url)
    return _page(request, form, status=status, done=message)


def embed_js(request: HttpRequest, slug: str) -> HttpResponse:
    """A script that renders the form where its <script> tag stands, on any allowed site."""
    form = _form(slug)
    with _language(form):
        definition = {
            "action": request.build_absolute_uri(f"/f/{form.slug}/"), "title": form.title or form.name,
            "description": form.description, "fields": [
                {k: f.get(k) for k in ("name", "label", "type", "required", "options", "placeholder")}
                for f in form.fields],
            "consent": form.consent_text, "button": form.button or _("Send"), "honeypot": HONEYPOT,
            "utm": list(actions.UTM), "sending": _("Sending…"), "failed": _("Could not send; please try again."),
        }
        body = render(request, "intake/embed.js", {"definition": json.dumps(definition, ensure_ascii=False)},
                      content_type="application/javascript; charset=utf-8")
    body["Cache-Control"] = "public, max-age=300"
    body["Access-Control-Allow-Origin"] = "*"  # the script itself is public; submissions are checked by origin
    return body


@csrf_exempt
@require_http_methods(["POST"])
def telegram_webhook(request: HttpRequest, secret: str) -> HttpResponse:
    """Telegram's setWebhook target. Answers 200 to anything it accepted (or already saw), so Telegram stops
    retrying; a malformed update is logged as rejected and answered 400."""
    bot = TelegramBot.objects.filter(secret=secret, is_active=True).first()
    if bot is None:
        raise Http404
    if bot.header_token and not hmac.compare_digest(
            request.headers.get("X-Telegram-Bot-Api-Secret-Token", ""), bot.header_token):
        return JsonResponse({"code": "forbidden", "message": _("Wrong secret token.")}, status=403)
    try:
        update = json.loads(request.body or b"")
        raw = ""
    except ValueError:
        update, raw = {}, (request.body or b"")[:MAX_BODY].decode("utf-8", "replace")
    from .telegram import update_external_id

    entry, new = actions.receive(IntakeLog.Channel.TELEGRAM, update if isinstance(update, dict) else {"_": update},
                                 raw=raw, source=bot.source, remote_addr=client_ip(request), bot=bot,
                                 external_id=update_external_id(bot.pk, update))
    if new:
        entry = actions.process(entry.pk)
    if entry.status == IntakeLog.Status.REJECTED:
        return JsonResponse({"code": (entry.meta or {}).get("code") or "validation_failed", "message": entry.reason,
                             "fields": entry.errors}, status=400)
    return JsonResponse({"ok": True, "status": entry.status})
