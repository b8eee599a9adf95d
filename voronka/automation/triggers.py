"""Triggers: when something happens to an item, it moves to the trigger's stage.

A trigger kind is a small entry of ``KINDS``: which outbox events it listens to, how its parameters are
checked, whether an event matches a trigger's parameters, and an example for the forms. One more kind is a
``register(Kind(...))`` of a few lines (see the bottom of this module).

The consumer (``on_event``) only **plans**: for each item the event concerns (the event's record when it is
staged, plus the open deals the event names in ``payload["deals"]``, e.g. a call from a deal's contact), the
enabled triggers of the item's pipeline whose kind listens to the event and whose parameters match; of these
the one whose stage is furthest along wins (one move per event and item). Its run is keyed
``event:<event>:trigger:<trigger>:<type>:<item>`` (unique): a redelivered event plans nothing new. The worker
executes the run like a robot's (``scheduler._execute_db``): the item must still exist, be in the trigger's
pipeline, not already in the stage, and — unless the trigger ``allow_backwards`` — the target must be further
along than the current stage and the current stage must not be closed (won/lost). The move is the ordinary
``move_to_stage`` action by the system actor ``trigger:<id>``, so required fields, rights of the system actor,
history, events and the target stage's robots apply as for any move.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from voronka.core import entity_types
from voronka.core.models import OutboxEvent

from . import conditions, rules
from .models import Run, StageTrigger

log = logging.getLogger(__name__)

MOVE = "trigger_move"  # Run.action of a trigger's run


@dataclasses.dataclass(frozen=True)
class Kind:
    code: str
    label: Any  # lazy text
    events: tuple[str, ...]  # exact names, or suffixes starting with "." (".updated": lead.updated, deal.updated …)
    check: Callable[[dict], None]  # raises ValueError with a clear message
    match: Callable[[OutboxEvent, dict, Any], bool] = lambda event, params, obj: True
    example: dict = dataclasses.field(default_factory=dict)
    help: Any = ""
    # more items the event concerns (beyond the event's own record and the deals it names), e.g. the records
    # linked to the item that moved
    targets: Callable[[OutboxEvent], list[tuple[int, int]]] | None = None

    def listens(self, name: str) -> bool:
        return any(name == e or (e.startswith(".") and name.endswith(e)) for e in self.events)


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    KINDS[kind.code] = kind
    return kind


def choices() -> list[tuple[str, str]]:
    return [(k.code, str(k.label)) for k in KINDS.values()]


def _only(params, allowed: set[str]) -> dict:
    if not isinstance(params, dict):
        raise ValueError(_("Parameters must be an object."))
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(_("Unknown parameters: %(k)s.") % {"k": ", ".join(sorted(map(str, unknown)))})
    return params


def check_params(kind: str, params) -> None:
    if kind not in KINDS:
        raise ValueError(_("Unknown event «%(k)s»; use one of %(all)s.") % {"k": kind, "all": ", ".join(KINDS)})
    KINDS[kind].check(params if params is not None else {})


# --- planning --------------------------------------------------------------------------------------------

def configured() -> dict[str, frozenset[int]]:
    """kind → pipelines with an enabled trigger of that kind; cached per process against the settings version."""
    from voronka.core import config_cache

    def load():
        found: dict[str, set[int]] = {}
        for kind, pipeline in StageTrigger.objects.filter(enabled=True).values_list("kind", "pipeline_id"):
            found.setdefault(kind, set()).add(pipeline)
        return {k: frozenset(v) for k, v in found.items()}

    return config_cache.cached(("automation", "triggers"), load, config_cache.current_version())


def _targets(event: OutboxEvent) -> list[tuple[int, int]]:
    found = []
    if event.entity_type_id and event.entity_id:
        try:
            if entity_types.get(event.entity_type_id).staged:
                found.append((event.entity_type_id, event.entity_id))
        except LookupError:
            pass
    for deal in (event.payload or {}).get("deals") or []:
        if isinstance(deal, int) and (entity_types.DEAL, deal) not in found:
            found.append((entity_types.DEAL, deal))
    return found


def on_event(event: OutboxEvent) -> None:
    if not any(kind.listens(event.name) for kind in KINDS.values()):
        return  # no kind of trigger listens to this event: not even the settings version is read
    kinds = configured()
    listening = [code for code in kinds if code in KINDS and KINDS[code].listens(event.name)]
    if not listening:
        return
    targets = _targets(event)
    for code in listening:
        for target in (KINDS[code].targets(event) if KINDS[code].targets else []):
            if target not in targets:
                targets.append(target)
    for type_id, item_id in targets:
        plan(event, type_id, item_id, listening, kinds)


def candidates(event: OutboxEvent, obj, kinds: list[str]) -> list[StageTrigger]:
    """The enabled triggers of the item's pipeline that this event sets off, furthest stage first."""
    found = []
    for trigger in (StageTrigger.objects.filter(enabled=True, kind__in=kinds, pipeline_id=obj.pipeline_id)
                    .select_related("stage").order_by("-stage__sort", "order", "id")):
        if trigger.kind == "webhook" and (event.payload or {}).get("trigger") != trigger.pk:
            continue  # an incoming webhook call sets off only the trigger it was addressed to
        try:
            if KINDS[trigger.kind].match(event, trigger.params or {}, obj):
                found.append(trigger)
        except Exception:  # a trigger whose parameters no longer fit is skipped, and said so in the log
            log.exception("trigger %s could not be matched against event %s", trigger.pk, event.pk)
    return found


