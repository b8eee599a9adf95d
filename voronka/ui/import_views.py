"""The import screens (F52): upload → mapping with suggestions → preview → start → progress → report."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from voronka.core import policies
from voronka.core.errors import ActionError
from voronka.imports import actions, runner
from voronka.imports import mapping as mp
from voronka.imports.models import ImportJob

from .views import action_error, actor_of, page


def _labels() -> dict[str, str]:
    from voronka.core import entity_types

    entity_types.all_types()  # custom lists are import types too
    return {"contacts": _("Contacts"), "companies": _("Companies"), "leads": _("Leads"), "deals": _("Deals"),
            **{i.code: i.label_plural.capitalize() for i in mp.custom_lists()}}


def can_import(actor) -> bool:
    return any(policies.can(actor, policies.ADD, t) for t in mp.TYPES.values())


def _types(actor) -> list[tuple[str, str]]:
    labels = _labels()
    return [(code, labels[code]) for code, t in mp.TYPES.items() if policies.can(actor, policies.ADD, t)]


@login_required
def imports(request):
    actor = actor_of(request)
    if not can_import(actor):
        return page(request, "ui/imports/message.html", {
            "text": _("You do not have the right to add records, so you cannot import.")}, nav="imports", status=403)
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            action_error(request, ActionError(_("Choose a file to import.")))
        else:
            try:
                job = actions.create_job(actor, file=upload, file_name=upload.name, type=request.POST.get("type"),
                                         mode=request.POST.get("mode") or ImportJob.Mode.MATCH_OR_CREATE)
                return redirect("ui:import", pk=job.pk)
            except ActionError as exc:
                action_error(request, exc)
    return page(request, "ui/imports/list.html", {
        "jobs": actions.jobs_of(actor), "types": _types(actor), "modes": ImportJob.Mode.choices}, nav="imports")


def _job(request, pk):
    actor = actor_of(request)
    try:
        return actor, actions.get_job(actor, pk)
    except ActionError:
        return actor, None


@login_required
def job_view(request, pk: int):
    actor, job = _job(request, pk)
    if job is None:
        return page(request, "ui/imports/message.html", {
            "text": _("This import does not exist or is not available to you.")}, nav="imports", status=404)
    if request.method == "POST" and job.status == ImportJob.Status.DRAFT:
        column_map = {h: request.POST.get(f"col-{i}", "") for i, h in enumerate(job.headers)}
        try:
            actions.configure(actor, job, mapping=column_map, mode=request.POST.get("mode") or job.mode)
            if request.POST.get("op") == "start":
                actions.start(actor, job)
                return redirect("ui:import", pk=job.pk)
            preview = actions.preview(actor, job)
            if request.htmx:
                return render(request, "ui/imports/_preview.html", {"preview": preview, "job": job})
            return _job_page(request, job, preview=preview)
        except ActionError as exc:
            if request.htmx:
                return render(request, "ui/imports/_preview.html", {"error": exc, "job": job}, status=200)
            action_error(request, exc)
    elif request.method == "POST" and request.POST.get("op") == "resume":
        try:
            actions.resume(actor, job)
        except ActionError as exc:
            action_error(request, exc)
        return redirect("ui:import", pk=job.pk)
    return _job_page(request, job)


def _job_page(request, job, preview=None) -> HttpResponse:
    choices = mp.target_choices(job.entity_type_id)
    columns = [{"index": i, "header": h, "target": job.mapping.get(h, "")} for i, h in enumerate(job.headers)]
    return page(request, "ui/imports/job.html", {
        "job": job, "columns": columns, "choices": choices, "modes": ImportJob.Mode.choices, "preview": preview,
        "type_label": _labels().get(mp.TYPE_CODES[job.entity_type_id], "")}, nav="imports")


@login_required
def progress(request, pk: int):
    _actor, job = _job(request, pk)
    if job is None:
        return HttpResponse(status=404)
    return render(request, "ui/imports/_progress.html", {"job": job})


@login_required
def report(request, pk: int):
    _actor, job = _job(request, pk)
    if job is None:
        return HttpResponse(status=404)
    response = StreamingHttpResponse(runner.report_lines(job), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-rejected.csv"'
    return response
