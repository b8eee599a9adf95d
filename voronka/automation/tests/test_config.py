"""Robot settings: validation with clear errors, rights, audit."""

import pytest

from voronka.automation.actions import create_robot, delete_robot, update_robot
from voronka.automation.models import Robot
from voronka.core.errors import NotFound, PermissionDenied, ValidationFailed
from voronka.core.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("data, field, message", [
    ({"action": "explode", "params": {}}, "action", "Unknown action «explode»"),
    ({"action": "create_task", "params": {}}, "params", "«title» is required"),
    ({"action": "create_task", "params": {"title": "t", "color": 1}}, "params", "unknown parameters color"),
    ({"action": "create_task", "params": {"title": "t", "responsible": "boss"}}, "params", "is not one of"),
    ({"action": "create_task", "params": {"title": "t", "deadline": {"amount": 1, "unit": "weeks"}}}, "params",
     "minutes, hours or days"),
    ({"action": "notify", "params": {"text": "x", "to": []}}, "params", "one or more people"),
    ({"action": "change_responsible", "params": {"mode": "round_robin", "users": ["role:x"]}}, "params", "takes users"),
    ({"action": "webhook", "params": {"url": "ftp://x"}}, "params", "http:// or https://"),
    ({"action": "create_linked", "params": {"entity_type": "ship"}}, "params", "unknown kind of record «ship»"),
    ({"action": "comment", "params": {"text": "x"}, "trigger": "on_exit"}, "trigger", "on_enter or on_create"),
    ({"action": "comment", "params": {"text": "x"}, "conditions": {"field": "t", "op": "like", "value": 1}},
     "conditions", "unknown operator"),
    ({"action": "comment", "params": {"text": "x"}, "delay": {"kind": "after", "amount": -5}}, "delay", "whole number"),
    ({"action": "comment", "params": {"text": "x"}, "delay": {"kind": "at_field", "field": "title"}}, "delay",
     "is not a date"),
    ({"action": "comment", "params": {"text": "x"}, "delay": {"kind": "at_field", "field": "nope"}}, "delay", "No field"),
    ({"action": "comment", "params": {"text": "x"}, "colour": "red"}, "colour", ""),  # an existing, translated message
])
def test_bad_robots_get_clear_errors(admin, stages, data, field, message):
    with pytest.raises(ValidationFailed) as exc:
        create_robot(admin, stage=stages["new"].pk, **data)
    assert message in " ".join(exc.value.fields.get(field, [])), exc.value.fields
    assert not Robot.objects.exists()


def test_a_robot_is_created_changed_and_deleted_with_audit(admin, stages):
    robot = create_robot(admin, stage=stages["new"].pk, action="comment", params={"text": "x"},
                         delay={"kind": "after", "amount": 2, "unit": "hours"})
    assert (robot.name, robot.delay_kind, robot.delay_amount, robot.delay_unit) == ("Add a comment", "after", 2, "hours")
    update_robot(admin, robot.pk, name="Комментарий", enabled=False)
    robot.refresh_from_db()
    assert (robot.name, robot.enabled) == ("Комментарий", False)
    delete_robot(admin, robot.pk)
    assert not Robot.objects.exists()
    assert list(AuditEvent.objects.filter(action__startswith="automation.").order_by("id").values_list("action", flat=True)) == [
        "automation.robot_created", "automation.robot_updated", "automation.robot_deleted"]
    with pytest.raises(NotFound):
        update_robot(admin, robot.pk, enabled=True)
    with pytest.raises(NotFound):
        create_robot(admin, stage=999999, action="comment", params={"text": "x"})


def test_only_people_with_the_robots_setting_may_configure(manager, stages):
    with pytest.raises(PermissionDenied):
        create_robot(manager, stage=stages["new"].pk, action="comment", params={"text": "x"})
