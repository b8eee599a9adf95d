"""Every write to leads, including conversion into contact + company + deal (F11)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from voronka.core import entity_types, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, ValidationFailed
from voronka.core.recordkit import (
    RecordSpec,
    create_many,
    create_one,
    delete_one,
    lock,
    restore_one,
    update_one,
)
from voronka.parties.communications import CommunicationsHook
from voronka.parties.models import Communication
from voronka.pipelines.stages import StageHook

from .models import Lead

LEAD = RecordSpec(
    model=Lead, entity_type_id=entity_types.LEAD, code="lead",
    writable=("title", "first_name", "last_name", "middle_name", "company_name", "position", "inquiry", "address",
              "comment", "source", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term",
              "opportunity", "currency", "responsible", "contact", "company"),
    hooks=(CommunicationsHook(), StageHook()),
)


def _default_title(actor: Actor, data: dict) -> dict:
    """A lead is never called «Client123» (F1): without a title it gets the person's or company's name."""
    if data.get("title"):
        return {}
    parts = [data.get(k) for k in ("last_name", "first_name") if isinstance(data.get(k), str) and data.get(k)]
    name = " ".join(parts) or (data.get("company_name") if isinstance(data.get("company_name"), str) else "")
    if not name:
        phones = data.get("phones")
        first = phones[0] if isinstance(phones, list) and phones else phones
        if isinstance(first, dict):
            first = first.get("value")
        name = first if isinstance(first, str) else ""
    return {"title": (name or _("New lead"))[:255]}


LEAD.defaults = _default_title


def create_lead(actor: Actor, **data) -> Lead:
    return create_one(actor, LEAD, data)


def create_leads(actor: Actor, items: list[dict]):
    return create_many(actor, LEAD, items)


def update_lead(actor: Actor, lead_id: int, **data) -> Lead:
    return update_one(actor, LEAD, lead_id, data)


def move_lead(actor: Actor, lead_id: int, *, stage, pipeline=None, fields: dict | None = None) -> Lead:
    from voronka.pipelines.actions import move_to_stage

    return move_to_stage(actor, LEAD, lead_id, stage=stage, pipeline=pipeline, fields=fields)


def delete_lead(actor: Actor, lead_id: int) -> Lead:
    return delete_one(actor, LEAD, lead_id)


def restore_lead(actor: Actor, lead_id: int) -> Lead:
    return restore_one(actor, LEAD, lead_id)


def convert_lead(actor: Actor, lead_id: int, *, create_contact: bool = True, create_company: bool | None = None,
                 create_deal: bool = True, contact_id: int | None = None, company_id: int | None = None,
                 deal_pipeline=None, deal_stage=None, deal_fields: dict | None = None) -> dict:
    """Turn a lead into a contact, a company and a deal, in one transaction.

    Existing contact/company can be given instead of creating new ones. The lead's timeline is shown on
    every created record, the records are linked both ways, and the lead moves to its success stage.
    """
    from voronka.core.selectors import records_visible_to
    from voronka.deals.actions import DEAL
    from voronka.parties.actions import COMPANY, CONTACT
    from voronka.pipelines.models import Stage

    with transaction.atomic():
        lead = lock(LEAD, lead_id)
        policies.require(actor, policies.READ, entity_types.LEAD, lead)
        policies.require(actor, policies.UPDATE, entity_types.LEAD, lead)
        if lead.converted_at:
            raise Conflict(_("Lead #%(id)s has already been converted.") % {"id": lead.pk})
        comms = list(Communication.objects.filter(entity_type_id=entity_types.LEAD, entity_id=lead.pk))
        phones = [{"value": c.value, "type": c.value_type} for c in comms if c.kind == "phone"]
        emails = [{"value": c.value, "type": c.value_type} for c in comms if c.kind == "email"]
        messengers = [{"value": c.value, "type": c.value_type} for c in comms if c.kind == "im"]
        websites = [{"value": c.value, "type": c.value_type} for c in comms if c.kind == "web"]
        responsible = lead.responsible_id or actor.user_id
        result: dict = {"lead": lead, "contact": None, "company": None, "deal": None}
        if company_id:
            result["company"] = records_visible_to(actor, entity_types.COMPANY).filter(pk=company_id).first()
            if result["company"] is None:
                raise ValidationFailed(_("No such company."), fields={"company_id": [_("not found")]})
        elif (create_company is None and lead.company_name) or create_company:
            if not lead.company_name and not lead.company_id:
                raise ValidationFailed(_("The lead has no company name."), fields={"company_name": [_("empty")]})
            if lead.company_id:
                result["company"] = lead.company
            else:
                result["company"] = create_one(actor, COMPANY, {"name": lead.company_name, "responsible": responsible,
                                                                "source": lead.source})
        if contact_id:
            result["contact"] = records_visible_to(actor, entity_types.CONTACT).filter(pk=contact_id).first()
            if result["contact"] is None:
                raise ValidationFailed(_("No such contact."), fields={"contact_id": [_("not found")]})
        elif lead.contact_id:
            result["contact"] = lead.contact
        elif create_contact:
            result["contact"] = create_one(actor, CONTACT, {
                "first_name": lead.first_name, "last_name": lead.last_name, "middle_name": lead.middle_name,
                "position": lead.position, "address": lead.address, "source": lead.source, "responsible": responsible,
                "company": result["company"].pk if result["company"] else None, "phones": phones, "emails": emails,
                "messengers": messengers, "websites": websites})
        if create_deal:
            data = {"title": lead.title, "opportunity": lead.opportunity, "currency": lead.currency,
                    "source": lead.source, "responsible": responsible, "comment": lead.comment or lead.inquiry,
                    "contact": result["contact"].pk if result["contact"] else None,
                    "company": result["company"].pk if result["company"] else None, "lead": lead.pk,
                    **{k: getattr(lead, k) for k in ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")}}
            if deal_pipeline is not None:
                data["pipeline"] = deal_pipeline
            if deal_stage is not None:
                data["stage"] = deal_stage
            data.update(deal_fields or {})
            result["deal"] = create_one(actor, DEAL, data)
        targets = [(t, o.pk) for t, o in ((entity_types.CONTACT, result["contact"]), (entity_types.COMPANY, result["company"]),
                                           (entity_types.DEAL, result["deal"])) if o is not None]
        if not targets:
            raise ValidationFailed(_("Conversion must create or link at least one record."))
        history.bind_history((entity_types.LEAD, lead.pk), targets)
        lead.converted_at = timezone.now()
        lead.contact = result["contact"] or lead.contact
        lead.company = result["company"] or lead.company
        lead.save(update_fields=["converted_at", "contact", "company"])
        entry = history.entry(actor, entity_types.LEAD, lead.pk, "converted",
                              data={"contact": getattr(result["contact"], "pk", None),
                                    "company": getattr(result["company"], "pk", None),
                                    "deal": getattr(result["deal"], "pk", None)}, also=targets)
        success = Stage.objects.filter(pipeline_id=lead.pipeline_id, semantics="success").order_by("sort", "id").first()
        if success and lead.stage_id != success.pk:
            lead = update_one(actor, LEAD, lead.pk, {"stage": success.pk})
            result["lead"] = lead
        outbox.emit(actor, "lead.converted", entity_types.LEAD, lead.pk, entry.data)
        return result
