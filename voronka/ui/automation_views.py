"""Automation screens: the robots board per pipeline (robots and stage time limits, YAML export/import, the
dry run), the automation log, and the user's notifications. Reads through ``automation.selectors``, writes
through ``automation.actions``, always with the session user as the actor."""

from __future__ import annotations

import yaml
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from voronka.activities import actions as activity_actions
from voronka.activities.models import Notification
from voronka.automation import actions as robots
from voronka.automation import config_io
from voronka.automation import selectors as automation
from voronka.automation.models import Robot, Run
from voronka.core import entity_types
from voronka.core.errors import ActionError, NotFound, PermissionDenied
from voronka.core.prepared import Prepared
from voronka.core.selectors import keyset_page

from .entities import BY_TYPE
from .views import action_error, actor_of, page

MAX_UPLOAD = 512 * 1024


def _units():
    return [("minutes", _("minutes")), ("hours", _("hours")), ("days", _("days"))]


def _configurer(request):
    actor = actor_of(request)
    if not automation.can_configure(actor):
        raise DjangoPermissionDenied
    return actor


def _pipeline(actor, pk):
    try:
        return automation.pipeline_for(actor, pk)
    except NotFound:
        return None
    except PermissionDenied:
        raise DjangoPermissionDenied from None


def _yaml_field(text: str, field: str, errors: dict, *, default):
    """Parse a YAML textarea; an error goes to ``errors[field]``."""
    if not text.strip():
        return default
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _("line %(n)s: ") % {"n": mark.line + 1} if mark else ""
        errors[field] = [where + _("not valid YAML (%(e)s).") % {"e": getattr(exc, "problem", None) or exc}]
        return default


def _dump(value) -> str:
    if value in (None, {}, []):
        return ""
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, default_flow_style=False)


def _pipelines_nav(actor):
    return [{"p": p, "type": BY_TYPE[p.entity_type_id].title if p.entity_type_id in BY_TYPE else ""}
            for p in automation.staged_pipelines(actor)]


# --- the robots board ----------------------------------------------------------------------------------

@login_required
def robots_home(request):
    actor = _configurer(request)
    pipelines = automation.staged_pipelines(actor)
    if pipelines:
        return redirect("ui:robots", pk=pipelines[0].pk)
    return page(request, "ui/automation/board.html", {"pipeline": None, "pipelines": [], "columns": []}, nav="robots")


