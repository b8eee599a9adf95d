"""Smart types and their items through the actions: the same write path, history and rights as deals."""

from __future__ import annotations

import pytest

from voronka.core import entity_types
from voronka.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from voronka.core.models import TimelineEntry
from voronka.core.selectors import get_record_for, records_visible_to
from voronka.items import actions
from voronka.items.models import SmartItem, SmartType
from voronka.pipelines.models import Pipeline, StageHistory

pytestmark = pytest.mark.django_db


def test_type_gets_an_id_from_1030_a_default_pipeline_and_a_registry_entry(admin):
    t = actions.create_type(admin, name="Претензия", name_plural="Претензии")
    assert t.id == 1030 and t.code == "pretenziya"
    pipeline = Pipeline.objects.get(entity_type_id=t.id)
    assert pipeline.is_default and [s.code for s in pipeline.stages.all()] == ["new", "work", "done", "cancelled"]
    info = entity_types.get(t.id)
    assert info.code == "pretenziya" and info.staged and info.label_plural == "Претензии"
    assert entity_types.by_code("pretenziya").id == t.id
    second = actions.create_type(admin, name="Склад", code="stock")
    assert second.id == 1031 and second.name_plural == "Склад"


def test_type_input_is_checked(admin):
    with pytest.raises(ValidationFailed) as err:
        actions.create_type(admin, name="", code="Bad code", links=["planet"], colour="red")
    assert set(err.value.fields) == {"name", "code", "links", "colour"}
    with pytest.raises(ValidationFailed) as err:
        actions.create_type(admin, name="Deals again", code="deals")
    assert "reserved" in err.value.fields["code"][0]
    actions.create_type(admin, name="Orders", code="orders")
    with pytest.raises(ValidationFailed):
        actions.create_type(admin, name="Orders", code="orders")


def test_manager_cannot_define_types(manager):
    with pytest.raises(PermissionDenied):
        actions.create_type(manager, name="Mine")
    assert not SmartType.objects.exists()


def test_item_lifecycle_history_and_scope(admin, production):
    item = actions.create_item(admin, "production", title="Kitchen #12", opportunity="150000", close_date="2026-12-01")
    assert item.entity_type_id == production.id and item.stage.code == "queued"
    actions.move_item(admin, production.id, item.pk, stage="cutting")
    actions.move_item(admin, "production", item.pk, stage="assembly")
    item.refresh_from_db()
    assert item.stage.code == "assembly"
    moves = list(StageHistory.objects.filter(entity_type_id=production.id, entity_id=item.pk)
                 .values_list("to_stage__code", flat=True))
    assert moves == ["queued", "cutting", "assembly"]
    assert TimelineEntry.objects.filter(entity_type_id=production.id, entity_id=item.pk, kind="stage").count() == 2
    # an item of another type with the same table is not reachable under this type
    other = actions.create_type(admin, name="Complaint", code="complaints")
    complaint = actions.create_item(admin, "complaints", title="Scratched door")
    assert not records_visible_to(admin, production.id).filter(pk=complaint.pk).exists()
    with pytest.raises(NotFound):
        get_record_for(admin, production.id, complaint.pk)
    with pytest.raises(NotFound):
        actions.update_item(admin, production.id, complaint.pk, title="x")
    assert get_record_for(admin, other.id, complaint.pk).title == "Scratched door"
    actions.delete_item(admin, "production", item.pk)
    assert not records_visible_to(admin, production.id).exists()
    actions.restore_item(admin, "production", item.pk)
    assert records_visible_to(admin, production.id).count() == 1


def test_required_fields_of_a_stage_apply(admin, production):
    item = actions.create_item(admin, "production", title="Wardrobe")
    actions.move_item(admin, "production", item.pk, stage="cutting")
    with pytest.raises(ValidationFailed) as err:
        actions.move_item(admin, "production", item.pk, stage="assembly")
    assert "close_date" in err.value.fields
    actions.move_item(admin, "production", item.pk, stage="assembly", fields={"close_date": "2026-12-24"})


def test_unknown_type_is_not_found(admin):
    with pytest.raises(NotFound):
        actions.create_item(admin, "nothing", title="x")
    with pytest.raises(NotFound):
        actions.create_item(admin, 2, title="not a smart type")


def test_links_decide_writable_fields(admin):
    actions.create_type(admin, name="Visit", code="visits", links=["company"])
    with pytest.raises(ValidationFailed) as err:
        actions.create_item(admin, "visits", title="x", contact=1)
    assert err.value.fields == {"contact": ["Unknown field."]}


def test_type_rename_and_code_is_fixed(admin, production):
    actions.update_type(admin, production.id, name_plural="Manufacturing")
    assert entity_types.get(production.id).label_plural == "Manufacturing"
    with pytest.raises(ValidationFailed):
        actions.update_type(admin, production.id, code="other")


def test_delete_type_only_when_empty(admin, production):
    from voronka.identity.models import Role, RolePermission

    RolePermission.objects.create(role=Role.objects.get(code="sales_manager"), entity_type_id=production.id,
                                  perm="read", scope=50)
    item = actions.create_item(admin, "production", title="Table")
    with pytest.raises(Conflict):
        actions.delete_type(admin, production.id)
    SmartItem.objects.filter(pk=item.pk).delete()
    actions.delete_type(admin, production.id)
    assert not Pipeline.objects.filter(entity_type_id=production.id).exists()
    assert not RolePermission.objects.filter(entity_type_id=production.id).exists()
    with pytest.raises(LookupError):
        entity_types.get(production.id)


def test_rights_per_type_and_pipeline(admin, manager, manager_user, production):
    """A sales manager has no right on a new type until a role grants it; then by scope like deals."""
    from voronka.identity.models import Role, RolePermission
    from voronka.identity.permissions import rights_changed

    mine = actions.create_item(admin, "production", title="Mine", responsible=manager_user.pk, is_open=False)
    actions.create_item(admin, "production", title="Someone else's", is_open=False)
    assert not records_visible_to(manager, production.id).exists()
    with pytest.raises(NotFound):
        get_record_for(manager, production.id, mine.pk)
    with pytest.raises(PermissionDenied):
        actions.create_item(manager, "production", title="x")
    role = Role.objects.get(code="sales_manager")
    for right in ("read", "add", "update"):
        RolePermission.objects.create(role=role, entity_type_id=production.id, perm=right, scope=10)
    rights_changed()
    assert list(records_visible_to(manager, production.id).values_list("title", flat=True)) == ["Mine"]
    created = actions.create_item(manager, "production", title="New one")
    assert created.responsible_id == manager_user.pk
    with pytest.raises(PermissionDenied):
        actions.delete_item(manager, "production", created.pk)
