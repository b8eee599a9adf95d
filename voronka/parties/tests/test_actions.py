from __future__ import annotations

import pytest

from voronka.core.errors import ValidationFailed
from voronka.core.models import TimelineEntry
from voronka.parties import actions
from voronka.parties.communications import find_owners
from voronka.parties.models import Communication

pytestmark = pytest.mark.django_db


def test_company_with_contacts_and_requisites(admin):
    company = actions.create_company(admin, name="ООО «Север»", company_type="contractor", industry="Логистика",
                                     phones=[{"value": "8 812 123-45-67", "type": "work"}], emails=["Info@Sever.ru"])
    a = actions.create_contact(admin, first_name="Ирина", last_name="Ковалёва", company=company.pk, gender="f",
                               birthday="1985-03-08", city="Санкт-Петербург")
    b = actions.create_contact(admin, first_name="Денис", last_name="Орлов", company=company.pk)
    assert set(company.contacts.values_list("id", flat=True)) == {a.pk, b.pk}
    req = actions.add_bank_requisite(admin, company.pk, inn="7812345678", bik="044525225", bank_name="Сбербанк")
    assert req.company_id == company.pk
    assert find_owners("email", ["info@sever.ru"]).get().entity_id == company.pk
    assert find_owners("phone", ["+78121234567"], [4]).count() == 1


def test_phones_replace_and_history(admin):
    contact = actions.create_contact(admin, first_name="A", phones=["+79160000001"])
    actions.update_contact(admin, contact.pk, phones=["+79160000002", {"value": "+79160000003", "type": "home"}])
    values = list(Communication.objects.filter(entity_type_id=3, entity_id=contact.pk).values_list("normalized", "value_type"))
    assert values == [("+79160000002", "mobile"), ("+79160000003", "home")]
    entry = TimelineEntry.objects.get(entity_type_id=3, entity_id=contact.pk, kind="updated")
    assert entry.changes["phones"][0] == ["+79160000001"]


@pytest.mark.parametrize("data, field", [
    ({"gender": "x"}, "gender"), ({"birthday": "31.02.2020"}, "birthday"), ({"company": 99999}, "company"),
    ({"phones": [{"value": "+79160000001", "type": "pager"}]}, "phones"), ({"phones": "not a phone"}, "phones"),
])
def test_contact_bad_input(admin, data, field):
    with pytest.raises(ValidationFailed) as err:
        actions.create_contact(admin, first_name="A", **data)
    assert field in err.value.fields


def test_company_bad_input(admin):
    with pytest.raises(ValidationFailed) as err:
        actions.create_company(admin, name="")
    assert "name" in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        actions.create_company(admin, name="x", company_type="alien")
    assert "company_type" in err.value.fields