@login_required
def robots_board(request, pk: int):
    actor = _configurer(request)
    pipeline = _pipeline(actor, pk)
    if pipeline is None:
        return redirect("ui:robots_home")
    if request.method == "POST":
        op, target = request.POST.get("op", ""), request.POST.get("robot", "")
        try:
            if op in ("enable", "disable"):
                robot = automation.robot_for(actor, target)
                robots.update_robot(actor, robot.pk, enabled=op == "enable")
                messages.success(request, _("Robot «%(n)s» enabled.") % {"n": robot.name} if op == "enable"
                                 else _("Robot «%(n)s» disabled.") % {"n": robot.name})
            elif op == "delete":
                robot = automation.robot_for(actor, target)
                robots.delete_robot(actor, robot.pk)
                messages.success(request, _("Robot «%(n)s» deleted.") % {"n": robot.name})
            elif op in ("up", "down"):
                robot = automation.robot_for(actor, target)
                ids = list(Robot.objects.filter(stage_id=robot.stage_id).order_by("order", "id").values_list("id", flat=True))
                i = ids.index(robot.pk)
                j = i - 1 if op == "up" else i + 1
                if 0 <= j < len(ids):
                    ids[i], ids[j] = ids[j], ids[i]
                    robots.reorder_robots(actor, robot.stage_id, ids)
                return redirect(f"{reverse('ui:robots', kwargs={'pk': pk})}#robot-{robot.pk}")
            elif op in ("trigger_enable", "trigger_disable"):
                trigger = automation.trigger_for(actor, request.POST.get("trigger", ""))
                robots.update_trigger(actor, trigger.pk, enabled=op == "trigger_enable")
                messages.success(request, _("Trigger «%(n)s» enabled.") % {"n": trigger.name} if op == "trigger_enable"
                                 else _("Trigger «%(n)s» disabled.") % {"n": trigger.name})
            elif op == "trigger_delete":
                trigger = automation.trigger_for(actor, request.POST.get("trigger", ""))
                robots.delete_trigger(actor, trigger.pk)
                messages.success(request, _("Trigger «%(n)s» deleted.") % {"n": trigger.name})
            elif op == "delete_limit":
                robots.delete_stage_limit(actor, request.POST.get("stage", ""))
                messages.success(request, _("The time limit was removed."))
            else:
                messages.error(request, _("Unknown operation."))
        except ActionError as exc:
            action_error(request, exc)
        return redirect("ui:robots", pk=pk)
    columns = automation.board(actor, pipeline)
    for column in columns:
        column.rows = [{"robot": r, "delay": automation.describe_delay(r), "does": automation.describe_action(r.action, r.params),
                        "has_conditions": bool(r.conditions)} for r in column.robots]
        column.limit_lines = automation.describe_limit(column.limit) if column.limit else []
        column.trigger_rows = [{"trigger": t, "does": automation.describe_trigger(t), "url": automation.trigger_url(t)}
                               for t in column.triggers]
    return page(request, "ui/automation/board.html", {
        "pipeline": pipeline, "pipelines": _pipelines_nav(actor), "columns": columns,
        "kind": BY_TYPE[pipeline.entity_type_id].url if pipeline.entity_type_id in BY_TYPE else "",
    }, nav="robots")


def _robot_values(robot: Robot | None, stage_id) -> dict:
    if robot is None:
        return {"name": "", "stage": str(stage_id or ""), "trigger": "on_enter", "enabled": True, "order": "",
                "delay_kind": "none", "delay_amount": "0", "delay_unit": "minutes", "delay_field": "",
                "action": "create_task", "conditions": "", "params": automation.action_examples()["create_task"]}
    return {"name": robot.name, "stage": str(robot.stage_id), "trigger": robot.trigger, "enabled": robot.enabled,
            "order": str(robot.order), "delay_kind": robot.delay_kind, "delay_amount": str(robot.delay_amount),
            "delay_unit": robot.delay_unit, "delay_field": robot.delay_field, "action": robot.action,
            "conditions": _dump(robot.conditions), "params": _dump(robot.params)}


def _robot_data(post, errors: dict) -> dict:
    data: dict = {"trigger": post.get("trigger", ""), "enabled": post.get("enabled") == "on",
                  "action": post.get("action", "")}
    if post.get("name", "").strip():  # a robot without a name is named after its action
        data["name"] = post["name"].strip()
    order = post.get("order", "").strip()
    if order:
        try:
            data["order"] = int(order)
        except ValueError:
            errors["order"] = [_("A whole number.")]
    kind = post.get("delay_kind", "none")
    if kind == "none":
        data["delay"] = {"kind": "none"}
    else:
        try:
            amount = int(post.get("delay_amount", "0").strip() or "0")
        except ValueError:
            errors["delay"] = [_("The delay amount must be a whole number.")]
            amount = 0
        data["delay"] = {"kind": kind, "amount": amount, "unit": post.get("delay_unit", "minutes")}
        if kind == "at_field":
            data["delay"]["field"] = post.get("delay_field", "").strip()
    data["conditions"] = _yaml_field(post.get("conditions", ""), "conditions", errors, default={})
    data["params"] = _yaml_field(post.get("params", ""), "params", errors, default={})
    if data["params"] is None:
        data["params"] = {}
    if data["conditions"] is None:
        data["conditions"] = {}
    if not isinstance(data["params"], dict) and "params" not in errors:
        errors["params"] = [_("The parameters are a mapping of names to values (see the example).")]
    return data