def plan(event: OutboxEvent, type_id: int, item_id: int, kinds: list[str], configured_kinds=None) -> Run | None:
    info = entity_types.get(type_id)
    obj = info.model.objects.filter(pk=item_id).first()
    if obj is None or obj.deleted_at is not None:
        return None
    if configured_kinds is not None and not any(obj.pipeline_id in configured_kinds.get(k, ()) for k in kinds):
        return None
    found = candidates(event, obj, kinds)
    if not found:
        return None
    trigger = found[0]
    from .scheduler import log_run

    run = Run(key=f"event:{event.pk}:trigger:{trigger.pk}:{type_id}:{item_id}", trigger=trigger,
              rule=f"trigger:{trigger.pk}", action=MOVE, entity_type_id=type_id, entity_id=item_id,
              cause_event_id=event.pk, depth=event.depth + 1, scheduled_at=event.created_at,
              inputs={"event": event.name, "event_at": event.created_at.isoformat(), "stage": trigger.stage_id,
                      "kind": trigger.kind})
    if event.depth >= rules.max_depth():
        run.status, run.error = Run.Status.SKIPPED, _(
            "Stopped: this chain of rule-caused changes reached the depth limit (%(n)s).") % {"n": rules.max_depth()}
        run.finished_at = event.created_at
    try:
        with transaction.atomic():
            run.save()
            if run.status == Run.Status.SKIPPED:
                log_run(run, trigger.name)
    except IntegrityError:
        return None  # planned already: the event was delivered again
    return run


# --- execution (called by the scheduler inside the run's transaction) -------------------------------------

def why_not(trigger: StageTrigger | None, obj) -> str:
    """Why the trigger must not move the item now, or "" when it may."""
    if trigger is None:
        return _("The trigger was deleted.")
    if not trigger.enabled:
        return _("The trigger is disabled.")
    if obj.pipeline_id != trigger.pipeline_id:
        return _("The record is in another pipeline now.")
    if obj.stage_id == trigger.stage_id:
        return _("The record is already in the stage.")
    if not trigger.allow_backwards:
        current = obj.stage
        if current.semantics != "process":
            return _("The record is closed; the trigger does not move it back.")
        if (current.sort, current.pk) > (trigger.stage.sort, trigger.stage.pk):
            return _("The record is further along; the trigger moves forward only.")
    return ""


def move(actor, obj, trigger: StageTrigger, run) -> dict:
    from voronka.pipelines.actions import move_to_stage

    before = obj.stage_id
    moved = move_to_stage(actor, rules.spec_for(obj.ENTITY_TYPE_ID), obj.pk, stage=trigger.stage_id)
    return {"from": before, "to": moved.stage_id, "kind": trigger.kind}


