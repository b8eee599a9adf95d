"""Tasks and comments. Both appear on the timeline of the record they belong to."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from voronka.core import clock, entity_types, fastinsert, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed, from_django_validation

from . import recurrence as recurrence_rules
from .models import Notification, Task

TASK_FIELDS = ("title", "description", "deadline", "responsible", "observers", "entity_type_id", "entity_id", "approval",
               "recurrence")
MAX_COMMENT = 20000


def _record(actor: Actor, entity_type_id, entity_id, perm: str = policies.READ, record=None):
    """The record a task or comment is attached to, checked for the actor's right to see it.

    ``record``: the caller already read this record in the current transaction (the automation worker loads
    a batch's records in one query); it is used instead of reading it again when it is that record, and the
    rights are checked on it all the same."""
    try:
        info = entity_types.get(int(entity_type_id))
    except (LookupError, TypeError, ValueError):
        raise ValidationFailed(_("Unknown kind of record."), fields={"entity_type_id": [_("unknown")]}) from None
    if record is not None and isinstance(record, info.model) and str(record.pk) == str(entity_id):
        obj = record if record.deleted_at is None else None
    else:
        obj = info.objects.filter(pk=entity_id, deleted_at__isnull=True).first() if str(entity_id).isdigit() else None
    if obj is None:
        raise ValidationFailed(_("The record does not exist."), fields={"entity_id": [_("not found")]})
    policies.require(actor, perm, info.id, obj)
    return info, obj


def _users(ids) -> list:
    if ids == []:
        return []
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValidationFailed(_("Observers must be a list of user ids."), fields={"observers": [_("list of ids")]})
    users = list(get_user_model().objects.filter(pk__in=ids, is_active=True))
    if len(users) != len(set(ids)):
        raise ValidationFailed(_("Some observers are not active users."), fields={"observers": [_("unknown user")]})
    return users


def _deadline(value):
    if value in (None, ""):
        return None
    parsed = value if hasattr(value, "tzinfo") else (parse_datetime(value) if isinstance(value, str) else None)
    if parsed is None:
        raise ValidationFailed(_("The deadline must be a date and time."), fields={"deadline": [_("not a date and time")]})
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed)
    return parsed


def _recurrence(value) -> str:
    try:
        return recurrence_rules.check(value)
    except recurrence_rules.RecurrenceError as exc:
        raise ValidationFailed(str(exc), fields={"recurrence": [str(exc)]}) from None


def create_task(actor: Actor, *, record=None, **data) -> Task:
    """``record``: the linked record when the caller has just read it (see ``_record``)."""
    unknown = set(data) - set(TASK_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        info = obj = None
        if data.get("entity_type_id") is not None or data.get("entity_id") is not None:
            info, obj = _record(actor, data.get("entity_type_id"), data.get("entity_id"), record=record)
        responsible = data.get("responsible") or actor.user_id
        # A user instance (the automation worker resolved and checked it in this transaction) is taken as it
        # is: validating it would read it again. An id is checked by ``full_clean`` as before.
        given = isinstance(responsible, get_user_model())
        approval = _approval(data.get("approval"), info, obj)
        task = Task(approval=approval, title=(data.get("title") or "").strip() if isinstance(data.get("title"), str) else data.get("title"),
                    description=data.get("description") or "", deadline=_deadline(data.get("deadline")),
                    responsible_id=responsible.pk if given else responsible, created_by_id=actor.user_id,
                    cause=actor.cause[:100], entity_type_id=info.id if info else None,
                    entity_id=obj.pk if obj else None, recurrence=_recurrence(data.get("recurrence")))
        if given:
            task.responsible = responsible
        try:
            task.full_clean(exclude=["observers", "responsible"] if given else ["observers"])
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        observers = _users(data.get("observers") or [])
        fastinsert.insert([task], returning=True)  # validated above; no signals in the project
        if observers:
            task.observers.set(observers)
        if obj is not None:
            history.entry(actor, info.id, obj.pk, "task", text=task.title,
                          data={"task": task.pk, "event": "created", "deadline": task.deadline})
        outbox.emit(actor, "task.created", info.id if info else None, obj.pk if obj else None, {"task": task.pk})
        return task


OUTCOMES = ("approved", "rejected")


def _approval(value, info, obj) -> dict:
    """An approval task names, per outcome, the stage its record moves to (a stage id or code of the record's
    pipeline, or empty to stay)."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict) or not value or set(value) - set(OUTCOMES):
        raise ValidationFailed(_("An approval maps «approved» and «rejected» to stages."),
                               fields={"approval": [_("keys: approved, rejected")]})
    if obj is None or not info.staged:
        raise ValidationFailed(_("An approval needs a record with stages."), fields={"approval": [_("no record")]})
    from voronka.pipelines.models import Stage

    stages = Stage.objects.filter(pipeline_id=obj.pipeline_id)
    clean = {}
    for outcome, ref in value.items():
        if ref in (None, ""):
            continue
        found = stages.filter(pk=ref).first() if isinstance(ref, int) or str(ref).isdigit() else \
            stages.filter(code=str(ref)).first()
        if found is None:
            raise ValidationFailed(_("No stage «%(s)s» in the record's pipeline.") % {"s": ref},
                                   fields={"approval": [str(ref)]})
        clean[outcome] = found.pk
    return clean or {"approved": None}


def decide_task(actor: Actor, task_id: int, *, outcome: str, comment: str = "") -> Task:
    """Approve or reject an approval task: it is completed with the outcome, and its record moves to the stage the
    approval names for it (by the system, on behalf of the approval: the approver needs no right on the record)."""
    if outcome not in OUTCOMES:
        raise ValidationFailed(_("The outcome is «approved» or «rejected»."), fields={"outcome": [_("unknown")]})
    with transaction.atomic():
        task = Task.objects.filter(pk=task_id).only("approval").first()
        if task is not None and not task.approval:
            raise Conflict(_("Task #%(id)s is not an approval.") % {"id": task_id})
        task = _finish(actor, task_id, Task.Status.DONE, comment, field="comment",
                       refused=_("Only the approver can decide."), too_long=_("The comment is too long."))
        task.outcome = outcome
        task.save(update_fields=["outcome"])
        target = task.approval.get(outcome)
        if task.entity_type_id:
            history.entry(actor, task.entity_type_id, task.entity_id, "task", text=task.title,
                          data={"task": task.pk, "event": "decided", "outcome": outcome, "result": comment})
        if target and task.entity_type_id:
            from voronka.pipelines.actions import move_to_stage

            system = Actor.system(cause=f"approval:{task.pk}", on_behalf_of=actor.user, depth=actor.depth + 1)
            obj = entity_types.get(task.entity_type_id).objects.filter(pk=task.entity_id, deleted_at__isnull=True).first()
            if obj is not None and obj.stage_id != target:
                move_to_stage(system, entity_types.spec_for(task.entity_type_id), obj.pk, stage=target)
        outbox.emit(actor, "task.completed", task.entity_type_id, task.entity_id,
                    {"task": task.pk, "result": comment, "outcome": outcome, "next": None})
        return task


def _lock_task(actor: Actor, task_id: int) -> Task:
    task = Task.objects.select_for_update().filter(pk=task_id).first()
    if task is None or not can_see_task(actor, task):
        raise NotFound(_("Task #%(id)s does not exist.") % {"id": task_id})
    return task


def can_see_task(actor: Actor, task: Task) -> bool:
    if actor.is_system or (actor.user and actor.user.is_superuser):
        return True
    uid = actor.user_id
    if uid in (task.responsible_id, task.created_by_id) or task.observers.filter(pk=uid).exists():
        return True
    if task.entity_type_id:
        info = entity_types.get(task.entity_type_id)
        obj = info.model.objects.filter(pk=task.entity_id).first()
        return obj is not None and policies.can(actor, policies.READ, info.id, obj)
    return False


def update_task(actor: Actor, task_id: int, **data) -> Task:
    allowed = {"title", "description", "deadline", "responsible", "observers", "recurrence"}
    unknown = set(data) - allowed
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        task = _lock_task(actor, task_id)
        if task.status != Task.Status.OPEN:
            raise Conflict(_("A finished task cannot be changed."))
        before = {"title": task.title, "description": task.description, "deadline": task.deadline,
                  "responsible": task.responsible_id, "recurrence": task.recurrence}
        if "deadline" in data:
            task.deadline = _deadline(data["deadline"])
        for key in ("title", "description"):
            if key in data:
                setattr(task, key, data[key] or "")
        if "responsible" in data:
            task.responsible_id = data["responsible"]
        if "recurrence" in data:
            task.recurrence = _recurrence(data["recurrence"])
        try:
            task.full_clean(exclude=["observers"])
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        if "observers" in data:
            task.observers.set(_users(data["observers"]))
        task.updated_at = timezone.now()
        task.save()
        changes = history.diff(before, {"title": task.title, "description": task.description, "deadline": task.deadline,
                                        "responsible": task.responsible_id, "recurrence": task.recurrence})
        if changes and task.entity_type_id:
            history.entry(actor, task.entity_type_id, task.entity_id, "task", text=task.title,
                          changes=changes, data={"task": task.pk, "event": "updated"})
        outbox.emit(actor, "task.updated", task.entity_type_id, task.entity_id, {"task": task.pk, "changed": sorted(changes)})
        return task


def _finish(actor: Actor, task_id: int, status: str, text: str, *, refused: str, too_long: str, field: str) -> Task:
    """Lock an open task, check who may finish it and the text, and set its final status (in the caller's
    transaction). Completing and cancelling differ only in the status, the messages and what follows."""
    task = _lock_task(actor, task_id)
    if task.status != Task.Status.OPEN:
        raise Conflict(_("Task #%(id)s is already finished.") % {"id": task.pk})
    if not actor.is_system and actor.user_id not in (task.responsible_id, task.created_by_id) \
            and not actor.user.is_superuser:
        raise PermissionDenied(refused)
    if not isinstance(text, str) or len(text) > MAX_COMMENT:
        raise ValidationFailed(too_long, fields={field: [_("too long")]})
    task.status, task.result, task.updated_at = status, text, timezone.now()
    fields = ["status", "result", "updated_at"]
    if status == Task.Status.DONE:
        task.completed_at = task.updated_at
        fields.append("completed_at")
    task.save(update_fields=fields)
    if task.entity_type_id:
        history.entry(actor, task.entity_type_id, task.entity_id, "task", text=task.title,
                      data={"task": task.pk, "event": "completed" if status == Task.Status.DONE else "cancelled",
                            "result": text})
    return task


def complete_task(actor: Actor, task_id: int, *, result: str = "") -> Task:
    with transaction.atomic():
        if Task.objects.filter(pk=task_id).exclude(approval={}).exists():
            raise Conflict(_("This is an approval: approve or reject it."))
        task = _finish(actor, task_id, Task.Status.DONE, result, field="result",
                       refused=_("Only the responsible or the author can complete a task."),
                       too_long=_("The result is too long."))
        nxt = _next_occurrence(actor, task) if task.recurrence else None
        outbox.emit(actor, "task.completed", task.entity_type_id, task.entity_id,
                    {"task": task.pk, "result": result, "next": nxt.pk if nxt else None})
        return task


def _next_occurrence(actor: Actor, task: Task) -> Task | None:
    """The recurring task's next occurrence (F22), in the transaction that finishes ``task``.

    Its deadline is the rule's first time after the old deadline or now, whichever is later (a task completed
    late does not produce occurrences already in the past). It keeps the title, description, responsible,
    observers, linked record, rule and author. ``recurrence_of`` is unique: never two successors.
    """
    if Task.objects.filter(recurrence_of=task).exists():
        return None
    now = clock.now()
    base = max(task.deadline, now) if task.deadline else now
    try:
        deadline = recurrence_rules.next_after(task.recurrence, base)
    except ValueError:
        return None  # a rule that no longer comes true ends the series
    nxt = Task.objects.create(title=task.title, description=task.description, deadline=deadline,
                              responsible_id=task.responsible_id, created_by_id=task.created_by_id,
                              entity_type_id=task.entity_type_id, entity_id=task.entity_id,
                              recurrence=task.recurrence, recurrence_of=task, cause=f"recurrence:{task.pk}"[:100])
    observers = list(task.observers.all())
    if observers:
        nxt.observers.set(observers)
    if nxt.entity_type_id:
        history.entry(actor, nxt.entity_type_id, nxt.entity_id, "task", text=nxt.title,
                      data={"task": nxt.pk, "event": "created", "deadline": nxt.deadline, "recurrence_of": task.pk})
    outbox.emit(actor, "task.created", nxt.entity_type_id, nxt.entity_id, {"task": nxt.pk, "recurrence_of": task.pk})
    return nxt


def cancel_task(actor: Actor, task_id: int, *, reason: str = "") -> Task:
    """Cancel an open task (the responsible, the author or a superuser); a recurring series ends with it."""
    with transaction.atomic():
        task = _finish(actor, task_id, Task.Status.CANCELLED, reason, field="reason",
                       refused=_("Only the responsible or the author can cancel a task."),
                       too_long=_("The reason is too long."))
        outbox.emit(actor, "task.cancelled", task.entity_type_id, task.entity_id, {"task": task.pk})
        return task


def add_comment(actor: Actor, *, entity_type_id: int, entity_id: int, text: str, record=None):
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed(_("A comment cannot be empty."), fields={"text": [_("empty")]})
    if len(text) > MAX_COMMENT:
        raise ValidationFailed(_("A comment is at most %(n)s characters.") % {"n": MAX_COMMENT},
                               fields={"text": [_("too long")]})
    with transaction.atomic():
        info, obj = _record(actor, entity_type_id, entity_id, policies.UPDATE, record=record)
        entry = history.entry(actor, info.id, obj.pk, "comment", text=text.strip())
        outbox.emit(actor, f"{info.code}.commented", info.id, obj.pk, {"entry": entry.pk})
        return entry


MAX_NOTIFICATION = 5000


def record_link(entity_type_id: int | None, entity_id: int | None) -> str:
    """The web address of a record's card (the UI's URL scheme: /crm/<plural>/<id>/)."""
    if not entity_type_id or not entity_id:
        return ""
    try:
        code = entity_types.get(int(entity_type_id)).code
    except LookupError:
        return ""
    plural = "companies" if code == "company" else f"{code}s"
    return f"/crm/{plural}/{entity_id}/"


def notify(actor: Actor, *, users, text: str, entity_type_id: int | None = None, entity_id: int | None = None,
           email: bool = False, subject: str = "", record=None) -> list[Notification]:
    """Send an in-app notification to each of ``users`` (ids or users), optionally about a record.

    A notification about a record reaches only the users who may read it (``policies.readers``).
    With ``email`` each recipient with an address also gets an e-mail through Django's mail API after
    the transaction commits (a rolled-back notification sends nothing; a mail failure is logged and
    leaves ``emailed`` false). Returns the notifications created. ``record``: see ``_record``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationFailed(_("A notification cannot be empty."), fields={"text": [_("empty")]})
    if len(text) > MAX_NOTIFICATION:
        raise ValidationFailed(_("A notification is at most %(n)s characters.") % {"n": MAX_NOTIFICATION},
                               fields={"text": [_("too long")]})
    ids = sorted({getattr(u, "pk", u) for u in users or []})
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise ValidationFailed(_("Recipients must be users."), fields={"users": [_("list of ids")]})
    with transaction.atomic():
        given = {u.pk: u for u in users or [] if isinstance(u, get_user_model())}
        if ids and len(given) == len(ids):  # the caller read them in this transaction (the automation worker)
            recipients = [given[pk] for pk in ids if given[pk].is_active]
        else:
            recipients = list(get_user_model().objects.filter(pk__in=ids, is_active=True).order_by("id"))
        obj = None
        if entity_type_id is not None or entity_id is not None:
            info, obj = _record(actor, entity_type_id, entity_id, record=record)
            recipients = list(policies.readers(recipients, info.id, obj))
        link = record_link(entity_type_id, entity_id) if obj is not None else ""
        rows = [Notification(user=u, text=text.strip(), entity_type_id=entity_type_id if obj is not None else None,
                             entity_id=entity_id if obj is not None else None, link=link, cause=actor.cause[:100])
                for u in recipients]
        fastinsert.insert(rows, returning=True)
        if rows:
            outbox.emit(actor, "notification.created", entity_type_id if obj is not None else None,
                        entity_id if obj is not None else None,
                        {"notifications": [n.pk for n in rows], "users": [u.pk for u in recipients]})
        if email:
            mailable = [(n.pk, u.email) for n, u in zip(rows, recipients, strict=True) if u.email]
            if mailable:
                transaction.on_commit(lambda: _mail_notifications(mailable, subject or _("Voronka notification"),
                                                                  text.strip(), link))
        return rows


def _mail_notifications(targets: list[tuple[int, str]], subject: str, text: str, link: str) -> None:
    import logging

    from django.core.mail import send_mail

    body = f"{text}\n\n{link}" if link else text
    for pk, address in targets:
        try:
            send_mail(subject, body, None, [address])
        except Exception:
            logging.getLogger(__name__).exception("notification %s: the e-mail to %s failed", pk, address)
            continue
        Notification.objects.filter(pk=pk).update(emailed=True)


def mark_notifications_read(actor: Actor, ids: list[int] | None = None) -> int:
    """Mark the actor's own notifications (all of them, or ``ids``) as read; returns how many changed."""
    if actor.user_id is None:
        raise PermissionDenied(_("Only a user has notifications."))
    qs = Notification.objects.filter(user_id=actor.user_id, is_read=False)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(is_read=True)
