"""The permission matrix: personas × record kinds × reads and writes, with the role engine switched on."""

from __future__ import annotations

import pytest

from voronka.core import policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, PermissionDenied
from voronka.core.models import AuditEvent, OutboxEvent, TimelineEntry
from voronka.core.selectors import get_record_for, records_visible_to
from voronka.identity import actions as access
from voronka.identity.models import Department, Role, User
from voronka.identity.permissions import RoleEngine

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def role_engine():
    previous = policies._engine
    policies.install(RoleEngine())
    yield
    policies.install(previous)


@pytest.fixture
def world(admin, lead_pipeline, deal_pipelines):
    """A small company: sales department with two groups, a call centre and production."""
    from voronka.deals.actions import create_deal
    from voronka.leads.actions import create_lead
    from voronka.parties.actions import create_contact
    from voronka.pipelines.actions import create_pipeline

    production = create_pipeline(admin, entity_type_id=2, name="Производство", code="production",
                                 stages=[{"name": "В работе", "code": "work"}, {"name": "Готово", "code": "done",
                                                                               "semantics": "success"}])
    sales = Department.objects.create(name="Продажи")
    group_a = Department.objects.create(name="Группа А", parent=sales)
    group_b = Department.objects.create(name="Группа Б", parent=sales)
    calls = Department.objects.create(name="Колл-центр")
    plant = Department.objects.create(name="Производство")

    def user(login, dept, role):
        u = User.objects.create_user(login, password="x", first_name=login, department=dept)
        access.assign_role(admin, Role.objects.get(code=role).pk, user_id=u.pk)
        return u

    people = {
        "head": user("head", sales, "head_of_sales"),
        "manager_a": user("manager_a", group_a, "sales_manager"),
        "colleague_a": user("colleague_a", group_a, "sales_manager"),
        "manager_b": user("manager_b", group_b, "sales_manager"),
        "operator": user("operator", calls, "call_centre_operator"),
        "master": User.objects.create_user("master", password="x", department=plant),
    }
    sales.head = people["head"]
    sales.save()
    master_role = access.create_role(admin, code="master_prod", name="Мастер производства", rights=[
        {"entity_type_id": 2, "pipeline": production.pk, "perm": "read", "scope": "department"},
        {"entity_type_id": 2, "pipeline": production.pk, "perm": "update", "scope": "department"},
    ])
    access.assign_role(admin, master_role.pk, department_id=plant.pk)
    records = {}
    for owner in ("manager_a", "colleague_a", "manager_b", "operator"):
        uid = people[owner].pk
        records[f"lead_{owner}"] = create_lead(admin, title=f"Лид {owner}", responsible=uid)
        records[f"deal_{owner}"] = create_deal(admin, title=f"Сделка {owner}", responsible=uid)
        records[f"contact_{owner}"] = create_contact(admin, first_name=owner, responsible=uid, is_open=False)
    records["deal_prod"] = create_deal(admin, title="Изготовление", responsible=people["master"].pk,
                                       pipeline=production.pk)
    return people, records


def actor(people, name):
    return Actor.for_user(people[name], "test")


EXPECTED_LEADS = {
    "head": {"manager_a", "colleague_a", "manager_b", "operator"},
    "manager_a": {"manager_a", "colleague_a"},
    "manager_b": {"manager_b"},
    "operator": {"operator"},
    "master": set(),
}


@pytest.mark.parametrize("persona", sorted(EXPECTED_LEADS))
def test_lists_show_exactly_what_the_role_allows(world, persona):
    people, records = world
    a = actor(people, persona)
    got = set(records_visible_to(a, 1).values_list("title", flat=True))
    assert got == {f"Лид {o}" for o in EXPECTED_LEADS[persona]}


def test_pipeline_rights_are_separate(world):
    people, records = world
    master = actor(people, "master")
    assert list(records_visible_to(master, 2).values_list("title", flat=True)) == ["Изготовление"]
    # a sales manager does not see the production pipeline's deals of other departments
    assert "Изготовление" not in set(records_visible_to(actor(people, "manager_a"), 2).values_list("title", flat=True))


def test_denied_update_changes_nothing(world):
    people, records = world
    from voronka.leads.actions import delete_lead, update_lead

    lead = records["lead_colleague_a"]  # visible to manager_a (department) but not own
    before = (TimelineEntry.objects.count(), OutboxEvent.objects.count())
    with pytest.raises(PermissionDenied):
        update_lead(actor(people, "manager_a"), lead.pk, title="взлом")
    with pytest.raises(PermissionDenied):
        delete_lead(actor(people, "head"), lead.pk)  # nobody but administrators deletes
    lead.refresh_from_db()
    assert lead.title == "Лид colleague_a" and lead.deleted_at is None
    assert (TimelineEntry.objects.count(), OutboxEvent.objects.count()) == before


def test_invisible_record_is_not_found_not_forbidden(world):
    people, records = world
    with pytest.raises(NotFound) as err:
        get_record_for(actor(people, "manager_b"), 1, records["lead_manager_a"].pk)
    assert "manager_a" not in err.value.message  # the title does not leak


