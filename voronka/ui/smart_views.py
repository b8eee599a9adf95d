"""Settings → Smart processes: define, rename and delete the kinds of records administrators add at run time.

Their items need no screens of their own: the generic list, board and card (``record_views``) serve every
type the registry knows (``entities.smart_ui``).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from voronka.core import policies
from voronka.core.errors import ActionError
from voronka.items import actions
from voronka.items.models import LINKABLE, SmartType
from voronka.pipelines.models import Pipeline

from .views import action_error, actor_of, page


def _admin(request):
    actor = actor_of(request)
    if not policies.can(actor, actions.SETTINGS, 0):
        raise DjangoPermissionDenied
    return actor


def _form_data(request) -> dict:
    data = {"name": request.POST.get("name", ""), "links": [x for x in request.POST.getlist("links") if x],
            "use_opportunity": bool(request.POST.get("use_opportunity"))}
    if request.POST.get("name_plural", "").strip():
        data["name_plural"] = request.POST["name_plural"]
    return data


def _link_choices():
    from voronka.core import entity_types

    return [(code, entity_types.by_code(code).label_plural.capitalize()) for code in LINKABLE]


@login_required
def types(request):
    actor = _admin(request)
    if request.method == "POST":
        data = _form_data(request)
        if request.POST.get("code", "").strip():
            data["code"] = request.POST["code"].strip()
        try:
            actions.create_type(actor, **data)
        except ActionError as exc:
            action_error(request, exc)
        else:
            messages.success(request, _("Smart process created with a default pipeline."))
            return redirect("ui:smart_types")
    rows = []
    for t in SmartType.objects.all():
        rows.append({"t": t, "pipelines": Pipeline.objects.filter(entity_type_id=t.id).prefetch_related("stages")})
    return page(request, "ui/settings/types.html", {"rows": rows, "links": _link_choices(),
                                                   "values": request.POST if request.method == "POST" else {}},
                nav="smart_types")


@login_required
def type_edit(request, pk: int):
    actor = _admin(request)
    t = SmartType.objects.filter(pk=pk).first()
    if t is None:
        raise Http404
    if request.method == "POST":
        try:
            actions.update_type(actor, t.pk, **_form_data(request))
        except ActionError as exc:
            action_error(request, exc)
        else:
            messages.success(request, _("Saved."))
            return redirect("ui:smart_types")
    return page(request, "ui/settings/type_edit.html", {"t": t, "links": _link_choices()}, nav="smart_types")


@login_required
@require_POST
def type_delete(request, pk: int):
    actor = _admin(request)
    try:
        actions.delete_type(actor, pk)
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Smart process deleted."))
    return redirect("ui:smart_types")
