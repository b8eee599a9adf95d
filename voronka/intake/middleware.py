"""The public form door's own middleware stack.

A request under ``/f/`` (a web form's page, its submissions, the CORS preflight, the embed script) is anonymous,
exempt from CSRF and from ``X-Frame-Options`` (the form is embedded in other sites), and sets no cookie: the
browser stack's session, session user, CSRF cookie, flash messages, static files and htmx steps did nothing for it
but cost their work on every submission (about a tenth of one). ``FormDoorStack`` (second in ``MIDDLEWARE``, after
the token API's switch) sends such a request through ``FORM_DOOR_MIDDLEWARE`` around the same view dispatch
(URL resolution, the view middleware, the view): the request's versions scope, the security headers, the language
(the form's own, else the visitor's), the host check and the common headers, the default time zone and an anonymous
``request.user``. The rate limit, CORS and the form's language are the view's own (``views.py``). Every other
request takes the full list. A new middleware the form door needs goes into both lists.
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

PREFIX = "/f/"


def _dispatch(get_response):
    """The view dispatch at the bottom of a middleware chain (Django wraps each layer with
    ``convert_exception_to_response``, whose ``__wrapped__`` is the layer; each layer keeps its ``get_response``;
    the bottom is the handler's bound ``_get_response``), or None for a chain of another shape."""
    step = get_response
    for _ in range(100):
        layer = getattr(step, "__wrapped__", None)
        if layer is None:
            return None
        if getattr(layer, "__name__", "") == "_get_response" and hasattr(layer, "__self__"):
            return step
        step = getattr(layer, "get_response", None)
    return None


def form_door(request) -> bool:
    return request.path_info.startswith(PREFIX)


class FormDoorStack:
    """A request to a public form runs ``FORM_DOOR_MIDDLEWARE`` around the view dispatch; any other the list below
    this one. Unset (or a chain this class does not know): every request takes the full list."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.short = None
        paths = getattr(settings, "FORM_DOOR_MIDDLEWARE", None)
        dispatch = _dispatch(get_response) if paths else None
        if dispatch is None:
            return
        chain = dispatch
        for path in reversed(paths):
            chain = convert_exception_to_response(import_string(path)(chain))
        self.short = chain

    def __call__(self, request):
        if self.short is not None and request.path_info.startswith(PREFIX):
            return self.short(request)
        return self.get_response(request)
