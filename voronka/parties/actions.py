"""Every write to contacts and companies."""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import entity_types, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound
from voronka.core.recordkit import RecordSpec, create_many, create_one, delete_one, restore_one, update_one

from .communications import CommunicationsHook
from .models import BankRequisite, Company, Contact

CONTACT = RecordSpec(
    model=Contact, entity_type_id=entity_types.CONTACT, code="contact",
    writable=("first_name", "last_name", "middle_name", "company", "position", "birthday", "gender", "city", "address",
              "behaviour_notes", "solvency", "comment", "source", "responsible"),
    hooks=(CommunicationsHook(),),
)

COMPANY = RecordSpec(
    model=Company, entity_type_id=entity_types.COMPANY, code="company",
    writable=("name", "company_type", "industry", "legal_address", "actual_address", "site", "employees", "revenue",
              "currency", "comment", "source", "responsible"),
    hooks=(CommunicationsHook(),),
)


def create_contact(actor: Actor, **data) -> Contact:
    return create_one(actor, CONTACT, data)


def create_contacts(actor: Actor, items: list[dict]):
    return create_many(actor, CONTACT, items)


def update_contact(actor: Actor, contact_id: int, **data) -> Contact:
    return update_one(actor, CONTACT, contact_id, data)


def delete_contact(actor: Actor, contact_id: int) -> Contact:
    return delete_one(actor, CONTACT, contact_id)


def restore_contact(actor: Actor, contact_id: int) -> Contact:
    return restore_one(actor, CONTACT, contact_id)


def create_company(actor: Actor, **data) -> Company:
    return create_one(actor, COMPANY, data)


def create_companies(actor: Actor, items: list[dict]):
    return create_many(actor, COMPANY, items)


def update_company(actor: Actor, company_id: int, **data) -> Company:
    return update_one(actor, COMPANY, company_id, data)


def delete_company(actor: Actor, company_id: int) -> Company:
    return delete_one(actor, COMPANY, company_id)


def restore_company(actor: Actor, company_id: int) -> Company:
    return restore_one(actor, COMPANY, company_id)


REQUISITE_FIELDS = ("name", "inn", "kpp", "ogrn", "bank_name", "bik", "account", "corr_account")


def add_bank_requisite(actor: Actor, company_id: int, **data) -> BankRequisite:
    from django.core.exceptions import ValidationError

    from voronka.core.errors import ValidationFailed, from_django_validation

    unknown = set(data) - set(REQUISITE_FIELDS)
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        company = Company.objects.select_for_update().filter(pk=company_id, deleted_at__isnull=True).first()
        if company is None:
            raise NotFound(_("Company #%(id)s does not exist.") % {"id": company_id})
        policies.require(actor, policies.UPDATE, entity_types.COMPANY, company)
        req = BankRequisite(company=company, **{k: (v or "") for k, v in data.items()})
        try:
            req.full_clean()
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        req.save()
        history.entry(actor, entity_types.COMPANY, company.pk, "updated", changes={"requisites": [None, req.name or req.bank_name]})
        outbox.emit(actor, "company.updated", entity_types.COMPANY, company.pk, {"changed": ["requisites"]})
        return req
