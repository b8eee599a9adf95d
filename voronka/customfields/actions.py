"""Administrators define custom fields; values are validated by customfields.validation on every record write."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import audit, config_cache, entity_types, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, ValidationFailed, from_django_validation

from .models import FieldDefinition

FIELDS = ("code", "label", "kind", "required", "multiple", "options", "max_length", "sort", "is_filterable", "pipeline")


def _check_options(defn: FieldDefinition) -> None:
    if not isinstance(defn.options, dict):
        raise ValidationFailed(_("Options must be an object."), fields={"options": [_("must be an object")]})
    if defn.kind == FieldDefinition.Kind.ENUM:
        choices = defn.options.get("choices")
        if not isinstance(choices, list) or not choices or not all(
                isinstance(c, dict) and str(c.get("id", "")).strip() and isinstance(c.get("label"), str) for c in choices):
            raise ValidationFailed(_("A list field needs choices: [{\"id\": …, \"label\": …}]."),
                                   fields={"options": [_("choices are missing or malformed")]})
        ids = [str(c["id"]) for c in choices]
        if len(set(ids)) != len(ids):
            raise ValidationFailed(_("Choice ids must be unique."), fields={"options": [_("duplicate choice id")]})
    if defn.kind == FieldDefinition.Kind.LINK:
        target = defn.options.get("entity_type_id")
        try:
            entity_types.get(int(target))
        except (LookupError, TypeError, ValueError):
            raise ValidationFailed(_("A link field needs the kind of record it links to."),
                                   fields={"options": [_("entity_type_id is missing or unknown")]}) from None


def define_field(actor: Actor, *, entity_type_id: int, **data) -> FieldDefinition:
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    try:
        entity_types.get(int(entity_type_id))
    except (LookupError, TypeError, ValueError):
        raise ValidationFailed(_("Unknown kind of record."), fields={"entity_type_id": [_("unknown")]}) from None
    policies.require(actor, "settings:fields", entity_type_id)
    with transaction.atomic():
        if FieldDefinition.objects.filter(entity_type_id=entity_type_id, code=data.get("code")).exists():
            raise Conflict(_("A field with code «%(c)s» exists.") % {"c": data.get("code")}, fields={"code": [_("taken")]})
        pipeline = data.pop("pipeline", None)
        defn = FieldDefinition(entity_type_id=entity_type_id, pipeline_id=pipeline, **data)
        try:
            defn.full_clean(validate_constraints=False)
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        _check_options(defn)
        defn.save()
        audit.record(actor, "field.created", field=defn.pk, code=defn.code, entity=defn.entity_type_id)
        config_cache.bump()
        outbox.emit(actor, "field.defined", None, defn.pk, {"entity_type_id": entity_type_id, "code": defn.code})
        return defn


def update_field(actor: Actor, field_id: int, **data) -> FieldDefinition:
    allowed = {"label", "required", "options", "max_length", "sort", "is_filterable"}
    unknown = set(data) - allowed
    if unknown:
        raise ValidationFailed(_("These fields cannot be changed."), fields={k: [_("cannot be changed")] for k in sorted(unknown)})
    with transaction.atomic():
        defn = FieldDefinition.objects.select_for_update().filter(pk=field_id).first()
        if defn is None:
            raise NotFound(_("Field #%(id)s does not exist.") % {"id": field_id})
        policies.require(actor, "settings:fields", defn.entity_type_id)
        for key, value in data.items():
            setattr(defn, key, value)
        try:
            defn.full_clean(validate_constraints=False)
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        _check_options(defn)
        defn.save()
        audit.record(actor, "field.changed", field=defn.pk, code=defn.code, changed=sorted(data))
        config_cache.bump()
        outbox.emit(actor, "field.changed", None, defn.pk, {"changed": sorted(data)})
        return defn


def delete_field(actor: Actor, field_id: int) -> None:
    """Removes the definition; values already stored stay in the records' JSON (nothing is lost)."""
    with transaction.atomic():
        defn = FieldDefinition.objects.select_for_update().filter(pk=field_id).first()
        if defn is None:
            raise NotFound(_("Field #%(id)s does not exist.") % {"id": field_id})
        policies.require(actor, "settings:fields", defn.entity_type_id)
        defn.delete()
        audit.record(actor, "field.deleted", field=field_id, code=defn.code, entity=defn.entity_type_id)
        config_cache.bump()
        outbox.emit(actor, "field.deleted", None, field_id, {"code": defn.code})
