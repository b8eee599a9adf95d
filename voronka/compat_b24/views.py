"""The transport: ``/rest/<user>/<secret>/<method>[.json]``, parameters, the envelope, ``batch``.

Everything a method raises ends up in the spec's error envelope; an unexpected exception is logged
and answered with ``ERROR_CORE`` 500 without a traceback.
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.core.serializers.json import DjangoJSONEncoder
from django.db import OperationalError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from voronka.core.actor import Actor
from voronka.core.errors import ActionError

from . import crm, errors, php, registry
from .errors import B24Error
from .models import Webhook, hash_secret
from .params import get, php_true

log = logging.getLogger(__name__)

BATCH_MAX = 50
LOCK_RETRIES = 30
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "origin, content-type, accept",
         "X-Content-Type-Options": "nosniff"}
PEELED = {"start", "state", "auth", "aplogin", "ap"}


def time_block(started: float, processing_started: float | None = None) -> dict:
    finished = time.time()
    tz = timezone.get_current_timezone()

    def iso(ts: float) -> str:
        import datetime as dt

        return dt.datetime.fromtimestamp(ts, tz).isoformat(timespec="seconds")

    return {"start": started, "finish": finished, "duration": finished - started,
            "processing": finished - (processing_started or started),
            "date_start": iso(started), "date_finish": iso(finished)}


def _json(body: dict, status: int = 200) -> HttpResponse:
    resp = HttpResponse(json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False),
                        content_type="application/json; charset=utf-8", status=status)
    for k, v in _CORS.items():
        resp[k] = v
    return resp


def _error(exc: B24Error) -> HttpResponse:
    return _json(exc.as_dict(), exc.status)


# ---- parameters ------------------------------------------------------------------------------------

def request_params(request: HttpRequest) -> dict:
    params = php.parse_str(request.META.get("QUERY_STRING", ""))
    if request.method == "POST":
        ctype = (request.content_type or "").split(";")[0].strip().lower()
        body: Any = None
        if ctype == "multipart/form-data":
            body = php.parse_pairs((k, v) for k, values in request.POST.lists() for v in values)
        elif ctype == "application/json":
            try:
                body = json.loads(request.body or b"null")
            except (ValueError, UnicodeDecodeError):
                body = None
        else:
            try:
                body = php.parse_str(request.body.decode("utf-8"))
            except UnicodeDecodeError:
                raise B24Error("Wrong request encoding", "WRONG_ENCODING") from None
        if isinstance(body, list):
            body = {str(i): v for i, v in enumerate(body)}
        if isinstance(body, dict):
            params.update(body)
    return params


def _start(params: dict) -> int:
    raw = params.pop("start", None)
    for key in PEELED:
        params.pop(key, None)
    try:
        return int(str(raw)) if raw not in (None, "") else 0
    except ValueError:
        return 0


# ---- authentication --------------------------------------------------------------------------------

def _plain_http_allowed(request: HttpRequest) -> bool:
    if request.is_secure() or settings.VORONKA_B24_ALLOW_HTTP:
        return True
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def authenticate(request: HttpRequest, uid: str, secret: str) -> Webhook:
    from voronka.identity.models import User

    if not uid or not secret:
        raise errors.no_auth()
    if not _plain_http_allowed(request):
        raise errors.https_required()
    if uid.isdigit():
        user_q = {"user_id": int(uid)}
    else:
        user = User.objects.filter(username=uid, is_active=True).only("pk").first()
        if user is None:
            raise errors.invalid_credentials()
        user_q = {"user_id": user.pk}
    digest = hash_secret(secret)
    hook = (Webhook.objects.select_related("user").filter(secret_hash=digest, is_active=True, **user_q).first())
    if hook is None or not hmac.compare_digest(hook.secret_hash, digest):
        raise errors.invalid_credentials()
    if not hook.user.is_active:
        raise B24Error("Unable to authorize user", "authorization_error", 401)
    now = timezone.now()
    if hook.last_used_at is None or (now - hook.last_used_at).total_seconds() > 60:
        Webhook.objects.filter(pk=hook.pk).update(last_used_at=now)
    return hook


# ---- calling methods -------------------------------------------------------------------------------

def run(call: registry.Call, name: str, params: dict) -> Any:
    """Run one method with the scope check; returns the method's result (maybe a ListResult)."""
    method = registry.find(name)
    if method is None:
        raise errors.method_not_found()
    if method.scope and method.scope not in (call.webhook.scopes or []):
        raise errors.insufficient_scope()
    try:
        return retrying(lambda: method.fn(call, params))  # writes are transactions of their own (the actions)
    except ActionError as exc:
        raise errors.from_action(exc) from None