def _date_fields(pipeline) -> list[tuple[str, str]]:
    model = entity_types.get(pipeline.entity_type_id).model
    found = [(f.name, str(f.verbose_name).capitalize()) for f in model._meta.fields
             if f.get_internal_type() in ("DateField", "DateTimeField") and f.name not in ("deleted_at",)]
    from voronka.customfields.models import FieldDefinition

    found += [(f"custom.{d.code}", d.label) for d in FieldDefinition.objects.filter(
        entity_type_id=pipeline.entity_type_id, kind__in=("date", "datetime"))]
    return found


def _condition_fields(pipeline) -> list[tuple[str, str]]:
    model = entity_types.get(pipeline.entity_type_id).model
    skip = {"id", "pipeline", "custom", "deleted_at", "created_by"}
    found = [(f.attname if f.is_relation else f.name, str(f.verbose_name).capitalize()) for f in model._meta.fields
             if f.name not in skip]
    found += [("phones", _("Phones")), ("emails", _("E-mails"))]
    from voronka.customfields.models import FieldDefinition

    found += [(f"custom.{d.code}", d.label) for d in FieldDefinition.objects.filter(entity_type_id=pipeline.entity_type_id)]
    return found


@login_required
def robot_edit(request, pk: int, robot_id: int | None = None):
    actor = _configurer(request)
    pipeline = _pipeline(actor, pk)
    if pipeline is None:
        return redirect("ui:robots_home")
    robot = None
    if robot_id is not None:
        try:
            robot = automation.robot_for(actor, robot_id)
        except NotFound:
            messages.error(request, _("Robot #%(id)s does not exist.") % {"id": robot_id})
            return redirect("ui:robots", pk=pk)
        if robot.pipeline_id != pipeline.pk:
            return redirect("ui:robot_edit", pk=robot.pipeline_id, robot_id=robot.pk)
    stages = list(pipeline.stages.order_by("sort", "id"))
    stage_id = request.GET.get("stage") or (stages[0].pk if stages else "")
    values = _robot_values(robot, stage_id)
    errors: dict[str, list[str]] = {}
    general: list[str] = []
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in values} | {"enabled": request.POST.get("enabled") == "on"}
        data = _robot_data(request.POST, errors)
        stage = request.POST.get("stage", "")
        if not any(str(s.pk) == stage for s in stages):
            errors["stage"] = [_("Choose a stage of this pipeline.")]
        for name, msgs in automation.robot_problems(data["action"], data["conditions"], data["params"]).items():
            errors.setdefault(name, msgs)
        if not errors:
            try:
                if robot is None:
                    robot = robots.create_robot(actor, stage=int(stage), **data)
                else:
                    if str(robot.stage_id) != stage:
                        # moving a robot to another stage: a new robot there, the old one goes (pending runs skip)
                        with transaction.atomic():
                            new = robots.create_robot(actor, stage=int(stage), **data)
                            robots.delete_robot(actor, robot.pk)
                        robot = new
                    else:
                        robot = robots.update_robot(actor, robot.pk, **data)
            except ActionError as exc:
                for name, msgs in (exc.fields or {}).items():
                    errors.setdefault(name, []).extend(msgs)
                if not exc.fields:
                    general.append(exc.message)
            else:
                messages.success(request, _("Robot «%(n)s» saved.") % {"n": robot.name})
                return redirect(f"{reverse('ui:robots', kwargs={'pk': pk})}#robot-{robot.pk}")
        if errors and not general:
            general.append(_("The robot was not saved: correct the fields marked below."))
    return page(request, "ui/automation/robot_form.html", {
        "pipeline": pipeline, "robot": robot, "stages": stages, "values": values, "errors": errors,
        "general": general, "triggers": Robot.Trigger.choices, "delays": Robot.Delay.choices, "units": _units(),
        "action_choices": Robot.Action.choices, "examples": automation.action_examples(),
        "current_example": automation.action_examples().get(values["action"], ""),
        "conditions_example": automation.CONDITIONS_EXAMPLE, "date_fields": _date_fields(pipeline),
        "condition_fields": _condition_fields(pipeline),
    }, nav="robots", status=422 if errors or general else 200)


