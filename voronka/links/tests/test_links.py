"""Links between records: rights, idempotency, both cards' timelines, unlink, merge keeps links, the API."""

from __future__ import annotations

import pytest

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed
from voronka.core.models import TimelineEntry
from voronka.deals.actions import create_deal
from voronka.identity.models import Department, User
from voronka.leads.actions import create_lead
from voronka.links import actions, selectors
from voronka.links.models import Link

pytestmark = pytest.mark.django_db

LEAD, DEAL = entity_types.LEAD, entity_types.DEAL


@pytest.fixture
def stranger(db):
    dept = Department.objects.create(name="Производство")
    return User.objects.create_user("stranger", "s@example.ru", "pass", department=dept)


@pytest.fixture
def records(admin, manager_user, stranger, lead_pipeline, deal_pipelines):
    mine = create_deal(admin, title="Моя сделка", responsible=manager_user.pk)
    other = create_deal(admin, title="Производство заказа", responsible=stranger.pk)
    lead = create_lead(admin, title="Лид менеджера", responsible=manager_user.pk)
    return {"mine": mine, "other": other, "lead": lead}


def test_link_shows_on_both_records_and_is_idempotent(admin, records):
    deal, prod = records["mine"], records["other"]
    link = actions.link(admin, (DEAL, deal.pk), (DEAL, prod.pk), role="production")
    again = actions.link(admin, (DEAL, deal.pk), (DEAL, prod.pk), role="production")
    assert again.pk == link.pk and Link.objects.count() == 1
    rows = selectors.links_of(admin, DEAL, prod.pk)
    assert [(r.direction, r.entity_id, r.obj.title) for r in rows] == [("in", deal.pk, "Моя сделка")]
    assert selectors.linked_ids(admin, DEAL, deal.pk, direction="out") == [(DEAL, prod.pk)]
    assert selectors.linked_ids(admin, DEAL, deal.pk, direction="in") == []
    assert selectors.linked_ids(admin, DEAL, deal.pk, role="complaint") == []
    entry = TimelineEntry.objects.get(kind="linked")
    assert (entry.entity_type_id, entry.entity_id) == (DEAL, deal.pk)
    assert list(entry.bindings.values_list("entity_type_id", "entity_id")) == [(DEAL, prod.pk)]
    # a different role is a different link
    actions.link(admin, (DEAL, deal.pk), (DEAL, prod.pk))
    assert Link.objects.filter(deleted_at__isnull=True).count() == 2


def test_unlink_keeps_the_row_and_writes_history(admin, records):
    link = actions.link(admin, (LEAD, records["lead"].pk), (DEAL, records["mine"].pk))
    actions.unlink(admin, link.pk)
    link.refresh_from_db()
    assert link.deleted_at is not None and link.deleted_by_id == admin.user_id
    assert selectors.links_of(admin, LEAD, records["lead"].pk) == []
    assert [e.data["event"] for e in TimelineEntry.objects.filter(kind="linked").order_by("pk")] == ["linked", "unlinked"]
    with pytest.raises(NotFound):
        actions.unlink(admin, link.pk)
    # linking again after an unlink makes a new live link
    assert actions.link(admin, (LEAD, records["lead"].pk), (DEAL, records["mine"].pk)).pk != link.pk


def test_rights_hide_the_far_end_and_refuse_invisible_records(admin, manager, records):
    mine, other, lead = records["mine"], records["other"], records["lead"]
    # the manager cannot see the stranger's deal: linking to it is «not found», as if it did not exist
    with pytest.raises(NotFound):
        actions.link(manager, (DEAL, mine.pk), (DEAL, other.pk))
    with pytest.raises(NotFound):
        actions.link(manager, (DEAL, mine.pk), (DEAL, 10**9))
    with pytest.raises(NotFound):
        selectors.links_of(manager, DEAL, other.pk)
    # an administrator links them; the manager sees the link on his deal but not what is behind it
    link = actions.link(admin, (DEAL, mine.pk), (DEAL, other.pk), role="production")
    rows = selectors.links_of(manager, DEAL, mine.pk)
    assert len(rows) == 1 and rows[0].hidden and rows[0].obj is None
    assert selectors.linked_ids(manager, DEAL, mine.pk) == []
    assert selectors.get_link(manager, link.pk) is None
    with pytest.raises(NotFound):
        actions.unlink(manager, link.pk)
    # the manager links his own lead and deal
    assert actions.link(manager, (LEAD, lead.pk), (DEAL, mine.pk)).created_by_id == manager.user_id


def test_a_user_who_may_change_neither_record_is_refused(admin, records, manager_user):
    colleague = User.objects.create_user("colleague", "c@example.ru", "pass", department=manager_user.department)
    from voronka.identity.models import Role, RoleAssignment
    from voronka.identity.permissions import rights_changed

    RoleAssignment.objects.create(role=Role.objects.get(code="sales_manager"), user=colleague)
    rights_changed()
    actor = Actor.for_user(colleague, "test")
    # he reads the department's deals and leads, but changes only his own
    with pytest.raises(PermissionDenied):
        actions.link(actor, (LEAD, records["lead"].pk), (DEAL, records["mine"].pk))
    assert Link.objects.count() == 0


@pytest.mark.parametrize("source, target, role, field", [
    ((DEAL, 1), (DEAL, 1), "", "target"),
    ((999, 1), (DEAL, 1), "", "source"),
    (("x", 1), (DEAL, 1), "", "source"),
    ((DEAL, 1), (DEAL, 2), "Производство", "role"),
    ((DEAL, 1), (DEAL, 2), "x" * 51, "role"),
])
def test_bad_links_are_refused(admin, source, target, role, field):
    with pytest.raises(ValidationFailed) as exc:
        actions.link(admin, source, target, role=role)
    assert field in exc.value.fields
