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


def add_bank_requisites(actor: Actor, items: list[tuple[int, dict]]) -> list:
    """``add_bank_requisite`` for many companies at once (the importer's new companies): one locked read, one
    insert of the requisites, of their timeline entries and of their events. Returns, per item, the requisite or
    the ``ActionError`` that refused it; when any item is refused, nothing is written."""
    from django.core.exceptions import ValidationError

    from voronka.core import fastinsert
    from voronka.core.errors import ActionError, PermissionDenied, ValidationFailed, from_django_validation
    from voronka.core.models import TimelineEntry

    results: list = []
    with transaction.atomic():
        ids = sorted({company_id for company_id, _data in items})
        companies = {c.pk: c for c in Company.objects.select_for_update().filter(pk__in=ids, deleted_at__isnull=True)}
        for company_id, data in items:
            try:
                unknown = set(data) - set(REQUISITE_FIELDS)
                if unknown:
                    raise ValidationFailed(_("Unknown fields."),
                                           fields={k: [_("Unknown field.")] for k in sorted(unknown)})
                company = companies.get(company_id)
                if company is None:
                    raise NotFound(_("Company #%(id)s does not exist.") % {"id": company_id})
                if not policies.can(actor, policies.UPDATE, entity_types.COMPANY, company):
                    raise PermissionDenied(_("You do not have the right to do this."), code="forbidden_update")
                req = BankRequisite(company=company, **{k: (v or "") for k, v in data.items()})
                try:
                    req.full_clean(exclude=["company"], validate_unique=False, validate_constraints=False)
                except ValidationError as exc:
                    raise from_django_validation(exc) from None
                results.append(req)
            except ActionError as exc:
                results.append(exc)
        if any(isinstance(r, ActionError) for r in results):
            return results
        BankRequisite.objects.bulk_create(results)
        fastinsert.insert_rows(TimelineEntry, [
            history.entry_row(actor, entity_types.COMPANY, r.company_id, "updated",
                              changes={"requisites": [None, r.name or r.bank_name]}) for r in results])
        outbox.emit_rows([outbox.row(actor, "company.updated", entity_types.COMPANY, r.company_id,
                                     {"changed": ["requisites"]}) for r in results])
    return results