def _trigger_values(trigger, stage_id) -> dict:
    if trigger is None:
        return {"name": "", "stage": str(stage_id or ""), "kind": "call", "enabled": True, "allow_backwards": False,
                "order": "", "params": automation.trigger_examples().get("call", ""), "rotate_secret": False}
    return {"name": trigger.name, "stage": str(trigger.stage_id), "kind": trigger.kind, "enabled": trigger.enabled,
            "allow_backwards": trigger.allow_backwards, "order": str(trigger.order), "params": _dump(trigger.params),
            "rotate_secret": False}


@login_required
def trigger_edit(request, pk: int, trigger_id: int | None = None):
    actor = _configurer(request)
    pipeline = _pipeline(actor, pk)
    if pipeline is None:
        return redirect("ui:robots_home")
    trigger = None
    if trigger_id is not None:
        try:
            trigger = automation.trigger_for(actor, trigger_id)
        except NotFound:
            messages.error(request, _("Trigger #%(id)s does not exist.") % {"id": trigger_id})
            return redirect("ui:robots", pk=pk)
        if trigger.pipeline_id != pipeline.pk:
            return redirect("ui:trigger_edit", pk=trigger.pipeline_id, trigger_id=trigger.pk)
    stages = list(pipeline.stages.order_by("sort", "id"))
    values = _trigger_values(trigger, request.GET.get("stage") or (stages[0].pk if stages else ""))
    errors: dict[str, list[str]] = {}
    general: list[str] = []
    if request.method == "POST":
        post = request.POST
        values = {k: post.get(k, "") for k in values} | {k: post.get(k) == "on"
                                                       for k in ("enabled", "allow_backwards", "rotate_secret")}
        data: dict = {"kind": post.get("kind", ""), "enabled": values["enabled"],
                      "allow_backwards": values["allow_backwards"]}
        if post.get("name", "").strip():
            data["name"] = post["name"].strip()
        if post.get("order", "").strip():
            try:
                data["order"] = int(post["order"].strip())
            except ValueError:
                errors["order"] = [_("A whole number.")]
        data["params"] = _yaml_field(post.get("params", ""), "params", errors, default={}) or {}
        if not isinstance(data["params"], dict) and "params" not in errors:
            errors["params"] = [_("The parameters are a mapping of names to values (see the example).")]
        stage = post.get("stage", "")
        if not any(str(s.pk) == stage for s in stages):
            errors["stage"] = [_("Choose a stage of this pipeline.")]
        if not errors:
            try:
                if trigger is None:
                    trigger = robots.create_trigger(actor, stage=int(stage), **data)
                else:
                    trigger = robots.update_trigger(actor, trigger.pk, stage=int(stage),
                                                    rotate_secret=values["rotate_secret"], **data)
            except ActionError as exc:
                for name, msgs in (exc.fields or {}).items():
                    errors.setdefault(name, []).extend(msgs)
                if not exc.fields:
                    general.append(exc.message)
            else:
                messages.success(request, _("Trigger «%(n)s» saved.") % {"n": trigger.name})
                return redirect(f"{reverse('ui:robots', kwargs={'pk': pk})}#trigger-{trigger.pk}")
        if errors and not general:
            general.append(_("The trigger was not saved: correct the fields marked below."))
    return page(request, "ui/automation/trigger_form.html", {
        "pipeline": pipeline, "trigger": trigger, "stages": stages, "values": values, "errors": errors,
        "general": general, "kinds": automation.trigger_kinds(), "examples": automation.trigger_examples(),
        "url": automation.trigger_url(trigger) if trigger is not None else "",
    }, nav="robots", status=422 if errors or general else 200)


