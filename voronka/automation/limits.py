"""Stage time limits (F20): the escalation a fired timer runs, and its default messages."""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from voronka.core import entity_types
from voronka.core.actor import Actor

from . import fields, rules

DEFAULT_MESSAGES = {
    entity_types.LEAD: gettext_noop(
        "Lead «{title}» has been in stage «{stage}» for more than {limit}, responsible {responsible}"),
    entity_types.DEAL: gettext_noop(
        "Deal «{title}» has been in stage «{stage}» for more than {limit}, responsible {responsible}"),
}
GENERIC_MESSAGE = gettext_noop("«{title}» has been in stage «{stage}» for more than {limit}, responsible {responsible}")


def message_for(limit, step: dict, obj, language: str) -> str:
    """The step's text in ``language``: its own template, or the default one, with the record's values."""
    with translation.override(language):
        template = step.get("message") or gettext(DEFAULT_MESSAGES.get(obj.ENTITY_TYPE_ID, GENERIC_MESSAGE))
        responsible = obj.responsible
        extra = {
            "title": str(obj),
            "stage": obj.stage.name,
            "limit": rules.human_duration(limit.amount, limit.unit, after_more_than=True),
            "responsible": (responsible.get_full_name() or responsible.username) if responsible else "—",
        }
        return fields.render(template, obj, extra)


def escalate(actor: Actor, obj, run) -> dict:
    """Notify the step's people (each in their language) and, if the step says so, hand the record over."""
    from voronka.activities.actions import notify
    from voronka.core.errors import ValidationFailed
    from voronka.core.recordkit import update_one

    limit = run.limit
    steps = limit.steps or []
    if run.step is None or run.step >= len(steps):
        raise ValidationFailed(gettext("The escalation step no longer exists."))
    step = steps[run.step]
    recipients = rules.people(step.get("notify") or ["responsible"], obj)
    by_language: dict[str, list] = {}
    for user in recipients:
        by_language.setdefault(user.language or settings.LANGUAGE_CODE, []).append(user)
    outputs: dict = {"notified": [], "texts": {}}
    for language, users in sorted(by_language.items()):
        text = message_for(limit, step, obj, language)
        rows = notify(actor, users=users, text=text, entity_type_id=obj.ENTITY_TYPE_ID, entity_id=obj.pk,
                      email=bool(step.get("email")))
        outputs["notified"] += [n.user_id for n in rows]
        outputs["texts"][language] = text
    if not outputs["notified"]:
        outputs["warning"] = gettext("Nobody could be notified: no such people, or none of them may read the record.")
    if step.get("reassign"):
        found = rules.people([step["reassign"]], obj)
        if found and found[0].pk != obj.responsible_id:
            update_one(actor, rules.spec_for(obj.ENTITY_TYPE_ID), obj.pk, {"responsible": found[0].pk})
            outputs["reassigned_to"] = found[0].pk
    return outputs


def check_steps(steps) -> None:
    """ValueError with a clear message for a malformed escalation chain."""
    from django.utils.translation import gettext as _

    if not isinstance(steps, list) or not steps:
        raise ValueError(_("An escalation chain is a non-empty list of steps."))
    for i, step in enumerate(steps):
        where = _("step %(n)s") % {"n": i + 1}
        if not isinstance(step, dict):
            raise ValueError(_("%(w)s must be an object.") % {"w": where})
        unknown = set(step) - {"after", "notify", "reassign", "message", "email"}
        if unknown:
            raise ValueError(_("%(w)s: unknown keys %(k)s.") % {"w": where, "k": ", ".join(sorted(unknown))})
        if "after" in step:
            rules.check_duration(step["after"], f"{where}: after")
        notify_refs = step.get("notify", ["responsible"])
        if not isinstance(notify_refs, list) or not notify_refs:
            raise ValueError(_("%(w)s: «notify» is a list of people.") % {"w": where})
        for ref in notify_refs:
            rules.check_person(ref, f"{where}: notify")
        if step.get("reassign"):
            if step["reassign"] != "head" and not str(step["reassign"]).startswith("user:"):
                raise ValueError(_("%(w)s: «reassign» is head or user:ID.") % {"w": where})
            rules.check_person(step["reassign"], f"{where}: reassign", allow_role=False)
        if not isinstance(step.get("message", ""), str):
            raise ValueError(_("%(w)s: «message» is text.") % {"w": where})
        if not isinstance(step.get("email", False), bool):
            raise ValueError(_("%(w)s: «email» is true or false.") % {"w": where})
