"""The four CRM record types of the API and their own operations: stage moves, lead conversion, repeat sales."""

from typing import Any

from django.utils.translation import gettext as _
from ninja import Router, Status
from pydantic import Field, create_model

from voronka.core.errors import ValidationFailed
from voronka.core.selectors import get_record_for
from voronka.deals import actions as deals
from voronka.leads import actions as leads
from voronka.parties import actions as parties

from . import serialize
from .errors import check_text
from .filters import ListConfig, both_ways
from .records import Actions, RecordId, RecordType, build_router, payload_data
from .schemas import MAX_ID, Strict, input_fields, responses


class MoveIn(Strict):
    stage: int | str = Field(description="Target stage id or code.")
    pipeline: int | str | None = Field(None, description="Target pipeline id or code, to move into another pipeline.")
    fields: dict[str, Any] | None = Field(None, description="Fields to set in the same step, e.g. those the stage requires.")


def _move(move_action):
    def register(router: Router, rt: RecordType) -> None:
        Out = rt.schemas["out"]

        @router.post("/{id}/move", response=responses({200: Out}), operation_id=f"move_{rt.singular}",
                     summary=f"Move a {rt.singular} to a stage",
                     description="Fields the stage requires must be filled, or given in `fields`; moving back is allowed.")
        def move(request, payload: MoveIn, id: int = RecordId):
            get_record_for(request.auth, rt.type_id, id)
            check_text(payload.fields or {})
            misplaced = sorted({"stage", "pipeline"} & set(payload.fields or {}))
            if misplaced:
                raise ValidationFailed(_("Give the stage and pipeline as the target, not among the fields."),
                                       fields={"fields": [_("must not contain %(names)s") % {"names": ", ".join(misplaced)}]})
            data = payload_data(payload)
            obj = move_action(request.auth, id, stage=payload.stage, pipeline=payload.pipeline,
                              fields=data.get("fields"))
            return serialize.record(rt.spec, obj)

    return register


class ConvertIn(Strict):
    create_contact: bool = True
    create_company: bool | None = Field(None, description="Default: when the lead has a company name.")
    create_deal: bool = True
    contact_id: int | None = Field(None, ge=1, le=MAX_ID, description="Link this existing contact instead.")
    company_id: int | None = Field(None, ge=1, le=MAX_ID, description="Link this existing company instead.")
    deal_pipeline: int | str | None = None
    deal_stage: int | str | None = None
    deal_fields: dict[str, Any] | None = Field(None, description="Extra fields of the new deal.")


def _convert(router: Router, rt: RecordType) -> None:
    response = {200: ConversionOut}

    @router.post("/{id}/convert", response=responses(response), operation_id="convert_lead",
                 summary="Convert a lead into a contact, a company and a deal")
    def convert(request, payload: ConvertIn, id: int = RecordId):
        get_record_for(request.auth, rt.type_id, id)
        check_text(payload.deal_fields or {})
        data = payload_data(payload)
        result = leads.convert_lead(request.auth, id, **data)
        return {"lead": serialize.record(leads.LEAD, result["lead"]),
                **{key: serialize.record(spec, result[key]) if result[key] is not None else None
                   for key, spec in (("contact", parties.CONTACT), ("company", parties.COMPANY), ("deal", deals.DEAL))}}


def _repeat(router: Router, rt: RecordType) -> None:
    Out = rt.schemas["out"]

    @router.post("/repeat", response=responses({201: Out}), operation_id="create_repeat_deal",
                 summary="Create a repeat sale for a known client",
                 description="A deal for an existing contact or company, by default in the «repeat» pipeline.")
    def repeat(request, payload: RepeatDealIn):
        data = payload_data(payload)
        if not data.get("contact") and not data.get("company"):
            raise ValidationFailed(_("A repeat sale needs an existing contact or company."),
                                   fields={"contact": [_("give a contact or a company")]})
        obj = deals.create_repeat_deal(request.auth, **data)
        return Status(201, serialize.record(rt.spec, obj))


LEADS = RecordType(
    name="Lead", plural="leads", singular="lead", spec=leads.LEAD,
    actions=Actions(create=leads.create_lead, create_many=leads.create_leads, update=leads.update_lead,
                    delete=leads.delete_lead, restore=leads.restore_lead),
    listing=ListConfig(orders=both_ways(("id", "created_at", "updated_at", "opportunity", "title")),
                       search=("title", "last_name", "first_name", "company_name"), links=("contact", "company")),
    extra_item=[_move(leads.move_lead), _convert],
)

DEALS = RecordType(
    name="Deal", plural="deals", singular="deal", spec=deals.DEAL,
    actions=Actions(create=deals.create_deal, create_many=deals.create_deals, update=deals.update_deal,
                    delete=deals.delete_deal, restore=deals.restore_deal),
    listing=ListConfig(orders=both_ways(("id", "created_at", "updated_at", "opportunity", "title")),
                       search=("title",), links=("contact", "company", "lead")),
    extra_static=[_repeat],
    extra_item=[_move(deals.move_deal)],
)

CONTACTS = RecordType(
    name="Contact", plural="contacts", singular="contact", spec=parties.CONTACT,
    actions=Actions(create=parties.create_contact, create_many=parties.create_contacts, update=parties.update_contact,
                    delete=parties.delete_contact, restore=parties.restore_contact),
    listing=ListConfig(orders=both_ways(("id", "created_at", "updated_at", "last_name")),
                       search=("last_name", "first_name", "middle_name"), links=("company",)),
)

COMPANIES = RecordType(
    name="Company", plural="companies", singular="company", spec=parties.COMPANY,
    actions=Actions(create=parties.create_company, create_many=parties.create_companies, update=parties.update_company,
                    delete=parties.delete_company, restore=parties.restore_company),
    listing=ListConfig(orders=both_ways(("id", "created_at", "updated_at", "name")), search=("name",)),
)

ConversionOut = create_model(
    "Conversion", lead=(LEADS.schemas["out"], ...), contact=(CONTACTS.schemas["out"] | None, ...),
    company=(COMPANIES.schemas["out"] | None, ...), deal=(DEALS.schemas["out"] | None, ...))

RepeatDealIn = create_model("RepeatDealIn", __base__=Strict, **input_fields(deals.DEAL))

ALL = (LEADS, DEALS, CONTACTS, COMPANIES)


def routers() -> list[tuple[str, Router]]:
    return [(f"/{rt.plural}", build_router(rt)) for rt in ALL]