@login_required
def limit_edit(request, pk: int, stage_id: int):
    actor = _configurer(request)
    pipeline = _pipeline(actor, pk)
    stage = pipeline.stages.filter(pk=stage_id).first() if pipeline is not None else None
    if stage is None:
        return redirect("ui:robots_home")
    from voronka.automation.models import StageLimit

    limit = StageLimit.objects.filter(stage=stage).first()
    values = {"amount": str(limit.amount) if limit else "3", "unit": limit.unit if limit else "hours",
              "enabled": limit.enabled if limit else True, "working_time": limit.working_time if limit else False,
              "steps": _dump(limit.steps) if limit else automation.STEPS_EXAMPLE}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {"amount": request.POST.get("amount", "").strip(), "unit": request.POST.get("unit", ""),
                  "enabled": request.POST.get("enabled") == "on", "steps": request.POST.get("steps", ""),
                  "working_time": request.POST.get("working_time") == "on"}
        try:
            amount = int(values["amount"])
        except ValueError:
            errors["amount"] = [_("The limit is a whole number greater than zero.")]
            amount = 0
        steps = _yaml_field(values["steps"], "steps", errors, default=None)
        if not errors:
            try:
                robots.set_stage_limit(actor, stage.pk, amount=amount, unit=values["unit"], steps=steps,
                                       enabled=values["enabled"], working_time=values["working_time"])
            except ActionError as exc:
                for name, msgs in (exc.fields or {"steps": [exc.message]}).items():
                    errors.setdefault(name, []).extend(msgs)
            else:
                messages.success(request, _("The time limit of «%(s)s» is saved.") % {"s": stage.name})
                return redirect(f"{reverse('ui:robots', kwargs={'pk': pk})}#stage-{stage.pk}")
    return page(request, "ui/automation/limit_form.html", {
        "pipeline": pipeline, "stage": stage, "limit": limit, "values": values, "errors": errors, "units": _units(),
        "steps_example": automation.STEPS_EXAMPLE,
    }, nav="robots", status=422 if errors else 200)


TASK_STEPS_EXAMPLE = """- after: {amount: 0, unit: minutes}   # at the deadline
  notify: [responsible]
- after: {amount: 1, unit: days}      # a day later
  notify: [head]
  reassign: head
"""


@login_required
def task_escalation_edit(request):
    """Settings → Robots → Overdue tasks: the escalation chain of overdue tasks (F41)."""
    actor = _configurer(request)
    from voronka.automation.models import TaskEscalation

    row = TaskEscalation.objects.order_by("id").first()
    values = {"enabled": row.enabled if row else True, "working_time": bool(row and row.working_time),
              "steps": _dump(row.steps) if row else TASK_STEPS_EXAMPLE}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if request.POST.get("delete"):
            robots.delete_task_escalation(actor)
            messages.success(request, _("Overdue tasks no longer escalate."))
            return redirect("ui:task_escalation")
        values = {"enabled": request.POST.get("enabled") == "on", "working_time": request.POST.get("working_time") == "on",
                  "steps": request.POST.get("steps", "")}
        steps = _yaml_field(values["steps"], "steps", errors, default=None)
        if not errors:
            try:
                robots.set_task_escalation(actor, steps=steps, enabled=values["enabled"],
                                           working_time=values["working_time"])
            except ActionError as exc:
                for name, msgs in (exc.fields or {"steps": [exc.message]}).items():
                    errors.setdefault(name, []).extend(msgs)
            else:
                messages.success(request, _("The escalation of overdue tasks is saved."))
                return redirect("ui:task_escalation")
    return page(request, "ui/automation/task_escalation.html", {
        "row": row, "values": values, "errors": errors, "steps_example": TASK_STEPS_EXAMPLE,
    }, nav="robots", status=422 if errors else 200)


