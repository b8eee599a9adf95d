"""Even distribution of new records among present employees (F14) and hand-off (F17).

A queue's state (the round-robin pointer, the weighted round-robin weights) changes only while its row is
locked (``select_for_update``) inside the transaction that also writes the record, so concurrent intake
clients take turns: two clients never pick from the same pointer and a member's cap of open items holds
(on PostgreSQL each statement after the lock sees what the previous holder committed; SQLite serialises
writers anyway). Open items are counted from the stage totals read model: one small query, no scan.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import entity_types, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from voronka.core.recordkit import RecordSpec, lock, update_one
from voronka.pipelines.models import Stage, StageTotal

from .models import FreeItem, Queue, QueueMember

SETTINGS = "settings:users"


def spec_for(entity_type_id: int) -> RecordSpec:
    if entity_type_id == entity_types.LEAD:
        from voronka.leads.actions import LEAD

        return LEAD
    if entity_type_id == entity_types.DEAL:
        from voronka.deals.actions import DEAL

        return DEAL
    raise ValidationFailed(_("Records of this kind are not distributed."), fields={"entity_type_id": [_("unknown")]})


def open_counts(entity_type_id: int, user_ids) -> dict[int, int]:
    """Open (in-progress, not deleted) items per responsible, from the stage totals."""
    user_ids = list(user_ids)
    counts = dict.fromkeys(user_ids, 0)
    if not user_ids:
        return counts
    sql, params, positions = _open_counts_sql(entity_type_id, len(user_ids))
    params = list(params)
    for pos, pk in zip(positions, user_ids, strict=True):
        params[pos] = pk
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(sql, params)
        for responsible_id, n in cursor.fetchall():
            counts[responsible_id] = int(n or 0)
    return counts


_open_counts_plans: dict[tuple, tuple[str, list, list[int]]] = {}


def _open_counts_sql(entity_type_id: int, n: int) -> tuple[str, list, list[int]]:
    """The open-count query compiled once per database, kind of record and number of users (the ORM compiled it on
    every pick): placeholder ids are compiled in and their positions among the parameters remembered."""
    connection = transaction.get_connection()
    key = (connection.vendor, connection.alias, entity_type_id, n)
    plan = _open_counts_plans.get(key)
    if plan is None:
        placeholders = [-1000 - i for i in range(n)]
        process = Stage.objects.filter(pipeline__entity_type_id=entity_type_id, semantics=Stage.Semantics.PROCESS)
        qs = (StageTotal.objects.filter(entity_type_id=entity_type_id, responsible_id__in=placeholders,
                                        stage_id__in=process.values("id"))
              .values("responsible_id").annotate(n=Sum("count")).values_list("responsible_id", "n"))
        sql, params = qs.query.get_compiler(using=connection.alias).as_sql()
        params = list(params)
        positions = [params.index(p) for p in placeholders]
        if len(_open_counts_plans) > 256:  # bounded however many queue sizes come and go
            _open_counts_plans.clear()
        plan = _open_counts_plans[key] = (sql, params, positions)
    return plan


def _cap(queue: Queue, member: QueueMember) -> int | None:
    return member.cap if member.cap is not None else queue.cap


def at_work(user, t=None) -> bool:
    """Within the user's working time by the working calendar (company week and holidays, the user's own
    hours, time zone and absences), at ``t`` or now (``core.clock``, so tests drive it)."""
    from voronka.calendars.working_time import is_working_time
    from voronka.core import clock

    return is_working_time(user, t or clock.now())


def drain_working_hours(limit: int = 200) -> int:
    """Worker job: queues that follow the working calendar give their waiting free items to the members whose
    working time has begun (nobody switches anything at 9:00). Returns how many items were given."""
    given = 0
    ids = list(Queue.objects.filter(is_active=True, working_hours=True, free_items__isnull=False)
               .values_list("id", flat=True).distinct())
    for queue_id in ids:
        given += drain(Actor.system(cause="distribution:working-hours", entry_point="worker"), queue_id, limit=limit)
    return given


def _lock_queue(queue_id) -> Queue:
    queue = Queue.objects.select_for_update().filter(pk=queue_id).first()
    if queue is None:
        raise NotFound(_("Distribution queue #%(id)s does not exist.") % {"id": queue_id})
    return queue


def _pick(queue: Queue) -> QueueMember | None:
    """Choose the member who gets the next item; the queue row must be locked by the caller."""
    if not queue.is_active:
        return None
    members = _members(queue.pk)
    present = [m for m in members if m.user.is_active and m.user.is_present]
    if queue.working_hours and present:
        present = [m for m in present if at_work(m.user)]
    if not present:
        return None
    counts = open_counts(queue.entity_type_id, [m.user_id for m in present])
    eligible = [m for m in present if _cap(queue, m) is None or counts[m.user_id] < _cap(queue, m)]
    if not eligible:
        return None
    if queue.mode == Queue.Mode.LEAST_LOADED:
        order = {m.pk: i for i, m in enumerate(members)}
        after = order.get(queue.last_member_id, -1)
        # the fewest open items; among equals, the next one after the last chosen (a fair tie-break)
        chosen = min(eligible, key=lambda m: (counts[m.user_id], (order[m.pk] - after - 1) % len(members)))
    elif queue.mode == Queue.Mode.WEIGHTED:
        total = sum(max(m.weight, 0) for m in eligible)
        if total == 0:
            return None
        for m in eligible:  # smooth weighted round robin: even spread in proportion to the weights
            m.current_weight += m.weight
        chosen = max(eligible, key=lambda m: (m.current_weight, -m.sort, -m.pk))
        chosen.current_weight -= total
        QueueMember.objects.bulk_update(eligible, ["current_weight"])
    else:
        order = [m.pk for m in members]
        start = order.index(queue.last_member_id) + 1 if queue.last_member_id in order else 0
        by_pk = {m.pk: m for m in eligible}
        chosen = next(by_pk[pk] for pk in order[start:] + order[:start] if pk in by_pk)
    now = timezone.now()
    chosen.assigned_count += 1
    chosen.last_assigned_at = now
    queue.last_member_id = chosen.pk
    queue.assigned_total += 1
    _advance(queue, chosen)
    return chosen


_members_plan: list = []  # [(Prepared, member columns, user columns)], built at the first pick


def _members(queue_id: int) -> list[QueueMember]:
    """The queue's members in turn order (sort, id) with their users, as ``queue.members.select_related("user")``
    gives them, by a query compiled once (the ORM compiled it on every record a queue distributed)."""
    if not _members_plan:
        from voronka.core.prepared import Prepared

        member_columns = [f.attname for f in QueueMember._meta.concrete_fields]
        user_columns = [f.attname for f in get_user_model()._meta.concrete_fields]
        _members_plan.append((Prepared(lambda pk: QueueMember.objects.filter(queue_id=pk).order_by("sort", "id")
                                       .values_list(*member_columns, *(f"user__{c}" for c in user_columns)), [-7]),
                              member_columns, user_columns))
    query, member_columns, user_columns = _members_plan[0]
    width, User, related = len(member_columns), get_user_model(), QueueMember._meta.get_field("user")
    members = []
    for row in query.rows(queue_id):
        member = QueueMember.from_db("default", member_columns, row[:width])
        related.set_cached_value(member, User.from_db("default", user_columns, row[width:]))
        members.append(member)
    return members


_advance_sql: dict[str, tuple[str, str]] = {}


def _advance(queue: Queue, chosen: QueueMember) -> None:
    """The pick's two writes (the member's count and time, the queue's pointer and total) as statements written
    once per database: the ORM compiled both on every record a queue distributed."""
    connection = transaction.get_connection()
    plan = _advance_sql.get(connection.vendor)
    if plan is None:
        q = connection.ops.quote_name
        plan = _advance_sql[connection.vendor] = (
            f"UPDATE {q(QueueMember._meta.db_table)} SET {q('assigned_count')} = %s, {q('last_assigned_at')} = %s "
            f"WHERE {q('id')} = %s",
            f"UPDATE {q(Queue._meta.db_table)} SET {q('last_member_id')} = %s, {q('assigned_total')} = %s "
            f"WHERE {q('id')} = %s")
    member_sql, queue_sql = plan
    with connection.cursor() as cursor:
        cursor.execute(member_sql, [chosen.assigned_count, connection.ops.adapt_datetimefield_value(
            chosen.last_assigned_at), chosen.pk])
        cursor.execute(queue_sql, [queue.last_member_id, queue.assigned_total, queue.pk])


def reserve(queue_id) -> int | None:
    """Lock the queue and choose the responsible for a record about to be created in the same transaction.

    Returns a user id, or None when nobody present is under the cap (the record is then left free).
    """
    member = reserve_member(queue_id)[1]
    return member.user_id if member else None


def reserve_member(queue_id) -> tuple[Queue, QueueMember | None]:
    """``reserve`` that also returns the locked queue and the chosen member (with its user loaded), for
    ``record_outcome`` to use without reading them again."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("reserve() must run inside the transaction that writes the record")
    queue = _lock_queue(queue_id)
    return queue, _pick(queue)


