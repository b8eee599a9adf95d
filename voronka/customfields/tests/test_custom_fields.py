from __future__ import annotations

import pytest

from voronka.core.errors import Conflict, ValidationFailed
from voronka.customfields.actions import define_field
from voronka.leads import actions
from voronka.leads.models import Lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def fields(admin, lead_pipeline):
    return {
        "budget": define_field(admin, entity_type_id=1, code="uf_budget", label="Бюджет", kind="money"),
        "cars": define_field(admin, entity_type_id=1, code="uf_cars", label="Машин в парке", kind="integer"),
        "brand": define_field(admin, entity_type_id=1, code="uf_brand", label="Марка", kind="enum", multiple=True,
                              options={"choices": [{"id": "kamaz", "label": "КАМАЗ"}, {"id": "maz", "label": "МАЗ"}]}),
        "visit": define_field(admin, entity_type_id=1, code="uf_visit", label="Визит", kind="date"),
        "vip": define_field(admin, entity_type_id=1, code="uf_vip", label="VIP", kind="boolean"),
    }


def test_values_are_validated_and_normalised(admin, fields):
    lead = actions.create_lead(admin, title="x", custom={"uf_budget": "1500,5", "uf_cars": "12", "uf_brand": ["kamaz"],
                                                        "uf_visit": "2026-12-01", "uf_vip": "yes"})
    assert lead.custom == {"uf_budget": {"amount": "1500.50", "currency": "RUB"}, "uf_cars": 12, "uf_brand": ["kamaz"],
                           "uf_visit": "2026-12-01", "uf_vip": True}


@pytest.mark.parametrize("value, code", [
    ({"uf_cars": "двенадцать"}, "custom.uf_cars"),
    ({"uf_brand": ["volvo"]}, "custom.uf_brand"),
    ({"uf_visit": "завтра"}, "custom.uf_visit"),
    ({"uf_vip": "maybe"}, "custom.uf_vip"),
    ({"uf_budget": {"amount": "10", "currency": "рубли"}}, "custom.uf_budget"),
])
def test_wrong_types_are_refused(admin, fields, value, code):
    with pytest.raises(ValidationFailed) as err:
        actions.create_lead(admin, title="x", custom=value)
    assert code in err.value.fields
    assert Lead.objects.count() == 0


def test_update_merges_and_clears(admin, fields):
    lead = actions.create_lead(admin, title="x", custom={"uf_cars": 3})
    lead = actions.update_lead(admin, lead.pk, custom={"uf_vip": True})
    assert lead.custom == {"uf_cars": 3, "uf_vip": True}
    lead = actions.update_lead(admin, lead.pk, custom={"uf_cars": None})
    assert lead.custom == {"uf_vip": True}


def test_required_custom_field_for_a_stage(admin, fields, lead_pipeline):
    from voronka.pipelines.actions import update_stage

    stage = lead_pipeline.stages.get(code="assigned")
    update_stage(admin, stage.pk, required_fields=["uf_cars"])
    lead = actions.create_lead(admin, title="x")
    with pytest.raises(ValidationFailed) as err:
        actions.move_lead(admin, lead.pk, stage="assigned")
    assert "uf_cars" in err.value.fields
    actions.move_lead(admin, lead.pk, stage="assigned", fields={"custom": {"uf_cars": 2}})


def test_definitions_are_checked(admin, fields, manager):
    from voronka.core.errors import PermissionDenied

    with pytest.raises(Conflict):
        define_field(admin, entity_type_id=1, code="uf_cars", label="x", kind="integer")
    with pytest.raises(ValidationFailed):
        define_field(admin, entity_type_id=1, code="budget", label="x", kind="integer")
    with pytest.raises(ValidationFailed):
        define_field(admin, entity_type_id=1, code="uf_list", label="x", kind="enum", options={})
    with pytest.raises(PermissionDenied):
        define_field(manager, entity_type_id=1, code="uf_other", label="x", kind="string")
