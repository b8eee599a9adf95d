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

from voronka.core.stacks import ShortStack

PREFIX = "/f/"


def form_door(request) -> bool:
    return request.path_info.startswith(PREFIX)


class FormDoorStack(ShortStack):
    """A request to a public form runs ``FORM_DOOR_MIDDLEWARE`` around the view dispatch; any other the list below
    this one. Unset (or a chain this class does not know): every request takes the full list."""

    setting = "FORM_DOOR_MIDDLEWARE"

    def wants(self, request) -> bool:
        return form_door(request)