def record_outcome(actor: Actor, queue_id: int, entity_type_id: int, entity_id: int, user_id: int | None, *,
                   queue: Queue | None = None, user=None, events: list | None = None) -> None:
    """After a record was created with the reserved responsible: the timeline says so, or the record waits free.
    ``queue`` and ``user``: the objects ``reserve_member`` returned (else they are read). ``events``: a list the
    outbox event is added to (as a row, ``outbox.row``) for the caller to write with its own; else it is written."""
    queue = queue if queue is not None and queue.pk == queue_id else Queue.objects.get(pk=queue_id)
    if user_id is not None:
        user = user if user is not None and user.pk == user_id else get_user_model().objects.get(pk=user_id)
        history.entry(actor, entity_type_id, entity_id, "responsible",
                      text=_("Assigned to %(user)s by queue «%(queue)s» (%(mode)s).") % {
                          "user": user, "queue": queue.name, "mode": queue.get_mode_display()},
                      data={"queue": queue.pk, "mode": queue.mode, "user": user_id, "event": "assigned"})
        name, payload = "distribution.assigned", {"queue": queue.pk, "user": user_id}
    else:
        FreeItem.objects.get_or_create(entity_type_id=entity_type_id, entity_id=entity_id, defaults={"queue": queue})
        history.entry(actor, entity_type_id, entity_id, "responsible",
                      text=_("Nobody of queue «%(queue)s» can take it now: it waits as a free item.") % {
                          "queue": queue.name}, data={"queue": queue.pk, "event": "free"})
        name, payload = "distribution.free", {"queue": queue.pk}
    if events is None:
        outbox.emit(actor, name, entity_type_id, entity_id, payload)
    else:
        events.append(outbox.row(actor, name, entity_type_id, entity_id, payload))


