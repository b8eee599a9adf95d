"""URLs of /api/v1/: Ninja's routes, with every non-JSON answer of the URL layer turned into JSON."""

from __future__ import annotations

import functools

from django.http import HttpResponse, JsonResponse
from django.urls import URLPattern, URLResolver, re_path
from django.utils.translation import gettext as _

from .api import api
from .errors import body


def _json_method_errors(view):
    """Ninja answers a known path with an unknown method by a bare 405; answer it in the API's shape."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            response = JsonResponse(body("method_not_allowed",
                                         _("Method %(m)s is not allowed here; use %(allowed)s.") % {
                                             "m": request.method, "allowed": allowed}), status=405)
            response["Allow"] = allowed
        return response

    return wrapper


def _wrap(patterns):
    for p in patterns:
        if isinstance(p, URLPattern):
            p.callback = _json_method_errors(p.callback)
        elif isinstance(p, URLResolver):
            _wrap(p.url_patterns)
    return patterns


def not_found(request, rest: str = "") -> HttpResponse:
    return JsonResponse(body("not_found", _("There is no such API address: %(path)s") % {"path": request.path}),
                        status=404)


ninja_patterns, _ninja_app, namespace = api.urls
app_name = namespace  # include("voronka.api.urls") then registers the namespace Ninja reverses in
urlpatterns = [
    *_wrap(list(ninja_patterns)),
    re_path(r"^(?P<rest>.*)$", not_found),
]
