"""Writes to pipelines and stages (settings) and the generic stage move of any staged record."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.text import slugify
from django.utils.translation import gettext as _

from voronka.core import audit, config_cache, entity_types, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, ValidationFailed, from_django_validation
from voronka.core.recordkit import RecordSpec, update_one

from .models import Pipeline, Stage, StageHistory

SETTINGS = "settings:pipelines"
STAGE_FIELDS = ("name", "code", "sort", "color", "semantics", "required_fields", "ask_fields")


def move_to_stage(actor: Actor, spec: RecordSpec, item_id: int, *, stage, pipeline=None, fields: dict | None = None):
    """Move a staged record to ``stage`` (id or code), optionally in another pipeline, optionally setting the
    fields the stage requires in the same step. Moving back is allowed; every move is written to stage history."""
    data = dict(fields or {})
    if "stage" in data or "pipeline" in data:
        raise ValidationFailed(_("Give the stage as the target, not among the fields."))
    data["stage"] = stage
    if pipeline is not None:
        data["pipeline"] = pipeline
    return update_one(actor, spec, item_id, data)


def _clean(obj) -> None:
    try:
        obj.full_clean(validate_constraints=False)
    except ValidationError as exc:
        raise from_django_validation(exc) from None


def _unique_code(model, scope: dict, base: str) -> str:
    code = slugify(base, allow_unicode=False)[:50] or model.__name__.lower()
    candidate, n = code, 1
    while model.objects.filter(code=candidate, **scope).exists():
        n += 1
        candidate = f"{code}-{n}"
    return candidate


def create_pipeline(actor: Actor, *, entity_type_id: int, name: str, code: str = "", sort: int | None = None,
                    is_default: bool = False, stages: list[dict] | None = None) -> Pipeline:
    policies.require(actor, SETTINGS, entity_type_id)
    try:
        info = entity_types.get(entity_type_id)
    except LookupError:
        raise ValidationFailed(_("Unknown entity type."), fields={"entity_type_id": [_("unknown")]}) from None
    if not info.staged:
        raise ValidationFailed(_("This kind of record has no stages."), fields={"entity_type_id": [_("not staged")]})
    with transaction.atomic():
        if code and Pipeline.objects.filter(entity_type_id=entity_type_id, code=code).exists():
            raise Conflict(_("A pipeline with code «%(c)s» exists.") % {"c": code}, fields={"code": [_("taken")]})
        pipeline = Pipeline(entity_type_id=entity_type_id, name=name,
                            code=code or _unique_code(Pipeline, {"entity_type_id": entity_type_id}, name),
                            sort=sort if sort is not None else 100, is_default=is_default)
        _clean(pipeline)
        if is_default:
            Pipeline.objects.filter(entity_type_id=entity_type_id, is_default=True).update(is_default=False)
        elif not Pipeline.objects.filter(entity_type_id=entity_type_id).exists():
            pipeline.is_default = True
        pipeline.save()
        for index, stage in enumerate(stages or []):
            _create_stage(pipeline, {"sort": (index + 1) * 10, **stage})
        audit.record(actor, "pipeline.created", pipeline=pipeline.pk, name=pipeline.name,
                     entity=pipeline.entity_type_id)
        config_cache.bump()
        outbox.emit(actor, "pipeline.created", None, pipeline.pk, {"entity_type_id": entity_type_id})
        return pipeline


def _create_stage(pipeline: Pipeline, data: dict) -> Stage:
    unknown = set(data) - set(STAGE_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    if not data.get("code"):
        data = {**data, "code": _unique_code(Stage, {"pipeline": pipeline}, data.get("name") or "stage")}
    elif Stage.objects.filter(pipeline=pipeline, code=data["code"]).exists():
        raise Conflict(_("A stage with code «%(c)s» exists.") % {"c": data["code"]}, fields={"code": [_("taken")]})
    if "sort" not in data:
        data["sort"] = (Stage.objects.filter(pipeline=pipeline).aggregate(m=Max("sort"))["m"] or 0) + 10
    stage = Stage(pipeline=pipeline, **data)
    _clean(stage)
    _check_required_names(pipeline.entity_type_id, stage.required_fields)
    _check_required_names(pipeline.entity_type_id, stage.ask_fields, key="ask_fields")
    stage.save()
    return stage


def _check_required_names(entity_type_id: int, names, *, key: str = "required_fields") -> None:
    """``names``: a stage's required fields, or (``key`` «ask_fields») the optional ones asked on entry."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValidationFailed(_("Required fields must be a list of field names.") if key == "required_fields"
                               else _("Fields to ask must be a list of field names."),
                               fields={key: [_("must be a list of names")]})
    model = entity_types.get(entity_type_id).model
    known = {f.name for f in model._meta.get_fields()} | {"phones", "emails", "messengers", "websites"}
    from voronka.customfields.models import FieldDefinition

    custom = set(FieldDefinition.objects.filter(entity_type_id=entity_type_id).values_list("code", flat=True))
    bad = [n for n in names if n not in known and n.removeprefix("custom.") not in custom]
    if bad:
        raise ValidationFailed(_("Unknown fields: %(f)s.") % {"f": ", ".join(bad)}, fields={key: bad})