def distribute(actor: Actor, queue_id: int, entity_type_id: int, entity_id: int) -> int | None:
    """Give an existing record without a responsible to the queue's next member (or leave it free)."""
    spec = spec_for(entity_type_id)
    with transaction.atomic():
        queue = _lock_queue(queue_id)
        obj = lock(spec, entity_id)
        policies.require(actor, policies.UPDATE, entity_type_id, obj)
        if obj.responsible_id is not None:
            raise Conflict(_("The record already has a responsible."))
        member = _pick(queue)
        if member is not None:
            update_one(_system(actor, queue), spec, entity_id, {"responsible": member.user_id})
            FreeItem.objects.filter(entity_type_id=entity_type_id, entity_id=entity_id).delete()
        record_outcome(_system(actor, queue), queue.pk, entity_type_id, entity_id, member.user_id if member else None)
        return member.user_id if member else None


def _system(actor: Actor, queue: Queue) -> Actor:
    return Actor.system(cause=f"queue:{queue.pk}", entry_point=actor.entry_point, depth=actor.depth,
                        on_behalf_of=None)


def drain(actor: Actor, queue_id: int, *, limit: int = 200) -> int:
    """Give waiting free items of a queue to present members, oldest first; returns how many were given."""
    given = 0
    with transaction.atomic():
        queue = _lock_queue(queue_id)
        spec = spec_for(queue.entity_type_id)
        for item in list(FreeItem.objects.filter(queue=queue).order_by("id")[:limit]):
            obj = spec.model.objects.filter(pk=item.entity_id, deleted_at__isnull=True).first()
            if obj is None or obj.responsible_id is not None:
                item.delete()  # taken by hand or deleted meanwhile
                continue
            member = _pick(queue)
            if member is None:
                break
            system = _system(actor, queue)
            update_one(system, spec, item.entity_id, {"responsible": member.user_id})
            item.delete()
            history.entry(system, item.entity_type_id, item.entity_id, "responsible",
                          text=_("Free item given to %(user)s by queue «%(queue)s».") % {
                              "user": member.user, "queue": queue.name},
                          data={"queue": queue.pk, "user": member.user_id, "event": "assigned_free"})
            outbox.emit(system, "distribution.assigned", item.entity_type_id, item.entity_id,
                        {"queue": queue.pk, "user": member.user_id})
            given += 1
    return given


