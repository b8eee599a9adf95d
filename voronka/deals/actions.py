"""Every write to deals, including the repeat sale shortcut (F12)."""

from __future__ import annotations

from django.utils.translation import gettext as _

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import ValidationFailed
from voronka.core.recordkit import RecordSpec, create_many, create_one, delete_one, restore_one, update_one
from voronka.pipelines.stages import StageHook

from .leadstatus import LeadStatusHook
from .models import Deal

DEAL = RecordSpec(
    model=Deal, entity_type_id=entity_types.DEAL, code="deal",
    writable=("title", "opportunity", "currency", "source", "comment", "responsible", "contact", "company", "lead",
              "is_repeat", "probability", "begin_date", "close_date",
              "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"),
    hooks=(StageHook(), LeadStatusHook()),
)


def create_deal(actor: Actor, **data) -> Deal:
    return create_one(actor, DEAL, data)


def create_deals(actor: Actor, items: list[dict]):
    return create_many(actor, DEAL, items)


def update_deal(actor: Actor, deal_id: int, **data) -> Deal:
    return update_one(actor, DEAL, deal_id, data)


def move_deal(actor: Actor, deal_id: int, *, stage, pipeline=None, fields: dict | None = None) -> Deal:
    from voronka.pipelines.actions import move_to_stage

    return move_to_stage(actor, DEAL, deal_id, stage=stage, pipeline=pipeline, fields=fields)


def delete_deal(actor: Actor, deal_id: int) -> Deal:
    return delete_one(actor, DEAL, deal_id)


def restore_deal(actor: Actor, deal_id: int) -> Deal:
    return restore_one(actor, DEAL, deal_id)


def create_repeat_deal(actor: Actor, *, contact: int | None = None, company: int | None = None, pipeline=None,
                       **data) -> Deal:
    """A known client gets a deal directly, without a lead (F12), by default in the «repeat» pipeline."""
    from voronka.parties.models import Company, Contact
    from voronka.pipelines.models import Pipeline

    if not contact and not company:
        raise ValidationFailed(_("A repeat sale needs an existing contact or company."),
                               fields={"contact": [_("give a contact or a company")]})
    from voronka.core.selectors import records_visible_to

    # the client must exist and be visible to the actor: nobody links a deal to a client they cannot see
    if contact and not records_visible_to(actor, entity_types.CONTACT).filter(pk=contact).exists():
        raise ValidationFailed(_("No such contact."), fields={"contact": [_("not found")]})
    if company and not records_visible_to(actor, entity_types.COMPANY).filter(pk=company).exists():
        raise ValidationFailed(_("No such company."), fields={"company": [_("not found")]})
    if pipeline is None:
        repeat = Pipeline.objects.filter(entity_type_id=entity_types.DEAL, code="repeat", is_active=True).first()
        pipeline = repeat.pk if repeat else None
    if not data.get("title"):
        who = Contact.objects.filter(pk=contact).first() if contact else Company.objects.filter(pk=company).first()
        data["title"] = _("Repeat sale: %(who)s") % {"who": who}
    payload = {**data, "contact": contact, "company": company, "is_repeat": True}
    if pipeline is not None:
        payload["pipeline"] = pipeline
    return create_one(actor, DEAL, payload)