# --- export, import ------------------------------------------------------------------------------------

@login_required
def robots_export(request, pk: int):
    actor = _configurer(request)
    pipeline = _pipeline(actor, pk)
    if pipeline is None:
        return redirect("ui:robots_home")
    text = config_io.export_pipeline(pipeline)
    response = HttpResponse(text, content_type="application/x-yaml; charset=utf-8")
    code = entity_types.get(pipeline.entity_type_id).code
    response["Content-Disposition"] = f'attachment; filename="automation-{code}-{pipeline.code}.yaml"'
    return response


class _Preview(Exception):
    def __init__(self, summary):
        self.summary = summary


def check_document_for(actor, pipeline, text: str) -> dict:
    """Import ``text`` in a transaction that is always rolled back: the summary, or ImportFailed."""
    document = config_io._check_document(text)
    spec = document["pipeline"]
    code = entity_types.get(pipeline.entity_type_id).code
    if spec.get("entity_type") != code or spec.get("code") != pipeline.code:
        raise config_io.ImportFailed(_("This file is for the pipeline «%(f)s» (%(t)s), not «%(p)s» (%(c)s).")
                                     % {"f": spec.get("code"), "t": spec.get("entity_type"), "p": pipeline.code, "c": code})
    try:
        with transaction.atomic():
            summary = config_io.import_document(actor, text)
            raise _Preview(summary)
    except _Preview as preview:
        return preview.summary


@login_required
def robots_import(request, pk: int):
    actor = _configurer(request)
    pipeline = _pipeline(actor, pk)
    if pipeline is None:
        return redirect("ui:robots_home")
    text, error, summary, status = "", "", None, 200
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is not None:
            if upload.size > MAX_UPLOAD:
                error = _("The file is larger than 512 KB.")
            else:
                try:
                    text = upload.read().decode("utf-8")
                except UnicodeDecodeError:
                    error = _("The file is not UTF-8 text.")
        else:
            text = request.POST.get("text", "")
        if not error and not text.strip():
            error = _("Choose a YAML file or paste its text.")
        if not error:
            try:
                summary = check_document_for(actor, pipeline, text)
                if request.POST.get("op") == "apply":
                    with transaction.atomic():
                        summary = config_io.import_document(actor, text)
                    messages.success(request, _("Imported: %(s)s stages, %(r)s robots, %(l)s time limits.")
                                     % {"s": summary["stages"], "r": summary["robots"], "l": summary["limits"]})
                    return redirect("ui:robots", pk=pk)
            except config_io.ImportFailed as exc:
                error = str(exc)
            except ActionError as exc:
                error = exc.message
        if error:
            status, summary = 422, None
    return page(request, "ui/automation/import.html", {
        "pipeline": pipeline, "text": text, "error": error, "summary": summary}, nav="robots", status=status)


# --- the dry run -----------------------------------------------------------------------------------------

@login_required
def dry_run(request, pk: int):
    actor = _configurer(request)
    pipeline = _pipeline(actor, pk)
    if pipeline is None:
        return redirect("ui:robots_home")
    stages = list(pipeline.stages.order_by("sort", "id"))
    record, stage = request.GET.get("record", "").strip(), request.GET.get("stage", "")
    result, errors = None, {}
    if record or stage:
        if not record.isdigit():
            errors["record"] = [_("Give the record's number.")]
        else:
            try:
                result = automation.dry_run(actor, pipeline.entity_type_id, record, stage)
            except NotFound as exc:
                errors["record"] = [exc.message]
            except ActionError as exc:
                errors.update(exc.fields or {"stage": [exc.message]})
    ui = BY_TYPE.get(pipeline.entity_type_id)
    return page(request, "ui/automation/dry_run.html", {
        "pipeline": pipeline, "stages": stages, "record": record, "stage": stage, "result": result, "errors": errors,
        "kind": ui.url if ui else "", "kind_title": ui.info.label if ui else "",
    }, nav="robots", status=422 if errors else 200)


