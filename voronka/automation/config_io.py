"""A pipeline's stages, robots, triggers and time limits as a YAML document (``voronka automation export|import``).

The format is documented in ``docs/automation.md``. Import validates the whole document and writes it in one
transaction through the settings actions (so every write is checked, audited and re-plans timers); any error
leaves the database as it was and names the place in the file.
"""

from __future__ import annotations

import yaml
from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import ActionError

from . import actions, rules
from .models import Robot, StageLimit, StageTrigger

VERSION = 1
STAGE_KEYS = {"code", "name", "semantics", "color", "required_fields", "ask_fields", "time_limit", "robots", "triggers"}
TRIGGER_KEYS = {"name", "kind", "params", "allow_backwards", "enabled", "order"}
ROBOT_KEYS = {"name", "order", "trigger", "enabled", "conditions", "delay", "action", "params"}


class ImportFailed(Exception):
    pass


def _people_out(value):
    """Write users by login, not by id, so the file means the same on another installation."""
    if isinstance(value, str) and value.startswith("user:"):
        return rules.export_person(value)
    if isinstance(value, list):
        return [_people_out(v) for v in value]
    if isinstance(value, dict):
        return {k: _people_out(v) for k, v in value.items()}
    return value


def _delay(robot: Robot) -> dict:
    if robot.delay_kind == "after":
        return {"kind": "after", "amount": robot.delay_amount, "unit": robot.delay_unit}
    if robot.delay_kind == "at_field":
        return {"kind": "at_field", "field": robot.delay_field, "amount": robot.delay_amount, "unit": robot.delay_unit}
    if robot.delay_kind == "working":
        return {"kind": "working", "amount": robot.delay_amount, "unit": robot.delay_unit}
    return {"kind": "none"}


def export_pipeline(pipeline) -> str:
    stages = []
    for stage in pipeline.stages.order_by("sort", "id"):
        item = {"code": stage.code, "name": stage.name, "semantics": stage.semantics, "color": stage.color,
                "required_fields": list(stage.required_fields or [])}
        if stage.ask_fields:  # optional fields asked on entry (F23)
            item["ask_fields"] = list(stage.ask_fields)
        limit = StageLimit.objects.filter(stage=stage).first()
        if limit is not None:
            item["time_limit"] = {"amount": limit.amount, "unit": limit.unit, "enabled": limit.enabled,
                                  "steps": _people_out(limit.steps)}
            if limit.working_time:
                item["time_limit"]["working_time"] = True
        item["robots"] = [{"name": r.name, "order": r.order, "trigger": r.trigger, "enabled": r.enabled,
                           "conditions": r.conditions or {}, "delay": _delay(r), "action": r.action,
                           "params": _people_out(r.params or {})}
                          for r in Robot.objects.filter(stage=stage).order_by("order", "id")]
        found = [{"name": t.name, "kind": t.kind, "params": _people_out(t.params or {}), "allow_backwards": t.allow_backwards,
                  "enabled": t.enabled, "order": t.order}
                 for t in StageTrigger.objects.filter(stage=stage).order_by("order", "id")]
        if found:  # the secret of an incoming webhook is never exported
            item["triggers"] = found
        stages.append(item)
    document = {"version": VERSION, "pipeline": {
        "entity_type": entity_types.get(pipeline.entity_type_id).code, "code": pipeline.code, "name": pipeline.name,
        "stages": stages}}
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, default_flow_style=False)


def _fail(where: str, message: str) -> ImportFailed:
    return ImportFailed(f"{where}: {message}" if where else message)