def set_presence(actor: Actor, present: bool, *, user_id: int | None = None) -> bool:
    """At work / away. A user sets their own status; a head or a user administrator sets anyone's.
    Coming to work picks up the free items waiting in the user's queues."""
    if not isinstance(present, bool):
        raise ValidationFailed(_("Presence must be true or false."), fields={"present": [_("true or false")]})
    target_id = user_id or actor.user_id
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=target_id, is_active=True).first()
        if user is None:
            raise NotFound(_("User #%(id)s does not exist.") % {"id": target_id})
        if target_id != actor.user_id and not actor.is_system and not policies.can(actor, SETTINGS, 0):
            head = user.head()
            if head is None or head.pk != actor.user_id:
                raise PermissionDenied(_("Only the user, their head or a user administrator may change this."))
        if user.is_present == present:
            return present
        User.objects.filter(pk=user.pk).update(is_present=present)
        outbox.emit(actor, "user.presence_changed", None, user.pk, {"present": present})
    if present:
        for queue_id in QueueMember.objects.filter(user_id=target_id, queue__is_active=True).values_list("queue_id", flat=True):
            drain(actor, queue_id)
    return present


def take(actor: Actor, entity_type_id: int, entity_id: int):
    """Take a free item (no responsible) for oneself: members of its queue may, and anyone who may change it."""
    spec = spec_for(entity_type_id)
    if actor.user_id is None:
        raise ValidationFailed(_("Only a person can take an item."))
    with transaction.atomic():
        obj = lock(spec, entity_id)
        free = FreeItem.objects.filter(entity_type_id=entity_type_id, entity_id=entity_id).first()
        member = free is not None and QueueMember.objects.filter(queue_id=free.queue_id, user_id=actor.user_id).exists()
        if not member and not policies.can(actor, policies.UPDATE, entity_type_id, obj):
            raise NotFound(_("%(what)s #%(id)s does not exist.") % {
                "what": str(spec.model._meta.verbose_name).capitalize(), "id": entity_id})
        if obj.responsible_id is not None:
            raise Conflict(_("Someone has already taken it."))
        writer = actor if not member else Actor.system(cause=f"take:{actor.user_id}", entry_point=actor.entry_point,
                                                        on_behalf_of=actor.user)
        obj = update_one(writer, spec, entity_id, {"responsible": actor.user_id})
        if free is not None:
            free.delete()
        history.entry(actor, entity_type_id, entity_id, "responsible", text=_("Taken by %(user)s.") % {"user": actor.user},
                      data={"user": actor.user_id, "event": "taken"})
        outbox.emit(actor, "distribution.taken", entity_type_id, entity_id, {"user": actor.user_id})
        return obj


