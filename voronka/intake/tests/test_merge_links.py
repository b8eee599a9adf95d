"""Merging records keeps their links (voronka.links): moved to the kept record, duplicates closed."""

from __future__ import annotations

import pytest

from voronka.core import entity_types
from voronka.deals.actions import create_deal
from voronka.leads.actions import create_lead
from voronka.links import actions, selectors
from voronka.links.models import Link

pytestmark = pytest.mark.django_db

LEAD, DEAL = entity_types.LEAD, entity_types.DEAL


@pytest.fixture
def records(admin, lead_pipeline, deal_pipelines):
    return {"mine": create_deal(admin, title="Сделка 1"), "other": create_deal(admin, title="Сделка 2")}


def test_merge_moves_links_to_the_kept_record(admin, records):
    from voronka.intake import duplicates

    a = create_lead(admin, title="Иван")
    b = create_lead(admin, title="Иван Петров")
    actions.link(admin, (LEAD, b.pk), (DEAL, records["mine"].pk), role="origin")
    actions.link(admin, (LEAD, a.pk), (DEAL, records["other"].pk), role="origin")
    actions.link(admin, (LEAD, b.pk), (DEAL, records["other"].pk), role="origin")  # a duplicate after the merge
    actions.link(admin, (LEAD, b.pk), (LEAD, a.pk))  # would link the kept record to itself
    duplicates.merge_records(admin, LEAD, a.pk, [b.pk])
    assert sorted(selectors.linked_ids(admin, LEAD, a.pk)) == [(DEAL, records["mine"].pk), (DEAL, records["other"].pk)]
    assert Link.objects.filter(deleted_at__isnull=True).count() == 2
