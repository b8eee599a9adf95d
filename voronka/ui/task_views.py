"""My tasks (overdue first) and the task card."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from voronka.activities import recurrence
from voronka.activities import selectors as task_selectors
from voronka.activities.actions import cancel_task, complete_task, decide_task, update_task
from voronka.core.errors import ActionError, NotFound, ValidationFailed

from .entities import BY_TYPE
from .views import action_error, actor_of, page


@login_required
def my_tasks(request):
    now = timezone.now()
    show = request.GET.get("show", "open")
    tasks = task_selectors.my_tasks(actor_of(request), show=show)
    for t in tasks:
        ui = BY_TYPE.get(t.entity_type_id)
        t.record_url = f"/crm/{ui.url}/{t.entity_id}/" if ui else ""
    return page(request, "ui/tasks/list.html", {"tasks": tasks, "show": show, "now": now}, nav="tasks")


@login_required
def task_card(request, pk: int):
    try:
        task = task_selectors.task_for(actor_of(request), pk)
    except NotFound:
        return page(request, "ui/tasks/not_found.html", {}, nav="tasks", status=404)
    ui = BY_TYPE.get(task.entity_type_id)
    record_url = f"/crm/{ui.url}/{task.entity_id}/" if ui else ""
    return page(request, "ui/tasks/card.html", {"task": task, "record_url": record_url,
                                                "observers": task.observers.all()}, nav="tasks")


@login_required
@require_POST
def task_complete(request, pk: int):
    return _act(request, pk, lambda actor: complete_task(actor, pk, result=request.POST.get("result", "")),
                _("Task completed."))


def _act(request, pk: int, call, done: str):
    """Run one task action for the signed-in user, say how it went, and go back to the task card."""
    try:
        call(actor_of(request))
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, done)
    return redirect("ui:task", pk=pk)


@login_required
@require_POST
def task_decide(request, pk: int):
    """Approve or reject an approval task; its record moves to the stage the approval names."""
    return _act(request, pk, lambda actor: decide_task(actor, pk, outcome=request.POST.get("outcome", ""),
                                                       comment=request.POST.get("comment", "")),
                _("Decision saved."))


def recurrence_from_form(post, deadline) -> str:
    """The form's «repeat» choice as a rule: a preset at the deadline's time, a cron expression, or none."""
    repeat = post.get("repeat", "")
    if not repeat:
        return ""
    if repeat == "cron":
        return post.get("cron", "")
    try:
        return recurrence.from_preset(repeat, deadline)
    except recurrence.RecurrenceError as exc:
        raise ValidationFailed(str(exc), fields={"recurrence": [str(exc)]}) from None


@login_required
@require_POST
def task_cancel(request, pk: int):
    return _act(request, pk, lambda actor: cancel_task(actor, pk, reason=request.POST.get("reason", "")),
                _("Task cancelled."))


@login_required
@require_POST
def task_recurrence(request, pk: int):
    def call(actor):
        task = task_selectors.task_for(actor, pk)
        update_task(actor, pk, recurrence=recurrence_from_form(request.POST, task.deadline))

    return _act(request, pk, call, _("The repetition is saved."))