def _check_document(text: str) -> dict:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = _("line %(n)s") % {"n": mark.line + 1} if mark else ""
        raise _fail(where, _("not valid YAML (%(e)s).") % {"e": getattr(exc, "problem", exc)}) from None
    if not isinstance(document, dict) or document.get("version") != VERSION or not isinstance(document.get("pipeline"), dict):
        raise _fail("", _("the file must be a mapping with «version: %(v)s» and «pipeline».") % {"v": VERSION})
    pipeline = document["pipeline"]
    unknown = set(pipeline) - {"entity_type", "code", "name", "stages"}
    if unknown:
        raise _fail("pipeline", _("unknown keys %(k)s.") % {"k": ", ".join(sorted(unknown))})
    for key in ("entity_type", "code", "name"):
        if not isinstance(pipeline.get(key), str) or not pipeline[key].strip():
            raise _fail("pipeline", _("«%(k)s» is required text.") % {"k": key})
    try:
        info = entity_types.by_code(pipeline["entity_type"])
    except LookupError:
        raise _fail("pipeline", _("unknown kind of record «%(c)s».") % {"c": pipeline["entity_type"]}) from None
    if not info.staged:
        raise _fail("pipeline", _("«%(c)s» records have no stages.") % {"c": pipeline["entity_type"]})
    stages = pipeline.get("stages")
    if not isinstance(stages, list) or not stages:
        raise _fail("pipeline", _("«stages» must be a non-empty list."))
    codes = set()
    for index, stage in enumerate(stages):
        where = _("stage %(n)s") % {"n": index + 1}
        if not isinstance(stage, dict):
            raise _fail(where, _("must be a mapping."))
        unknown = set(stage) - STAGE_KEYS
        if unknown:
            raise _fail(where, _("unknown keys %(k)s.") % {"k": ", ".join(sorted(unknown))})
        if not isinstance(stage.get("code"), str) or not stage["code"] or not isinstance(stage.get("name"), str):
            raise _fail(where, _("«code» and «name» are required text."))
        if stage["code"] in codes:
            raise _fail(where, _("stage code «%(c)s» appears twice.") % {"c": stage["code"]})
        codes.add(stage["code"])
        if not isinstance(stage.get("robots", []), list):
            raise _fail(where, _("«robots» must be a list."))
        for r_index, robot in enumerate(stage.get("robots", [])):
            r_where = _("stage «%(s)s», robot %(n)s") % {"s": stage["code"], "n": r_index + 1}
            if not isinstance(robot, dict):
                raise _fail(r_where, _("must be a mapping."))
            unknown = set(robot) - ROBOT_KEYS
            if unknown:
                raise _fail(r_where, _("unknown keys %(k)s.") % {"k": ", ".join(sorted(unknown))})
            if "action" not in robot:
                raise _fail(r_where, _("«action» is required."))
        if not isinstance(stage.get("triggers", []), list):
            raise _fail(where, _("«triggers» must be a list."))
        for t_index, trigger in enumerate(stage.get("triggers", [])):
            t_where = _("stage «%(s)s», trigger %(n)s") % {"s": stage["code"], "n": t_index + 1}
            if not isinstance(trigger, dict):
                raise _fail(t_where, _("must be a mapping."))
            unknown = set(trigger) - TRIGGER_KEYS
            if unknown:
                raise _fail(t_where, _("unknown keys %(k)s.") % {"k": ", ".join(sorted(unknown))})
            if "kind" not in trigger:
                raise _fail(t_where, _("«kind» is required."))
        limit = stage.get("time_limit")
        if limit is not None and (not isinstance(limit, dict) or set(limit) - {"amount", "unit", "enabled", "steps", "working_time"}):
            raise _fail(where, _("«time_limit» is a mapping of amount, unit, enabled, working_time and steps."))
    return document


def _describe(exc: ActionError) -> str:
    if exc.fields:
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
    return exc.message


def import_document(actor: Actor, text: str) -> dict:
    """Create or update the pipeline, its stages (by code), their robots (replaced) and time limits."""
    from voronka.pipelines.actions import create_pipeline, create_stage, update_stage
    from voronka.pipelines.models import Pipeline, Stage

    document = _check_document(text)
    spec = document["pipeline"]
    info = entity_types.by_code(spec["entity_type"])
    summary = {"pipeline": spec["code"], "stages": 0, "robots": 0, "triggers": 0, "limits": 0}
    where = "pipeline"
    try:
        with transaction.atomic():
            pipeline = Pipeline.objects.filter(entity_type_id=info.id, code=spec["code"]).first()
            if pipeline is None:
                pipeline = create_pipeline(actor, entity_type_id=info.id, name=spec["name"], code=spec["code"])
            for index, item in enumerate(spec["stages"]):
                where = _("stage «%(s)s»") % {"s": item["code"]}
                fields = {k: item[k] for k in ("name", "semantics", "color", "required_fields", "ask_fields")
                          if k in item}
                fields["sort"] = (index + 1) * 10
                stage = Stage.objects.filter(pipeline=pipeline, code=item["code"]).first()
                if stage is None:
                    stage = create_stage(actor, pipeline.pk, code=item["code"], **fields)
                else:
                    stage = update_stage(actor, stage.pk, **fields)
                summary["stages"] += 1
                for robot in Robot.objects.filter(stage=stage):
                    actions.delete_robot(actor, robot.pk)
                for r_index, robot in enumerate(item.get("robots") or []):
                    where = _("stage «%(s)s», robot %(n)s") % {"s": item["code"], "n": r_index + 1}
                    actions.create_robot(actor, stage=stage.pk, **robot)
                    summary["robots"] += 1
                # triggers: matched by (event, name) and updated in place, so an incoming webhook keeps its URL
                existing = {(t.kind, t.name): t for t in StageTrigger.objects.filter(stage=stage).order_by("-id")}
                kept = set()
                for t_index, trigger in enumerate(item.get("triggers") or []):
                    where = _("stage «%(s)s», trigger %(n)s") % {"s": item["code"], "n": t_index + 1}
                    found = existing.get((trigger.get("kind"), trigger.get("name")))
                    if found is not None and found.pk not in kept:
                        actions.update_trigger(actor, found.pk, **trigger)
                        kept.add(found.pk)
                    else:
                        kept.add(actions.create_trigger(actor, stage=stage.pk, **trigger).pk)
                    summary["triggers"] += 1
                for old in StageTrigger.objects.filter(stage=stage).exclude(pk__in=kept):
                    actions.delete_trigger(actor, old.pk)
                where = _("stage «%(s)s», time limit") % {"s": item["code"]}
                limit = item.get("time_limit")
                if limit is None:
                    actions.delete_stage_limit(actor, stage.pk)
                else:
                    actions.set_stage_limit(actor, stage.pk, **limit)
                    summary["limits"] += 1
    except ActionError as exc:
        raise _fail(where, _describe(exc)) from None
    except TypeError as exc:  # a value of the wrong shape given to an action
        raise _fail(where, str(exc)) from None
    return summary
