"""Every write to links: link, unlink, repoint (used when records are merged)."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import entity_types, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed
from voronka.core.selectors import get_record_for

from .models import Link

ROLE_RE = re.compile(r"^[a-z0-9_\-]{0,50}$")

Ref = tuple[int, int]


def _ref(value, name: str) -> Ref:
    try:
        type_id, pk = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationFailed(_("A record is named by its kind and id."), fields={name: [_("kind and id")]}) from None
    try:
        entity_types.get(type_id)
    except LookupError:
        raise ValidationFailed(_("Unknown kind of record."), fields={name: [_("unknown kind")]}) from None
    return type_id, pk


def _check(actor: Actor, ref: Ref):
    """The record, if the actor may read it (otherwise «not found», whether it exists or not)."""
    return get_record_for(actor, ref[0], ref[1])


def _title(obj) -> str:
    return str(getattr(obj, "title", "") or getattr(obj, "name", "") or obj)


def _may_change_one(actor: Actor, a: Ref, a_obj, b: Ref, b_obj) -> None:
    """Linking changes both records' cards: the actor must be allowed to change at least one of them."""
    if policies.can(actor, policies.UPDATE, a[0], a_obj) or policies.can(actor, policies.UPDATE, b[0], b_obj):
        return
    raise PermissionDenied(_("You may not change either of these records."), code="forbidden_update")


def link(actor: Actor, source, target, *, role: str = "") -> Link:
    """Link two records (idempotent: an existing live link with the same role is returned as it is)."""
    source, target = _ref(source, "source"), _ref(target, "target")
    role = (role or "").strip().lower()
    if not ROLE_RE.match(role):
        raise ValidationFailed(_("A role is up to 50 small Latin letters, digits, «-» or «_»."),
                               fields={"role": [_("letters, digits, - or _")]})
    if source == target:
        raise ValidationFailed(_("A record cannot be linked to itself."), fields={"target": [_("the same record")]})
    with transaction.atomic():
        s_obj, t_obj = _check(actor, source), _check(actor, target)
        _may_change_one(actor, source, s_obj, target, t_obj)
        existing = Link.objects.filter(source_type_id=source[0], source_id=source[1], target_type_id=target[0],
                                       target_id=target[1], role=role, deleted_at__isnull=True).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                obj = Link.objects.create(source_type_id=source[0], source_id=source[1], target_type_id=target[0],
                                          target_id=target[1], role=role, created_by_id=actor.user_id,
                                          cause=actor.cause[:100])
        except IntegrityError:  # a concurrent call made the same link first
            return Link.objects.get(source_type_id=source[0], source_id=source[1], target_type_id=target[0],
                                    target_id=target[1], role=role, deleted_at__isnull=True)
        data = {"link": obj.pk, "event": "linked", "source": list(source), "target": list(target), "role": role,
                "source_title": _title(s_obj), "target_title": _title(t_obj)}
        text = _("«%(source)s» → «%(target)s»") % {"source": _title(s_obj), "target": _title(t_obj)}
        history.entry(actor, source[0], source[1], "linked", text=text, data=data, also=[target])
        outbox.emit(actor, "link.created", source[0], source[1], data)
        return obj


def _lock(actor: Actor, link_id) -> tuple[Link, object, object]:
    obj = Link.objects.select_for_update().filter(pk=link_id, deleted_at__isnull=True).first() \
        if str(link_id).isdigit() else None
    if obj is None:
        raise NotFound(_("Link #%(id)s does not exist.") % {"id": link_id})
    try:
        s_obj = _check(actor, (obj.source_type_id, obj.source_id))
        t_obj = _check(actor, (obj.target_type_id, obj.target_id))
    except NotFound:
        raise NotFound(_("Link #%(id)s does not exist.") % {"id": link_id}) from None
    return obj, s_obj, t_obj


def unlink(actor: Actor, link_id) -> Link:
    with transaction.atomic():
        obj, s_obj, t_obj = _lock(actor, link_id)
        source, target = (obj.source_type_id, obj.source_id), (obj.target_type_id, obj.target_id)
        _may_change_one(actor, source, s_obj, target, t_obj)
        obj.deleted_at = timezone.now()
        obj.deleted_by_id = actor.user_id
        obj.save(update_fields=["deleted_at", "deleted_by"])
        data = {"link": obj.pk, "event": "unlinked", "source": list(source), "target": list(target),
                "role": obj.role, "source_title": _title(s_obj), "target_title": _title(t_obj)}
        text = _("Unlinked: «%(source)s» → «%(target)s»") % {"source": _title(s_obj), "target": _title(t_obj)}
        history.entry(actor, source[0], source[1], "linked", text=text, data=data, also=[target])
        outbox.emit(actor, "link.deleted", source[0], source[1], data)
        return obj


def repoint(actor: Actor, old, new) -> int:
    """Move every live link of ``old`` onto ``new`` (a merge keeps the merged record's links).

    Links that would duplicate one ``new`` already has, or link ``new`` to itself, are closed instead.
    The caller (the merge action) has checked the rights on both records and holds the transaction.
    """
    old, new = _ref(old, "old"), _ref(new, "new")
    moved = 0
    now = timezone.now()
    for obj in Link.objects.select_for_update().filter(deleted_at__isnull=True).filter(
            _side_q(old)).order_by("pk"):
        source = new if (obj.source_type_id, obj.source_id) == old else (obj.source_type_id, obj.source_id)
        target = new if (obj.target_type_id, obj.target_id) == old else (obj.target_type_id, obj.target_id)
        duplicate = source == target or Link.objects.filter(
            source_type_id=source[0], source_id=source[1], target_type_id=target[0], target_id=target[1],
            role=obj.role, deleted_at__isnull=True).exclude(pk=obj.pk).exists()
        if duplicate:
            obj.deleted_at, obj.deleted_by_id = now, actor.user_id
            obj.save(update_fields=["deleted_at", "deleted_by"])
            continue
        obj.source_type_id, obj.source_id = source
        obj.target_type_id, obj.target_id = target
        obj.save(update_fields=["source_type_id", "source_id", "target_type_id", "target_id"])
        moved += 1
    return moved


def _side_q(ref: Ref):
    from django.db.models import Q

    return Q(source_type_id=ref[0], source_id=ref[1]) | Q(target_type_id=ref[0], target_id=ref[1])