def retrying(fn):
    """SQLite answers "locked" when another writer holds the database longer than its busy timeout (or at
    once, for the shared-cache in-memory database of tests): the call is retried, since nothing of it was
    written."""
    for attempt in range(LOCK_RETRIES + 1):
        try:
            return fn()
        except OperationalError as exc:
            if "locked" not in str(exc) or attempt == LOCK_RETRIES or transaction.get_connection().in_atomic_block:
                raise
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


def envelope(result: Any, started: float, processing_started: float) -> dict:
    body: dict = {}
    if isinstance(result, registry.ListResult):
        body["result"] = result.result
        if result.next is not None:
            body["next"] = result.next
        if result.total is not None:
            body["total"] = result.total
    else:
        body["result"] = result
    body["time"] = time_block(started, processing_started)
    return body


@csrf_exempt
def endpoint(request: HttpRequest, uid: str = "", secret: str = "", method: str = "") -> HttpResponse:
    started = time.time()
    if request.method == "OPTIONS":
        return _json({"result": True})
    name = re.sub(r"\.(json|xml)$", "", method.strip("/"), flags=re.IGNORECASE)
    try:
        hook = authenticate(request, uid, secret)
        if request.method not in ("GET", "POST", "HEAD"):
            raise B24Error("Method not allowed", "ERROR_METHOD_NOT_ALLOWED", 405)
        params = request_params(request)
        actor = dataclasses.replace(Actor.for_user(hook.user, "b24"), ip=(request.META.get("REMOTE_ADDR") or "")[:45])
        scheme = "https" if request.is_secure() else "http"
        call = registry.Call(actor=actor, webhook=hook, base_url=f"{scheme}://{request.get_host()}/rest/",
                             host=request.get_host())
        call = call.with_start(_start(params))
        processing = time.time()
        if name.lower() == "batch":
            result = batch(call, params)
        else:
            result = run(call, name, params)
        return _json(envelope(result, started, processing))
    except B24Error as exc:
        return _error(exc)
    except php.ParamError as exc:
        return _error(B24Error(str(exc), "ERROR_ARGUMENT"))
    except (RequestDataTooBig, TooManyFieldsSent):
        return _error(B24Error("The request is too large", "ERROR_ARGUMENT", 413))
    except Exception:  # never a traceback to the caller
        log.exception("b24 method %s failed", name)
        return _error(B24Error("Internal error", "ERROR_CORE", 500))


@csrf_exempt
def no_credentials(request: HttpRequest, method: str = "") -> HttpResponse:
    """``/rest/<method>`` without a webhook in the path (OAuth applications are not supported)."""
    return _error(errors.no_auth())


# ---- batch -----------------------------------------------------------------------------------------

_REF = re.compile(r"\$(result|next|total|time|error)((?:\[[^\]]*\])+)")
_REF_PARTS = re.compile(r"\[([^\]]*)\]")


def _walk(value: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            break  # stops at the first missing key: the value walked so far is used
    return value


def _resolve(value: Any, sections: dict) -> Any:
    if isinstance(value, dict):
        return {_resolve(k, sections) if isinstance(k, str) else k: _resolve(v, sections) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, sections) for v in value]
    if not isinstance(value, str) or "$" not in value:
        return value

    def lookup(m: re.Match) -> Any:
        path = _REF_PARTS.findall(m.group(2))
        section = sections[m.group(1)]
        if not path or path[0] not in section:
            return None
        return _walk(section[path[0]], path[1:])

    whole = _REF.fullmatch(value)
    if whole:
        found = lookup(whole)
        return found if found is not None else value

    def inline(m: re.Match) -> str:
        found = lookup(m)
        return str(found) if isinstance(found, str | int | float) and not isinstance(found, bool) else m.group(0)

    return _REF.sub(inline, value)


def _method_name(path: str) -> str:
    return re.sub(r"\.(json|xml)$", "", path.strip().strip("/"), flags=re.IGNORECASE)


class _AddGroup(list):
    """Consecutive ``crm.<entity>.add`` commands without references: written together by ``add_many``."""

    def __init__(self, entity: str):
        super().__init__()
        self.entity = entity


_ADD = re.compile(r"^crm\.(lead|deal|contact|company)\.add$", re.IGNORECASE)