def hand_off(actor: Actor, entity_type_id: int, entity_id: int, to_user_id: int, *, note: str = ""):
    """Pass a record to another user (a head's assignment, or an operator handing a live client to a free
    expert, F17). The transfer and its note are written to the timeline."""
    spec = spec_for(entity_type_id)
    if not isinstance(note, str) or len(note) > 5000:
        raise ValidationFailed(_("The note is too long."), fields={"note": [_("too long")]})
    with transaction.atomic():
        before = lock(spec, entity_id)
        previous = before.responsible_id
        obj = update_one(actor, spec, entity_id, {"responsible": to_user_id})
        FreeItem.objects.filter(entity_type_id=entity_type_id, entity_id=entity_id).delete()
        user = get_user_model().objects.get(pk=to_user_id)
        history.entry(actor, entity_type_id, entity_id, "responsible",
                      text=(_("Handed off to %(user)s.") % {"user": user}) + (f"\n{note.strip()}" if note.strip() else ""),
                      data={"from": previous, "user": to_user_id, "event": "hand_off"})
        outbox.emit(actor, "distribution.handed_off", entity_type_id, entity_id, {"from": previous, "user": to_user_id})
        return obj


QUEUE_FIELDS = ("code", "name", "mode", "entity_type_id", "cap", "is_active", "working_hours")


def create_queue(actor: Actor, *, members: list[dict] | None = None, **data) -> Queue:
    """A queue with members ``[{"user": id, "weight": 1, "cap": None}, …]`` (settings: users)."""
    from django.core.exceptions import ValidationError

    from voronka.core.errors import from_django_validation

    policies.require(actor, SETTINGS, 0)
    unknown = set(data) - set(QUEUE_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        queue = Queue(**data)
        try:
            queue.full_clean()
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        spec_for(queue.entity_type_id)
        queue.save()
        set_members(actor, queue.pk, members or [])
        return queue


def update_queue(actor: Actor, queue_id: int, **data) -> Queue:
    """Change a queue's name, mode, cap or activity (the code and the kind of record stay)."""
    from django.core.exceptions import ValidationError

    from voronka.core.errors import from_django_validation

    policies.require(actor, SETTINGS, 0)
    unknown = set(data) - {"name", "mode", "cap", "is_active", "working_hours"}
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        queue = _lock_queue(queue_id)
        for key, value in data.items():
            setattr(queue, key, value)
        try:
            queue.full_clean()
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        queue.save()
        return queue


def set_members(actor: Actor, queue_id: int, members: list[dict]) -> list[QueueMember]:
    policies.require(actor, SETTINGS, 0)
    if not isinstance(members, list) or not all(isinstance(m, dict) and isinstance(m.get("user"), int) for m in members):
        raise ValidationFailed(_("Members must be a list of {user, weight, cap}."), fields={"members": [_("not valid")]})
    with transaction.atomic():
        queue = _lock_queue(queue_id)
        ids = [m["user"] for m in members]
        known = set(get_user_model().objects.filter(pk__in=ids, is_active=True).values_list("id", flat=True))
        if known != set(ids):
            raise ValidationFailed(_("Some members are not active users."), fields={"members": [_("unknown user")]})
        queue.members.exclude(user_id__in=ids).delete()
        result = []
        for index, m in enumerate(members):
            member, _created = QueueMember.objects.update_or_create(
                queue=queue, user_id=m["user"],
                defaults={"weight": int(m.get("weight") or 1), "cap": m.get("cap"), "sort": (index + 1) * 10})
            result.append(member)
        return result
