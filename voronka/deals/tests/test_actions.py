from __future__ import annotations

import pytest

from voronka.core.errors import ValidationFailed
from voronka.deals import actions
from voronka.deals.models import Deal
from voronka.parties.actions import create_company, create_contact
from voronka.pipelines.models import StageHistory

pytestmark = pytest.mark.django_db


def test_create_and_move_deal_with_required_amount(admin, deal_pipelines):
    deal = actions.create_deal(admin, title="Поставка фильтров")
    assert deal.pipeline.code == "sales" and deal.stage.code == "new" and deal.currency == "RUB"
    with pytest.raises(ValidationFailed) as err:
        actions.move_deal(admin, deal.pk, stage="invoice")
    assert "opportunity" in err.value.fields
    deal = actions.move_deal(admin, deal.pk, stage="invoice", fields={"opportunity": "120000"})
    assert deal.stage.code == "invoice" and str(deal.opportunity) == "120000.00"
    deal = actions.move_deal(admin, deal.pk, stage="won")
    assert deal.closed_at is not None and deal.stage_semantics == "success"
    assert StageHistory.objects.filter(entity_type_id=2, entity_id=deal.pk).count() == 3


def test_move_to_another_pipeline_by_code(admin, deal_pipelines):
    deal = actions.create_deal(admin, title="x")
    deal = actions.move_deal(admin, deal.pk, pipeline="repeat", stage="offer")
    assert deal.pipeline.code == "repeat"
    last = StageHistory.objects.filter(entity_type_id=2, entity_id=deal.pk).last()
    assert last.pipeline_id == deal.pipeline_id and last.from_stage.code == "new"


def test_repeat_sale_goes_to_the_short_pipeline(admin, deal_pipelines):
    company = create_company(admin, name="ООО Автодор", phones=["+74951234567"])
    contact = create_contact(admin, first_name="Олег", last_name="Смирнов", company=company.pk)
    deal = actions.create_repeat_deal(admin, contact=contact.pk, opportunity=5000)
    assert deal.is_repeat and deal.pipeline.code == "repeat" and deal.contact_id == contact.pk
    assert "Смирнов" in deal.title
    with pytest.raises(ValidationFailed):
        actions.create_repeat_deal(admin)
    with pytest.raises(ValidationFailed):
        actions.create_repeat_deal(admin, contact=987654)


def test_deal_links_must_exist(admin, deal_pipelines):
    with pytest.raises(ValidationFailed) as err:
        actions.create_deal(admin, title="x", contact=424242)
    assert "contact" in err.value.fields
    assert Deal.objects.count() == 0


def test_no_pipeline_gives_a_clear_error(admin):
    with pytest.raises(ValidationFailed) as err:
        actions.create_deal(admin, title="x")
    assert "pipeline" in err.value.fields
