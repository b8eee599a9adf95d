"""The error envelope of the Bitrix24 REST API: ``{"error": CODE, "error_description": TEXT}`` with a status."""

from __future__ import annotations

from django.utils.translation import gettext as _

from voronka.core.errors import ActionError, NotFound, PermissionDenied


class B24Error(Exception):
    def __init__(self, description: str, code: str = "", status: int = 400, **extra):
        super().__init__(description)
        self.description = str(description)
        self.code = code
        self.status = status
        self.extra = extra

    def as_dict(self) -> dict:
        return {"error": self.code, "error_description": self.description, **self.extra}


def method_not_found() -> B24Error:
    return B24Error("Method not found!", "ERROR_METHOD_NOT_FOUND", 404)


def no_auth() -> B24Error:
    return B24Error("Wrong authorization data", "NO_AUTH_FOUND", 401)


def invalid_credentials() -> B24Error:
    return B24Error("Invalid request credentials", "INVALID_CREDENTIALS", 401)


def insufficient_scope() -> B24Error:
    return B24Error("The request requires higher privileges than provided by the webhook token",
                    "insufficient_scope", 401)


def https_required() -> B24Error:
    return B24Error("Https required.", "INVALID_REQUEST", 401)


def from_action(exc: ActionError, not_found: str = "Not found") -> B24Error:
    """A Voronka action error as a legacy CRM method error (HTTP 400, empty code, the text in the description)."""
    if isinstance(exc, NotFound):
        return B24Error(not_found)
    if isinstance(exc, PermissionDenied):
        return B24Error("Access denied.")
    text = exc.message
    if exc.fields:
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
        text = f"{text} ({details})"
    return B24Error(text)


def bad_param(name: str) -> B24Error:
    return B24Error(_("Parameter '%(name)s' must be array.") % {"name": name})