# --- the kinds ----------------------------------------------------------------------------------------------

def _check_nothing(params) -> None:
    _only(params, set())


def _check_form(params) -> None:
    _only(params, {"form"})
    form = params.get("form")
    if form in (None, ""):
        return
    from voronka.intake.models import WebForm

    if not isinstance(form, str | int) or isinstance(form, bool):
        raise ValueError(_("«form» is the form's id or address (slug)."))
    query = WebForm.objects.filter(pk=int(form)) if str(form).isdigit() else WebForm.objects.filter(slug=form)
    if not query.exists():
        raise ValueError(_("No web form «%(f)s».") % {"f": form})


def _match_form(event, params, obj) -> bool:
    form = params.get("form")
    if form in (None, ""):
        return True
    payload = event.payload or {}
    return str(form) in (str(payload.get("form")), str(payload.get("slug")))


CALL_DIRECTIONS = ("incoming", "missed", "outgoing")


def _check_call(params) -> None:
    _only(params, {"directions"})
    directions = params.get("directions", ["incoming", "missed"])
    if not isinstance(directions, list) or not directions or any(d not in CALL_DIRECTIONS for d in directions):
        raise ValueError(_("«directions» is a list of: %(all)s.") % {"all": ", ".join(CALL_DIRECTIONS)})


def _match_call(event, params, obj) -> bool:
    return (event.payload or {}).get("direction") in params.get("directions", ["incoming", "missed"])


def _check_click(params) -> None:
    _only(params, {"url_contains"})
    if not isinstance(params.get("url_contains", ""), str):
        raise ValueError(_("«url_contains» is text."))


def _match_click(event, params, obj) -> bool:
    part = (params.get("url_contains") or "").strip().lower()
    return not part or part in str((event.payload or {}).get("url", "")).lower()


def _check_payment(params) -> None:
    _only(params, {"min_amount"})
    amount = params.get("min_amount")
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0):
        raise ValueError(_("«min_amount» is a number of zero or more."))


def _match_payment(event, params, obj) -> bool:
    amount = params.get("min_amount")
    if amount is None:
        return True
    try:
        return float((event.payload or {}).get("amount") or 0) >= float(amount)
    except (TypeError, ValueError):
        return False


def _check_task(params) -> None:
    _only(params, {"result_contains", "title_contains"})
    for key in ("result_contains", "title_contains"):
        if not isinstance(params.get(key, ""), str):
            raise ValueError(_("«%(k)s» is text.") % {"k": key})


def _match_task(event, params, obj) -> bool:
    payload = event.payload or {}
    result = (params.get("result_contains") or "").strip().lower()
    if result and result not in str(payload.get("result") or "").lower():
        return False
    title = (params.get("title_contains") or "").strip().lower()
    if title:
        from voronka.activities.models import Task

        task = Task.objects.filter(pk=payload.get("task")).only("title").first()
        if task is None or title not in task.title.lower():
            return False
    return True


def _field_condition(params) -> dict:
    if "value" in params:
        return {"field": params["field"], "op": "equals", "value": params["value"]}
    return {"field": params["field"], "op": "not_empty"}


def _check_field(params) -> None:
    _only(params, {"field", "value"})
    if not isinstance(params.get("field"), str) or not params["field"].strip():
        raise ValueError(_("«field» is required: the field's name (custom fields as custom.CODE)."))
    try:
        conditions.validate(_field_condition(params))
    except conditions.ConditionError as exc:
        raise ValueError(str(exc)) from None


def _match_field(event, params, obj) -> bool:
    field = params["field"]
    changed = (event.payload or {}).get("changed")
    if event.name.endswith(".updated"):
        name = field.split(".", 1)[1] if field.startswith("custom.") else field
        if not isinstance(changed, list) or not ({field, name, "custom"} & set(changed)):
            return False
    return conditions.check(obj, _field_condition(params))