# --- the automation log ---------------------------------------------------------------------------------

@login_required
def automation_log(request):
    actor = _configurer(request)
    filters = {k: request.GET.get(k, "").strip() for k in automation.RUN_FILTERS}
    error = ""
    items, next_cursor = [], None
    try:
        qs = automation.runs(actor, **filters)
        result = keyset_page(qs, order="-id", cursor=request.GET.get("cursor") or None, limit=50)
        items, next_cursor = result.items, result.next_cursor
    except ActionError as exc:
        error = exc.message + " " + "; ".join(f"{k}: {' '.join(v)}" for k, v in (exc.fields or {}).items())
    records = automation.run_records(actor, items)
    rows = []
    for run in items:
        obj = records.get((run.entity_type_id, run.entity_id))
        ui = BY_TYPE.get(run.entity_type_id)
        rows.append({"run": run, "label": automation.run_label(run), "record": obj,
                     "url": reverse("ui:card", kwargs={"kind": ui.url, "pk": run.entity_id}) if obj is not None and ui else "",
                     "kind": ui.info.label if ui else "", "action": dict(Robot.Action.choices).get(run.action)
                     or (_("Escalation") if run.action == "escalate" else run.action)})
    query = request.GET.copy()
    query.pop("cursor", None)
    robots_list = Robot.objects.select_related("pipeline").order_by("pipeline_id", "stage_id", "order", "id")[:500]
    return page(request, "ui/automation/log.html", {
        "rows": rows, "next_cursor": next_cursor, "filters": filters, "error": error, "query": query.urlencode(),
        "statuses": Run.Status.choices, "pipelines": _pipelines_nav(actor), "robots": robots_list,
        "kinds": [(i.code, i.label_plural.capitalize()) for i in entity_types.all_types() if i.staged],
    }, nav="automation_log", status=422 if error else 200)


@login_required
@require_POST
def run_retry(request, run_id: int):
    actor = _configurer(request)
    try:
        robots.retry_run(actor, run_id)
    except ActionError as exc:
        action_error(request, exc)
    else:
        messages.success(request, _("Run #%(id)s will be retried in a moment.") % {"id": run_id})
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, {request.get_host()}):
        return redirect(back)
    return redirect("ui:automation_log")


# --- notifications ----------------------------------------------------------------------------------------

@login_required
def notifications(request):
    qs = Notification.objects.filter(user_id=request.user.pk)
    show = request.GET.get("show", "")
    if show == "unread":
        qs = qs.filter(is_read=False)
    try:
        result = keyset_page(qs, order="-id", cursor=request.GET.get("cursor") or None, limit=50)
    except ActionError:
        return redirect("ui:notifications")
    return page(request, "ui/automation/notifications.html", {
        "items": result.items, "next_cursor": result.next_cursor, "show": show}, nav="notifications")


@login_required
@require_POST
def notifications_read(request):
    actor = actor_of(request)
    ids = [int(i) for i in request.POST.getlist("id") if i.isdigit()]
    try:
        count = activity_actions.mark_notifications_read(actor, ids or None)
    except ActionError as exc:
        action_error(request, exc)
    else:
        if not request.POST.get("go"):
            messages.success(request, _("Marked as read: %(n)s.") % {"n": count})
    go = request.POST.get("go", "")
    if go and url_has_allowed_host_and_scheme(go, {request.get_host()}):
        return redirect(go)
    return redirect("ui:notifications")


def unread_count(user) -> int:
    """The bell's number, bounded (99+ is shown as such)."""
    if user is None or not user.is_authenticated:
        return 0
    return len(_UNREAD.rows(user.pk))


# every page shows the bell: the statement is compiled once (see voronka.core.prepared)
_UNREAD = Prepared(lambda user_id: Notification.objects.filter(user_id=user_id, is_read=False).values_list("id")[:100],
                   [-918273645])