def _plan(cmd: dict, halt: bool) -> list:
    """The commands in order: (key, command) pairs, (key, None) past the limit, and groups of plain adds.

    Adds are grouped only without ``halt`` (with it, a failing add must stop the ones after it)."""
    plan: list = []
    executed = 0
    for key, command in cmd.items():
        if not isinstance(command, str):
            continue
        if executed >= BATCH_MAX:
            plan.append((key, None))
            continue
        executed += 1
        parts = urlsplit(command)
        m = _ADD.match(_method_name(parts.path))
        query = unquote(parts.query)
        if m and not halt and "$" not in query and "contact_ids" not in query.lower():  # CONTACT_IDS: links too
            entity = m.group(1).lower()
            if not (plan and isinstance(plan[-1], _AddGroup) and plan[-1].entity == entity):
                plan.append(_AddGroup(entity))
            plan[-1].append((key, parts.query))
            continue
        plan.append((key, command))
    return plan


def _store(sections: dict, key: str, result: Any, started: float) -> None:
    if isinstance(result, registry.ListResult):
        sections["result"][key] = result.result
        if result.total is not None:
            sections["total"][key] = result.total
        if result.next is not None:
            sections["next"][key] = result.next
    else:
        sections["result"][key] = result
    sections["time"][key] = time_block(started)


def _run_add_group(call: registry.Call, group: _AddGroup, sections: dict) -> None:
    from . import crm

    started = time.time()
    method = registry.find(f"crm.{group.entity}.add")
    keys, many = [], []
    for key, query in group:
        keys.append(key)
        try:
            many.append(php.parse_str(query))
        except php.ParamError as exc:
            sections["error"][key] = B24Error(str(exc), "ERROR_ARGUMENT").as_dict()
            keys.pop()
    if method.scope and method.scope not in (call.webhook.scopes or []):
        for key in keys:
            sections["error"][key] = errors.insufficient_scope().as_dict()
        return
    for params in many:
        _start(params)
    try:
        outcomes = retrying(lambda: crm.add_many(crm.ENTITIES[group.entity], call, many))
    except ActionError as exc:
        outcomes = [errors.from_action(exc)] * len(keys)
    for key, outcome in zip(keys, outcomes, strict=True):
        if isinstance(outcome, B24Error):
            sections["error"][key] = outcome.as_dict()
            sections["time"][key] = time_block(started)
        else:
            _store(sections, key, outcome, started)


READS = ("list", "get", "fields", "current", "types", "profile", "time", "scope", "methods")


def batch(call: registry.Call, params: dict) -> dict:
    cmd = get(params, "cmd")
    halt = php_true(get(params, "halt", 0))
    if isinstance(cmd, list):
        cmd = {str(i): v for i, v in enumerate(cmd)}
    if not isinstance(cmd, dict):
        cmd = {}
    results: dict = {}
    errs: dict = {}
    totals: dict = {}
    nexts: dict = {}
    times: dict = {}
    sections = {"result": results, "error": errs, "total": totals, "next": nexts, "time": times}
    plan = _plan(cmd, halt)
    for group in plan:
        if isinstance(group, _AddGroup):
            crm.forget_pages(call)
            _run_add_group(call, group, sections)
            continue
        key, command = group
        if command is None:
            errs[key] = {"error": "ERROR_BATCH_LENGTH_EXCEEDED", "error_description": "Max batch length exceeded"}
            continue
        started = time.time()
        parts = urlsplit(command)
        name = _method_name(parts.path)
        if name.lower().rsplit(".", 1)[-1] not in READS:
            crm.forget_pages(call)  # a write: pages read before it are not reused after it
        try:
            if name.lower() in ("batch", "upload", "download"):
                raise B24Error("Method is not allowed for batch usage", "ERROR_BATCH_METHOD_NOT_ALLOWED", 405)
            sub = _resolve(php.parse_str(parts.query), sections)
            if not isinstance(sub, dict):
                sub = {}
            sub_call = call.with_start(_start(sub))
            result = run(sub_call, name, sub)
        except (B24Error, php.ParamError) as exc:
            if isinstance(exc, php.ParamError):
                exc = B24Error(str(exc), "ERROR_ARGUMENT")
            errs[key] = exc.as_dict()
            times[key] = time_block(started)
            if halt:
                break
            continue
        _store(sections, key, result, started)
    return {"result": php.json_shape(results), "result_error": php.json_shape(errs),
            "result_total": php.json_shape(totals), "result_next": php.json_shape(nexts),
            "result_time": php.json_shape(times)}
