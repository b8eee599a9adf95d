"""Public endpoints of automation, reached by outside systems and clients' mail programs (no login):

- ``POST /hooks/trigger/<id>/<secret>/`` — an incoming webhook trigger (F37) with the record's id as ``id``
  (JSON body, form field or query parameter); 202 when accepted, 404 for a wrong address or record, 400 for
  a missing id;
- ``GET /t/o/<token>/`` — the opening pixel of a robot's e-mail (a 1×1 GIF, always);
- ``GET /t/c/<token>/`` — a link of a robot's e-mail: recorded, then redirected to the signed address.
"""

from __future__ import annotations

import base64
import json

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from voronka.automation import actions
from voronka.core.clientip import client_ip
from voronka.core.errors import ActionError

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@csrf_exempt
@require_http_methods(["POST"])
def trigger_hook(request, pk: int, secret: str):
    item_id = request.GET.get("id")
    if item_id is None and "json" in (request.content_type or ""):
        try:
            body = json.loads(request.body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, ValueError):
            return JsonResponse({"detail": _("The body is not valid JSON.")}, status=400)
        item_id = body.get("id") if isinstance(body, dict) else None
    elif item_id is None:
        item_id = request.POST.get("id")
    if item_id is None:
        return JsonResponse({"detail": _("Give the record's id as «id»."), "fields": {"id": [_("required")]}},
                            status=400)
    try:
        result = actions.call_trigger(pk, secret, item_id, ip=client_ip(request))
    except ActionError as exc:
        return JsonResponse({"detail": exc.message, "fields": exc.fields or {}}, status=exc.status)
    return JsonResponse(result, status=202)


@require_GET
def email_opened(request, token: str):
    actions.record_email_event(token, "opened")
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def email_clicked(request, token: str):
    url = actions.record_email_event(token, "clicked")
    if not url:
        return HttpResponse(_("This link is not valid."), status=404, content_type="text/plain; charset=utf-8")
    return HttpResponseRedirect(url)