def _check_linked(params) -> None:
    _only(params, {"stage", "role"})
    stage = params.get("stage")
    if isinstance(stage, bool) or not isinstance(stage, int):
        raise ValueError(_("«stage» is required: the id of the linked record's stage."))
    from voronka.pipelines.models import Stage

    if not Stage.objects.filter(pk=stage).exists():
        raise ValueError(_("No stage #%(id)s.") % {"id": stage})
    if not isinstance(params.get("role", ""), str):
        raise ValueError(_("«role» is text: the role of the link (empty: any link)."))


def _linked_to_mover(event: OutboxEvent, role: str | None = None) -> list[tuple[int, int]]:
    """The staged records linked to the one that moved (with ``role``: by links of that role only). Read once
    per event and role, kept on the event object: the targets and every candidate trigger of every target ask
    the same question while one delivery of the event is handled."""
    cache = event.__dict__.setdefault("_linked_to_mover", {})
    if role not in cache:
        cache[role] = _read_linked(event, role)
    return list(cache[role])


def _read_linked(event: OutboxEvent, role: str | None) -> list[tuple[int, int]]:
    from voronka.core.actor import Actor
    from voronka.links.selectors import linked_ids

    if not (event.entity_type_id and event.entity_id):
        return []
    try:
        return [t for t in linked_ids(Actor.system("trigger"), event.entity_type_id, event.entity_id, role=role)
                if entity_types.get(t[0]).staged]
    except Exception:  # the moved record is gone (deleted in the meantime): nothing to follow
        log.info("no links followed for event %s", event.pk)
        return []


def _match_linked(event, params, obj) -> bool:
    payload = event.payload or {}
    if payload.get("to_stage") != params.get("stage"):
        return False
    own_type = getattr(obj, "entity_type_id", None) or obj.ENTITY_TYPE_ID
    if (own_type, obj.pk) == (event.entity_type_id, event.entity_id):
        return False  # the record that moved is not «linked to itself»
    return (own_type, obj.pk) in _linked_to_mover(event, params.get("role") or None)


register(Kind("webform", gettext_lazy("A web form is filled"), ("webform.submitted",), _check_form, _match_form,
              example={"form": ""}, help=gettext_lazy("form: the form's id or address; empty: any form.")))
register(Kind("email_opened", gettext_lazy("The client opened a robot's e-mail"), ("email.opened",),
              _check_nothing))
register(Kind("link_clicked", gettext_lazy("The client clicked a link in a robot's e-mail"), ("email.clicked",),
              _check_click, _match_click, example={"url_contains": ""},
              help=gettext_lazy("url_contains: only links containing this text; empty: any link.")))
register(Kind("call", gettext_lazy("A call from or to the client"), ("call.logged",), _check_call, _match_call,
              example={"directions": ["incoming", "missed"]},
              help=gettext_lazy("directions: incoming, missed, outgoing.")))
register(Kind("payment", gettext_lazy("A payment is received"), (".payment_received",), _check_payment,
              _match_payment, example={"min_amount": 0},
              help=gettext_lazy("min_amount: only payments of at least this amount.")))
register(Kind("task_completed", gettext_lazy("A task is completed"), ("task.completed",), _check_task, _match_task,
              example={"result_contains": "", "title_contains": ""},
              help=gettext_lazy("result_contains / title_contains: only tasks whose result / title has this text.")))
register(Kind("field_value", gettext_lazy("A field gets a value"), (".updated", ".created"), _check_field,
              _match_field, example={"field": "amount", "value": 1000},
              help=gettext_lazy("field: the field's name; value: the value it must get (absent: any value).")))
register(Kind("webhook", gettext_lazy("An outside system calls the trigger's URL"), ("automation.trigger_called",),
              _check_nothing,
              help=gettext_lazy("POST the record's id to the trigger's URL (shown after saving).")))
register(Kind("linked_stage", gettext_lazy("A linked record reaches a stage"), (".stage_changed",), _check_linked,
              _match_linked, example={"stage": 0, "role": ""}, targets=_linked_to_mover,
              help=gettext_lazy("stage: the id of the stage the linked record (a production order, a complaint …) "
                                "must reach; role: only links with this role (empty: any link).")))
