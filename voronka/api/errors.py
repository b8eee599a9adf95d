"""Every answer of the API that is not a success has one JSON shape:

    {"code": "validation_failed", "message": "A sentence a person understands.", "fields": {"title": ["…"]}}

Action errors keep their own status (422, 403, 404, 409); Ninja's validation of the request
(types, missing or broken body, query parameters) is turned into the same shape here, with
messages in the user's language where pydantic's English would otherwise leak through.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DataError, IntegrityError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from voronka.core.errors import ActionError, ValidationFailed

log = logging.getLogger("voronka.api")

ROOT = "_"  # the key of errors that concern the whole body, as in core.errors.from_django_validation


class NotAuthenticated(ActionError):
    status = 401
    code = "unauthorized"


class BadRequest(ActionError):
    status = 400
    code = "bad_request"


def body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"code": code, "message": str(message), "fields": fields or {}}


def respond(api: NinjaAPI, request: HttpRequest, status: int, code: str, message: str,
            fields: dict[str, list[str]] | None = None) -> HttpResponse:
    response = api.create_response(request, body(code, message, fields), status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="voronka"'
    return response


# --- pydantic errors in the user's language -------------------------------------------------------

def _message(error: dict) -> str:
    kind = error.get("type", "")
    ctx: dict[str, Any] = error.get("ctx") or {}
    messages = {
        "missing": _("This field is required."),
        "extra_forbidden": _("Unknown field."),
        "string_type": _("Must be text."),
        "string_too_long": _("At most %(n)s characters.") % {"n": ctx.get("max_length")},
        "string_too_short": _("At least %(n)s characters.") % {"n": ctx.get("min_length")},
        "too_long": _("At most %(n)s items.") % {"n": ctx.get("max_length")},
        "too_short": _("At least %(n)s items.") % {"n": ctx.get("min_length")},
        "int_type": _("Must be a whole number."),
        "int_parsing": _("Must be a whole number."),
        "int_from_float": _("Must be a whole number."),
        "float_type": _("Must be a number."),
        "float_parsing": _("Must be a number."),
        "decimal_type": _("Must be a number."),
        "decimal_parsing": _("Must be a number."),
        "finite_number": _("Must be a finite number."),
        "bool_type": _("Must be true or false."),
        "bool_parsing": _("Must be true or false."),
        "date_type": _("Must be a date like 2026-01-31."),
        "date_parsing": _("Must be a date like 2026-01-31."),
        "date_from_datetime_parsing": _("Must be a date like 2026-01-31."),
        "date_from_datetime_inexact": _("Must be a date like 2026-01-31."),
        "datetime_type": _("Must be a date and time like 2026-01-31T10:00:00+03:00."),
        "datetime_parsing": _("Must be a date and time like 2026-01-31T10:00:00+03:00."),
        "datetime_from_date_parsing": _("Must be a date and time like 2026-01-31T10:00:00+03:00."),
        "greater_than_equal": _("Must be at least %(n)s.") % {"n": ctx.get("ge")},
        "greater_than": _("Must be more than %(n)s.") % {"n": ctx.get("gt")},
        "less_than_equal": _("Must be at most %(n)s.") % {"n": ctx.get("le")},
        "less_than": _("Must be less than %(n)s.") % {"n": ctx.get("lt")},
        "literal_error": _("Must be one of: %(choices)s.") % {"choices": ctx.get("expected", "")},
        "enum": _("Must be one of: %(choices)s.") % {"choices": ctx.get("expected", "")},
        "dict_type": _("Must be an object."),
        "model_type": _("Must be an object."),
        "model_attributes_type": _("Must be an object."),
        "list_type": _("Must be a list."),
        "json_invalid": _("Is not valid JSON."),
    }
    if kind == "value_error" and ctx.get("error"):
        return str(ctx["error"])  # raised by our own validators, already in the user's language
    return str(messages.get(kind) or error.get("msg") or _("The value is not valid."))


def _strip(loc: tuple) -> tuple:
    """("body", "payload", "phones", 0, "str") → ("phones", 0, "str"); ("query", "limit") → ("limit",)."""
    rest = tuple(loc[1:])
    if loc and loc[0] == "body" and rest and isinstance(rest[0], str):
        rest = rest[1:]  # the name of the view's body parameter is not part of the request
    return rest


def fields_from(errors: list[dict], strip=_strip) -> dict[str, list[str]]:
    """Pydantic errors as {field: [messages]}. A value that fits no member of a union (a phone given
    neither as text nor as an object) gets the first message only, not one per member."""
    fields: dict[str, list[str]] = {}
    deep_seen: set[str] = set()
    for error in errors:
        loc = strip(tuple(error.get("loc") or ()))
        name = str(loc[0]) if loc else ROOT
        if len(loc) > 1:
            if name in deep_seen:
                continue
            deep_seen.add(name)
        message = _message(error)
        if message not in fields.setdefault(name, []):
            fields[name].append(message)
    return fields


def item_fields(exc) -> dict[str, list[str]]:
    """The fields of a pydantic.ValidationError raised for one item of a bulk call."""
    return fields_from(exc.errors(include_url=False), strip=tuple)


def validation_response(api: NinjaAPI, request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = list(exc.errors)
    sources = {str((e.get("loc") or ("body",))[0]) for e in errors}
    if "path" in sources:
        return respond(api, request, 404, "not_found", _("Nothing is found at this address."))
    if any(e.get("type") == "missing" and e.get("loc", ())[:1] == ("body",) and not _strip(tuple(e["loc"]))
           for e in errors):
        return respond(api, request, 400, "body_required", _("The request needs a JSON object in its body."),
                       {ROOT: [_("The body is empty.")]})
    fields = fields_from(errors)
    if "body" in sources:
        return respond(api, request, 422, "validation_failed", _("Some fields are not valid."), fields)
    return respond(api, request, 400, "bad_request", _("Some parameters of the request are not valid."), fields)


# --- text that no database accepts -------------------------------------------------------------

def _bad_text(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_bad_text(k) or _bad_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_text(v) for v in value)
    return False


def text_errors(data: dict) -> dict[str, list[str]]:
    """Fields whose text holds a NUL character or a lone surrogate: PostgreSQL refuses both, so refuse them first.
    Custom fields are named as the actions name them, ``custom.<code>``."""
    errors: dict[str, list[str]] = {}
    for key, value in data.items():
        if key == "custom" and isinstance(value, dict) and not _bad_text(key):
            errors.update(text_errors({f"custom.{k}": v for k, v in value.items()}))
        elif _bad_text(key) or _bad_text(value):
            errors[str(key).encode("utf-8", "replace").decode().replace("\x00", "?")] = [
                _("Contains characters that are not allowed.")]
    return errors


def check_text(data: dict) -> None:
    errors = text_errors(data)
    if errors:
        raise ValidationFailed(_("Some fields are not valid."), fields=errors)


# --- the handlers ------------------------------------------------------------------------------

def install(api: NinjaAPI) -> None:
    def on_action_error(request, exc: ActionError):
        return respond(api, request, exc.status, exc.code, exc.message, exc.fields)

    def on_validation(request, exc: NinjaValidationError):
        return validation_response(api, request, exc)

    def on_http_error(request, exc: HttpError):
        if isinstance(exc, AuthenticationError):
            return respond(api, request, 401, "unauthorized",
                           _("Authentication required: send «Authorization: Bearer <token>» or «X-Api-Key: <token>»."))
        if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
            return respond(api, request, 400, "invalid_json", _("The request body is not valid JSON."),
                           {ROOT: [_("Not valid JSON.")]})
        if exc.status_code == 403:
            return respond(api, request, 403, "forbidden", _("You do not have the right to do this."))
        if exc.status_code == 429:
            return respond(api, request, 429, "throttled", _("Too many requests; try again a little later."))
        return respond(api, request, exc.status_code, "http_error", str(exc))

    def on_integrity(request, exc: IntegrityError):
        log.warning("integrity error in the API: %s", exc)
        return respond(api, request, 409, "conflict", _("The change conflicts with data saved meanwhile; try again."))

    def on_data_error(request, exc: Exception):
        log.warning("value refused by the database: %s", exc)
        return respond(api, request, 422, "validation_failed", _("A value is out of the range the database can store."))

    def on_operational(request, exc: OperationalError):
        log.exception("database unavailable")
        response = respond(api, request, 503, "unavailable", _("The database is busy; try again in a moment."))
        response["Retry-After"] = "1"
        return response

    def on_anything(request, exc: Exception):
        log.exception("unexpected error in %s %s", request.method, request.path)
        return respond(api, request, 500, "server_error", _("Something went wrong on the server; it has been logged."))

    api.add_exception_handler(ActionError, on_action_error)
    api.add_exception_handler(NinjaValidationError, on_validation)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(IntegrityError, on_integrity)
    api.add_exception_handler(DataError, on_data_error)
    api.add_exception_handler(OverflowError, on_data_error)
    api.add_exception_handler(OperationalError, on_operational)
    api.add_exception_handler(Exception, on_anything)
