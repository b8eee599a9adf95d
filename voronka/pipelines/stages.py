"""Stages as part of the record write path, shared by leads, deals and smart-process items."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence

from django.core.exceptions import FieldDoesNotExist
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import fastinsert, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.recordkit import Hook, WriteContext

from . import daily, stays, totals
from .models import Pipeline, Stage, StageHistory


def _stages(batch: dict, entity_type_id: int) -> dict:
    """All pipelines and stages of an entity type: cached per process, checked against the settings version
    once per call."""
    from voronka.core import config_cache

    key = ("stages", entity_type_id)
    if key not in batch:
        if "config_version" not in batch:
            batch["config_version"] = config_cache.current_version()

        def load():
            pipelines = {p.pk: p for p in Pipeline.objects.filter(entity_type_id=entity_type_id)}
            stages = list(Stage.objects.filter(pipeline_id__in=list(pipelines)).order_by("pipeline_id", "sort", "id"))
            return {"pipelines": pipelines, "stages": {s.pk: s for s in stages},
                    "by_pipeline": {pid: [s for s in stages if s.pipeline_id == pid] for pid in pipelines}}

        batch[key] = config_cache.cached(key, load, batch["config_version"])
    return batch[key]


def _order(info: dict, pipeline_id: int) -> dict[int, int]:
    """``daily.order_of`` of a pipeline, computed once per cached settings version."""
    orders = info.setdefault("orders", {})
    if pipeline_id not in orders:
        orders[pipeline_id] = daily.order_of(info["by_pipeline"].get(pipeline_id, []))
    return orders[pipeline_id]


def _signature(info: dict, pipeline_id: int) -> str:
    signatures = info.setdefault("signatures", {})
    if pipeline_id not in signatures:
        signatures[pipeline_id] = daily.signature(info["by_pipeline"].get(pipeline_id, []))
    return signatures[pipeline_id]


def default_pipeline(info: dict) -> Pipeline | None:
    active = [p for p in info["pipelines"].values() if p.is_active]
    for p in sorted(active, key=lambda p: (p.sort, p.pk)):
        if p.is_default:
            return p
    return min(active, key=lambda p: (p.sort, p.pk), default=None)


def resolve_stage(info: dict, pipeline: Pipeline, ref) -> Stage | None:
    for stage in info["by_pipeline"].get(pipeline.pk, []):
        if (isinstance(ref, int) and not isinstance(ref, bool) and stage.pk == ref) or \
                (isinstance(ref, str) and (stage.code == ref or (ref.isdigit() and stage.pk == int(ref)))):
            return stage
    return None


def missing_required(obj, stage: Stage, comms: dict | None = None) -> list[str]:
    """Names of the fields ``stage`` requires that ``obj`` has empty."""
    missing = []
    for name in stage.required_fields or []:
        if name in ("phones", "emails", "messengers", "websites"):
            if comms is not None and name in comms:
                empty = not comms[name]
            else:
                from voronka.parties.models import Communication

                empty = not obj.pk or not Communication.objects.filter(
                    entity_type_id=obj.ENTITY_TYPE_ID, entity_id=obj.pk,
                    kind={"messengers": "im", "websites": "web"}.get(name, name[:-1])).exists()
        elif name.startswith("uf_") or name.startswith("custom."):
            code = name.removeprefix("custom.")
            empty = (obj.custom or {}).get(code) in (None, "", [])
        else:
            value = getattr(obj, f"{name}_id", None) if hasattr(obj, f"{name}_id") else getattr(obj, name, None)
            empty = value in (None, "", []) or (name == "opportunity" and not value)
        if empty:
            missing.append(name)
    return missing


def field_labels(entity_type_id: int, model, names) -> dict[str, str]:
    """Human names of required-field names: a custom field's label, a model field's verbose name."""
    from voronka.customfields.models import FieldDefinition

    codes = [n.removeprefix("custom.") for n in names if n.startswith(("custom.", "uf_"))]
    custom = dict(FieldDefinition.objects.filter(entity_type_id=entity_type_id, code__in=codes)
                  .values_list("code", "label")) if codes else {}
    labels = {}
    for name in names:
        if name.startswith(("custom.", "uf_")):
            labels[name] = custom.get(name.removeprefix("custom."), name)
        elif name == "phones":
            labels[name] = str(_("Phone"))
        elif name == "emails":
            labels[name] = str(_("E-mail"))
        else:
            try:
                labels[name] = str(model._meta.get_field(name).verbose_name)
            except FieldDoesNotExist:  # an unknown name is shown as it is
                labels[name] = name
    return labels


class StageHook(Hook):
    keys = ("pipeline", "stage")

    def prepare(self, ctx: WriteContext) -> None:
        obj, data = ctx.obj, ctx.data
        if not ctx.creating and "pipeline" not in data and "stage" not in data:
            return
        info = _stages(ctx.batch, ctx.spec.entity_type_id)
        pipeline = None
        if "pipeline" in data and data["pipeline"] not in (None, ""):
            ref = data["pipeline"]
            pipeline = next((p for p in info["pipelines"].values() if (str(p.pk) == str(ref) or p.code == ref)), None)
            if pipeline is None or not pipeline.is_active:
                ctx.error("pipeline", _("No such pipeline."))
                return
        elif ctx.creating:
            pipeline = default_pipeline(info)
            if pipeline is None:
                ctx.error("pipeline", _("There is no pipeline for this kind of record yet."))
                return
        else:
            pipeline = info["pipelines"][obj.pipeline_id]
        if data.get("stage") not in (None, ""):
            stage = resolve_stage(info, pipeline, data["stage"])
            if stage is None:
                ctx.error("stage", _("No stage «%(s)s» in pipeline «%(p)s».") % {"s": data["stage"], "p": pipeline.name})
                return
        elif ctx.creating or pipeline.pk != obj.pipeline_id:
            stages = info["by_pipeline"].get(pipeline.pk) or []
            if not stages:
                ctx.error("stage", _("Pipeline «%(p)s» has no stages.") % {"p": pipeline.name})
                return
            stage = stages[0]
        else:
            return
        if not ctx.creating and stage.pk == obj.stage_id:
            return
        if not ctx.creating and pipeline.pk != obj.pipeline_id:
            # moving into another pipeline needs the right to add records there
            policies.require(ctx.actor, policies.ADD, ctx.spec.entity_type_id, obj, pipeline_id=pipeline.pk)
        ctx.state["from_pipeline"] = None if ctx.creating else obj.pipeline_id
        ctx.state["move"] = (obj.stage_id if not ctx.creating else None, stage)
        ctx.state["own_history"] = ("pipeline", "stage")
        ctx.state["dirty"] = True
        now = ctx.batch.get("now") or timezone.now()  # a batch of creates: the time it stamps its records with
        ctx.state["closing_before"] = (obj.stage_semantics, obj.closed_at)
        ctx.state["seconds"] = None if ctx.creating else int((now - obj.stage_changed_at).total_seconds())
        obj.pipeline_id, obj.stage_id, obj.stage_semantics, obj.stage_changed_at = pipeline.pk, stage.pk, stage.semantics, now
        obj.closed_at = now if stage.is_final else None

    def finish(self, ctx: WriteContext) -> None:
        move = ctx.state.get("move")
        if not move:
            return
        stage = move[1]
        comms = {k: ctx.state[k] for k in ("phones", "emails", "messengers", "websites") if k in ctx.state}
        missing = missing_required(ctx.obj, stage, comms)
        for name in missing:
            ctx.error(name, _("Required to enter stage «%(s)s».") % {"s": stage.name})
        if missing:  # the 4xx names them: «To enter stage «Production», fill in: Product, Quantity.»
            labels = field_labels(ctx.spec.entity_type_id, type(ctx.obj), missing)
            ctx.state["failure_message"] = _("To enter stage «%(s)s», fill in: %(f)s.") % {
                "s": stage.name, "f": ", ".join(labels[n] for n in missing)}

    staged_create = True  # after_create writes only through fastinsert (and ``fastinsert.then``)

    def after_create(self, actor: Actor, contexts: Sequence[WriteContext]) -> None:
        user_id, entry_point, cause = actor.user_id, actor.entry_point[:20], actor.cause[:100]
        fastinsert.insert_rows(StageHistory, [
            {"entity_type_id": c.spec.entity_type_id, "entity_id": c.obj.pk, "pipeline_id": c.obj.pipeline_id,
             "from_stage_id": None, "to_stage_id": c.obj.stage_id, "semantics": c.obj.stage_semantics,
             "moved_at": c.obj.stage_changed_at, "actor_user_id": user_id, "responsible_id": c.obj.responsible_id,
             "entry_point": entry_point, "cause": cause} for c in contexts])
        totals.apply((totals.key_of(c.spec.entity_type_id, c.obj), 1, c.obj.opportunity) for c in contexts)
        if contexts:
            type_id = contexts[0].spec.entity_type_id
            batch = contexts[0].batch
            info = _stages(batch, type_id)
            rows, pipes = [], set()
            for c in contexts:
                pipes.add(c.obj.pipeline_id)
                order = _order(info, c.obj.pipeline_id)
                rows += daily.contribution(type_id, daily.state_of(c.obj), daily.furthest([c.obj.stage_id], order))
            daily.apply(rows)
            q = _qualifying(info, type_id, batch)
            stays.apply([r for c in contexts for r in stays.contribution(
                type_id, daily.state_of(c.obj, qualifying=q), [(None, c.obj.stage_id, None, c.obj.stage_changed_at)])])
            for pid in sorted(pipes):
                # a write of its own (rare: once per process and settings version): in the transaction, staged or not
                fastinsert.then(functools.partial(daily.note_order, type_id, pid, info["by_pipeline"].get(pid, []),
                                                  version=batch.get("config_version"), sig=_signature(info, pid)))

    def after_delete(self, obj, spec) -> None:
        totals.apply([(totals.key_of(spec.entity_type_id, obj), -1, -obj.opportunity)])
        rows, stay_rows = _daily_rows(spec.entity_type_id, obj)
        daily.change(spec.entity_type_id, rows, [])
        stays.change(stay_rows, [])

    def after_restore(self, obj, spec) -> None:
        totals.apply([(totals.key_of(spec.entity_type_id, obj), 1, obj.opportunity)])
        rows, stay_rows = _daily_rows(spec.entity_type_id, obj)
        daily.apply(rows)
        stays.apply(stay_rows)

    def after_update(self, actor: Actor, ctx: WriteContext) -> None:
        move = ctx.state.get("move")
        obj, before, type_id = ctx.obj, ctx.before, ctx.spec.entity_type_id
        old_key = totals.key_of(type_id, obj, stage_id=move[0] if move else obj.stage_id,
                                pipeline_id=ctx.state["from_pipeline"] if move else obj.pipeline_id,
                                responsible_id=before.get("responsible", obj.responsible_id) or 0,
                                is_open=before.get("is_open", obj.is_open),
                                currency=before.get("currency", obj.currency))
        totals.move(old_key, totals.key_of(type_id, obj), before.get("opportunity", obj.opportunity), obj.opportunity)
        _daily_update(ctx)
        if not move:
            return
        record_move(actor, ctx.spec.entity_type_id, ctx.spec.code, ctx.obj, move[0], move[1], ctx.state["seconds"],
                    ctx.state["from_pipeline"])


DAILY_FIELDS = ("responsible", "is_open", "source", "opportunity")


def _qualifying(info: dict, type_id: int, batch: dict) -> frozenset:
    """The stages whose first entry qualifies a record of this kind (``stays.QUALIFYING``), kept with the cached
    settings of the version the write read them at."""
    if stays.QUALIFYING is None:
        return frozenset()
    if "qualifying" not in info:
        info["qualifying"] = stays.QUALIFYING(type_id, batch.get("config_version")) or frozenset()
    return info["qualifying"]


def _daily_rows(type_id: int, obj) -> tuple[list, list]:
    """The read-model rows of a record as it is: (daily totals, stay totals), its history read once."""
    return own_rows(type_id, [obj])


def own_rows(type_id: int, objs: Sequence) -> tuple[list, list]:
    """The read-model rows of live records as they are — (daily totals, stay totals), each a list of (key, count,
    amount or seconds) — exactly what the writes add for them; their history read in one statement. The reports add
    them for the few records a viewer observes beyond his rights (``analytics.readmodel``)."""
    if not objs:
        return [], []
    batch: dict = {}
    info = _stages(batch, type_id)
    q = _qualifying(info, type_id, batch)
    moves: dict[int, list] = defaultdict(list)
    for eid, *move in (StageHistory.objects.filter(entity_type_id=type_id, entity_id__in=[o.pk for o in objs])
                       .order_by("id").values_list("entity_id", "from_stage_id", "to_stage_id",
                                                   "seconds_in_previous", "moved_at")):
        moves[eid].append(tuple(move))
    daily_rows, stay_rows = [], []
    for obj in objs:
        record_moves = moves.get(obj.pk, [])
        state = daily.state_of(obj, qualifying=q)
        daily_rows += daily.contribution(type_id, state, daily.furthest({m[1] for m in record_moves},
                                                                        _order(info, obj.pipeline_id)))
        stay_rows += stays.contribution(type_id, state, record_moves)
    return daily_rows, stay_rows


def _daily_update(ctx: WriteContext) -> None:
    """Move the record's read-model rows from its state before the write to its state after it (before the move's
    own history row is written: the history read here is the one before the move)."""
    move = ctx.state.get("move")
    obj, before, type_id = ctx.obj, ctx.before, ctx.spec.entity_type_id
    if not move and all(before.get(f, getattr(obj, f"{f}_id" if f == "responsible" else f, None))
                        == getattr(obj, f"{f}_id" if f == "responsible" else f, None) for f in DAILY_FIELDS):
        return
    info = _stages(ctx.batch, type_id)
    moves = stays.history(type_id, obj.pk)
    entered = {m[1] for m in moves}
    old_pipeline = ctx.state["from_pipeline"] if move else obj.pipeline_id
    semantics, closed_at = ctx.state["closing_before"] if move else (obj.stage_semantics, obj.closed_at)
    q = _qualifying(info, type_id, ctx.batch)
    old = daily.state_of(obj, pipeline_id=old_pipeline, stage_id=move[0] if move else obj.stage_id,
                         semantics=semantics, closed_at=closed_at, qualifying=q,
                         **{("responsible_id" if f == "responsible" else f): before[f] for f in DAILY_FIELDS if f in before})
    old_reached = daily.furthest(entered, _order(info, old_pipeline))
    new_reached = daily.furthest(entered | {obj.stage_id}, _order(info, obj.pipeline_id))
    new = daily.state_of(obj, qualifying=q)
    daily.change(type_id, daily.contribution(type_id, old, old_reached), daily.contribution(type_id, new, new_reached))
    # the stay this move ends is not in the history yet (``record_move`` writes it after this)
    ended = [(move[0], move[1].pk, ctx.state["seconds"], obj.stage_changed_at)] if move else []
    stays.change(stays.contribution(type_id, old, moves), stays.contribution(type_id, new, [*moves, *ended]))
    if move:
        daily.note_order(type_id, obj.pipeline_id, info["by_pipeline"].get(obj.pipeline_id, []),
                         version=ctx.batch.get("config_version"), sig=_signature(info, obj.pipeline_id))


def record_move(actor: Actor, entity_type_id: int, code: str, obj, from_stage_id: int | None, stage: Stage,
                seconds: int | None, from_pipeline_id: int | None) -> None:
    StageHistory.objects.create(
        entity_type_id=entity_type_id, entity_id=obj.pk, pipeline_id=obj.pipeline_id, from_stage_id=from_stage_id,
        to_stage=stage, semantics=stage.semantics, moved_at=obj.stage_changed_at, seconds_in_previous=seconds,
        actor_user_id=actor.user_id, responsible_id=obj.responsible_id, entry_point=actor.entry_point[:20],
        cause=actor.cause[:100])
    history.entry(actor, entity_type_id, obj.pk, "stage",
                  changes={"stage": [from_stage_id, stage.pk]},
                  data={"from_stage": from_stage_id, "to_stage": stage.pk, "seconds_in_previous": seconds,
                        "semantics": stage.semantics, "pipeline": obj.pipeline_id})
    outbox.emit(actor, f"{code}.stage_changed", entity_type_id, obj.pk,
                {"from_stage": from_stage_id, "to_stage": stage.pk, "pipeline": obj.pipeline_id,
                 "from_pipeline": from_pipeline_id, "semantics": stage.semantics})