def create_stage(actor: Actor, pipeline_id: int, **data) -> Stage:
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
        if pipeline is None:
            raise NotFound(_("Pipeline #%(id)s does not exist.") % {"id": pipeline_id})
        policies.require(actor, SETTINGS, pipeline.entity_type_id)
        stage = _create_stage(pipeline, data)
        audit.record(actor, "stage.created", pipeline=pipeline.pk, stage=stage.pk, name=stage.name)
        config_cache.bump()
        outbox.emit(actor, "pipeline.changed", None, pipeline.pk, {"stage_created": stage.pk})
        return stage


def update_stage(actor: Actor, stage_id: int, **data) -> Stage:
    unknown = set(data) - set(STAGE_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        stage = Stage.objects.select_for_update().select_related("pipeline").filter(pk=stage_id).first()
        if stage is None:
            raise NotFound(_("Stage #%(id)s does not exist.") % {"id": stage_id})
        policies.require(actor, SETTINGS, stage.pipeline.entity_type_id)
        if "code" in data and data["code"] != stage.code and \
                Stage.objects.filter(pipeline_id=stage.pipeline_id, code=data["code"]).exists():
            raise Conflict(_("A stage with code «%(c)s» exists.") % {"c": data["code"]}, fields={"code": [_("taken")]})
        before = {key: getattr(stage, key) for key in data}
        for key, value in data.items():
            setattr(stage, key, value)
        _clean(stage)
        _check_required_names(stage.pipeline.entity_type_id, stage.required_fields)
        _check_required_names(stage.pipeline.entity_type_id, stage.ask_fields, key="ask_fields")
        stage.save()
        audit.record(actor, "stage.changed", pipeline=stage.pipeline_id, stage=stage.pk, name=stage.name,
                     changes={k: [before[k], getattr(stage, k)] for k in data if before[k] != getattr(stage, k)})
        config_cache.bump()
        outbox.emit(actor, "pipeline.changed", None, stage.pipeline_id, {"stage_updated": stage.pk})
        return stage


def reorder_stages(actor: Actor, pipeline_id: int, stage_ids: list[int]) -> None:
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
        if pipeline is None:
            raise NotFound(_("Pipeline #%(id)s does not exist.") % {"id": pipeline_id})
        policies.require(actor, SETTINGS, pipeline.entity_type_id)
        current = set(Stage.objects.filter(pipeline=pipeline).values_list("id", flat=True))
        if set(stage_ids) != current or len(stage_ids) != len(current):
            raise ValidationFailed(_("Give every stage of the pipeline exactly once."))
        for index, pk in enumerate(stage_ids):
            Stage.objects.filter(pk=pk).update(sort=(index + 1) * 10)
        audit.record(actor, "stage.reordered", pipeline=pipeline.pk, order=list(stage_ids))
        config_cache.bump()
        outbox.emit(actor, "pipeline.changed", None, pipeline.pk, {"reordered": True})


def delete_stage(actor: Actor, stage_id: int) -> None:
    with transaction.atomic():
        stage = Stage.objects.select_for_update().select_related("pipeline").filter(pk=stage_id).first()
        if stage is None:
            raise NotFound(_("Stage #%(id)s does not exist.") % {"id": stage_id})
        policies.require(actor, SETTINGS, stage.pipeline.entity_type_id)
        model = entity_types.get(stage.pipeline.entity_type_id).model
        if model.objects.filter(stage=stage).exists() or StageHistory.objects.filter(to_stage=stage).exists():
            raise Conflict(_("Stage «%(s)s» has records or history; move them first.") % {"s": stage.name})
        stage.delete()
        audit.record(actor, "stage.deleted", pipeline=stage.pipeline_id, stage=stage_id, name=stage.name)
        config_cache.bump()
        outbox.emit(actor, "pipeline.changed", None, stage.pipeline_id, {"stage_deleted": stage_id})


PIPELINE_FIELDS = ("name", "sort", "is_default")


def update_pipeline(actor: Actor, pipeline_id: int, **data) -> Pipeline:
    """Rename, reorder or make default a pipeline (the Bitrix24 facade's ``crm.category.update``)."""
    unknown = set(data) - set(PIPELINE_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
        if pipeline is None:
            raise NotFound(_("Pipeline #%(id)s does not exist.") % {"id": pipeline_id})
        policies.require(actor, SETTINGS, pipeline.entity_type_id)
        before = {k: getattr(pipeline, k) for k in data}
        for key, value in data.items():
            setattr(pipeline, key, value)
        _clean(pipeline)
        if data.get("is_default"):
            Pipeline.objects.filter(entity_type_id=pipeline.entity_type_id, is_default=True).exclude(
                pk=pipeline.pk).update(is_default=False)
        pipeline.save()
        audit.record(actor, "pipeline.changed", pipeline=pipeline.pk, name=pipeline.name,
                     changes={k: [before[k], getattr(pipeline, k)] for k in data if before[k] != getattr(pipeline, k)})
        config_cache.bump()
        outbox.emit(actor, "pipeline.changed", None, pipeline.pk, {"changed": sorted(data)})
        return pipeline


def delete_pipeline(actor: Actor, pipeline_id: int) -> None:
    """Delete an empty pipeline that is not the default one (records or history keep it)."""
    with transaction.atomic():
        pipeline = Pipeline.objects.select_for_update().filter(pk=pipeline_id).first()
        if pipeline is None:
            raise NotFound(_("Pipeline #%(id)s does not exist.") % {"id": pipeline_id})
        policies.require(actor, SETTINGS, pipeline.entity_type_id)
        if pipeline.is_default:
            raise Conflict(_("The default pipeline cannot be deleted."))
        model = entity_types.get(pipeline.entity_type_id).model
        if model.objects.filter(pipeline=pipeline).exists() or StageHistory.objects.filter(pipeline=pipeline).exists():
            raise Conflict(_("Pipeline «%(p)s» has records or history; move them first.") % {"p": pipeline.name})
        from django.db.models import ProtectedError

        try:
            with transaction.atomic():
                pipeline.stages.all().delete()
                pipeline.delete()
        except ProtectedError:  # robots, limits or other settings still point at its stages
            raise Conflict(_("Pipeline «%(p)s» is still used by robots or other settings.") % {"p": pipeline.name}) from None
        audit.record(actor, "pipeline.deleted", pipeline=pipeline_id, name=pipeline.name)
        config_cache.bump()
        outbox.emit(actor, "pipeline.deleted", None, pipeline_id, {"entity_type_id": pipeline.entity_type_id})
