"""Errors that actions raise. Every edge (API, UI, CLI) turns them into a clear message."""

from __future__ import annotations


class ActionError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.message = str(message)
        if code:
            self.code = code
        self.fields = {k: [str(m) for m in v] for k, v in (fields or {}).items()}

    def as_dict(self) -> dict:
        data: dict = {"code": self.code, "message": self.message}
        if self.fields:
            data["fields"] = self.fields
        return data


class ValidationFailed(ActionError):
    status = 422
    code = "validation_failed"


class PermissionDenied(ActionError):
    status = 403
    code = "forbidden"


class NotFound(ActionError):
    status = 404
    code = "not_found"


class Conflict(ActionError):
    status = 409
    code = "conflict"


def from_django_validation(exc, message: str = "Some fields are not valid.") -> ValidationFailed:
    """Turn a django.core.exceptions.ValidationError into ValidationFailed."""
    if hasattr(exc, "error_dict"):
        fields = {("_" if k == "__all__" else k): [m for e in v for m in e.messages] for k, v in exc.error_dict.items()}
        return ValidationFailed(message, fields=fields)
    return ValidationFailed("; ".join(exc.messages))