def test_create_respects_scope_for_the_responsible(world):
    people, records = world
    from voronka.leads.actions import create_lead

    op = actor(people, "operator")
    assert create_lead(op, title="Звонок").responsible_id == people["operator"].pk
    with pytest.raises(PermissionDenied):
        create_lead(op, title="Чужой", responsible=people["manager_a"].pk)
    with pytest.raises(PermissionDenied):
        from voronka.deals.actions import create_deal

        create_deal(op, title="Сделка оператора")


def test_observer_may_read(world, admin):
    people, records = world
    from voronka.core.recordkit import set_observers
    from voronka.deals.actions import DEAL

    deal = records["deal_manager_a"]
    b = actor(people, "manager_b")
    assert not records_visible_to(b, 2).filter(pk=deal.pk).exists()
    set_observers(admin, DEAL, deal.pk, [people["manager_b"].pk])
    assert records_visible_to(b, 2).filter(pk=deal.pk).exists()
    assert get_record_for(b, 2, deal.pk) == deal
    from voronka.deals.actions import update_deal

    with pytest.raises(PermissionDenied):
        update_deal(b, deal.pk, title="x")


def test_open_scope_and_open_flag(world):
    people, records = world
    from voronka.parties.actions import update_contact

    m = actor(people, "manager_b")
    titles = set(records_visible_to(m, 3).values_list("first_name", flat=True))
    assert titles == {"manager_b"}  # the others are not open
    update_contact(Actor.system("test"), records["contact_manager_a"].pk, is_open=True)
    titles = set(records_visible_to(m, 3).values_list("first_name", flat=True))
    assert titles == {"manager_b", "manager_a"}


def test_scoped_token_cannot_write(world):
    people, records = world
    from voronka.identity.models import ApiToken
    from voronka.leads.actions import update_lead

    token, _raw = ApiToken.issue(people["manager_a"], scopes=["read"])
    a = Actor.for_token(token)
    assert records_visible_to(a, 1).count() == 2
    with pytest.raises(PermissionDenied):
        update_lead(a, records["lead_manager_a"].pk, title="x")


def test_moving_into_a_pipeline_needs_add_there(world, admin, deal_pipelines):
    people, records = world
    from voronka.deals.actions import move_deal

    sales = deal_pipelines["sales"].pk
    access.set_role_rights(admin, Role.objects.get(code="sales_manager").pk, rights=[
        {"entity_type_id": 2, "pipeline": sales, "perm": p, "scope": "own"} for p in ("read", "add", "update")])
    with pytest.raises(PermissionDenied):
        move_deal(actor(people, "manager_a"), records["deal_manager_a"].pk, pipeline="production", stage="work")


def test_rights_changes_are_audited_and_need_the_right(world):
    people, records = world
    role = Role.objects.get(code="sales_manager")
    with pytest.raises(PermissionDenied):
        access.set_role_rights(actor(people, "head"), role.pk, rights=[])
    assert AuditEvent.objects.filter(action="role.assigned").count() >= 5


def test_recycle_bin_is_for_administrators(world, admin):
    from voronka.core.recordkit import purge_one
    from voronka.leads.actions import LEAD, delete_lead, restore_lead
    from voronka.leads.models import Lead

    people, records = world
    lead = records["lead_manager_a"]
    delete_lead(admin, lead.pk)
    assert not records_visible_to(actor(people, "manager_a"), 1).filter(pk=lead.pk).exists()
    with pytest.raises(PermissionDenied):
        restore_lead(actor(people, "head"), lead.pk)
    restore_lead(admin, lead.pk)
    delete_lead(admin, lead.pk)
    purge_one(admin, LEAD, lead.pk)
    assert not Lead.objects.filter(pk=lead.pk).exists()
    assert list(AuditEvent.objects.filter(entity_id=lead.pk, entity_type_id=1).order_by("id")
                .values_list("action", flat=True)) == ["record.deleted", "record.restored", "record.deleted",
                                                       "record.purged"]


def test_export_needs_the_right_and_exports_only_the_scope(world, admin):
    from voronka.core.export import export_records
    from voronka.leads.models import Lead

    people, records = world
    with pytest.raises(PermissionDenied):
        export_records(actor(people, "manager_a"), 1, Lead.objects.all(), columns=["id", "title"])
    content, content_type, name = export_records(actor(people, "head"), 1, Lead.objects.all(),
                                                 columns=["id", "title", "created_at"])
    text = content.decode("utf-8-sig")
    # head of sales exports the department and below, not the call centre's leads
    assert "Лид manager_a" in text and "Лид manager_b" in text and "Лид operator" not in text
    assert name.endswith(".csv") and content_type.startswith("text/csv")
    event = AuditEvent.objects.get(action="records.exported")
    assert event.count == 3 and event.actor_user_id == people["head"].pk
    content, _ct, _n = export_records(admin, 1, Lead.objects.all(), columns=["id", "title"], fmt="xlsx")
    from io import BytesIO

    from openpyxl import load_workbook

    sheet = load_workbook(BytesIO(content)).active
    assert sheet.max_row == 5  # header + 4 leads


def test_notifications_go_only_to_readers(world):
    people, records = world
    lead = records["lead_manager_a"]
    got = policies.readers([people["manager_a"], people["manager_b"], people["head"], people["operator"]], 1, lead)
    assert got == [people["manager_a"], people["head"]]
