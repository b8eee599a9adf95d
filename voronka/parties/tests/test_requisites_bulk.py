"""Bank requisites for many companies at once (the importer's new companies): all written, or none."""

from __future__ import annotations

import pytest

from voronka.core.errors import ActionError
from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.parties.actions import add_bank_requisites, create_company
from voronka.parties.models import BankRequisite

pytestmark = pytest.mark.django_db


def test_many_requisites_with_timeline_and_events(admin):
    a, b = create_company(admin, name="Альфа"), create_company(admin, name="Бета")
    entries, events = TimelineEntry.objects.count(), OutboxEvent.objects.count()
    result = add_bank_requisites(admin, [(a.pk, {"inn": "7707083893"}), (b.pk, {"inn": "500100732259"})])
    assert [r.inn for r in result] == ["7707083893", "500100732259"]
    assert set(BankRequisite.objects.values_list("company_id", "inn")) == {(a.pk, "7707083893"),
                                                                          (b.pk, "500100732259")}
    assert TimelineEntry.objects.count() == entries + 2
    assert OutboxEvent.objects.filter(name="company.updated").count() == 2
    assert OutboxEvent.objects.count() == events + 2


def test_one_refused_item_writes_nothing(admin, manager):
    mine = create_company(manager, name="Моя")
    other = create_company(admin, name="Чужая", is_open=False)
    result = add_bank_requisites(manager, [(mine.pk, {"inn": "7707083893"}), (other.pk, {"inn": "7707083894"}),
                                           (999999, {"inn": "7707083895"}), (mine.pk, {"shoe": "42"})])
    assert not isinstance(result[0], ActionError)
    assert [type(r).__name__ for r in result[1:]] == ["PermissionDenied", "NotFound", "ValidationFailed"]
    assert not BankRequisite.objects.exists()
