"""The robots board, the robot and limit forms, YAML export/import, the dry run, the automation log and the
notifications: every screen renders, writes go through the automation actions, bad input is a form error."""

from __future__ import annotations

import pytest

from voronka.activities.models import Notification
from voronka.automation.actions import create_robot, set_stage_limit
from voronka.automation.models import Robot, Run
from voronka.core.models import AuditEvent
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    """The administrator reads English here (the texts asserted below); Russian is checked in
    test_translations and by the Russian-by-default pages elsewhere."""
    from django.conf import settings

    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    client.force_login(admin_user)
    return client


@pytest.fixture
def stages(lead_pipeline):
    return {s.code: s for s in lead_pipeline.stages.all()}


def _robot_form(stage, **extra):
    data = {"name": "Позвонить клиенту", "stage": stage.pk, "trigger": "on_enter", "order": "", "delay_kind": "after",
            "delay_amount": "10", "delay_unit": "minutes", "delay_field": "", "action": "create_task",
            "params": "title: 'Позвонить {title}'\ndeadline: {amount: 1, unit: hours}\n",
            "conditions": "", "enabled": "on"}
    data.update(extra)
    return data


def test_board_lists_robots_and_limits(admin_client, admin, lead_pipeline, stages):
    create_robot(admin, stage=stages["new"].pk, name="Задача на звонок", action="create_task", params={"title": "Звонок"})
    set_stage_limit(admin, stages["new"].pk, amount=3, unit="hours",
                    steps=[{"after": {"amount": 0, "unit": "minutes"}, "notify": ["head"]}])
    page = admin_client.get(f"/settings/robots/{lead_pipeline.pk}/").content.decode()
    assert "Задача на звонок" in page and "Не обработан" in page and "Отказ" in page
    assert "notify the head" in page
    assert "user:" not in page  # people are named, not shown as tokens
    assert admin_client.get("/settings/robots/").status_code == 302


def test_add_edit_disable_reorder_delete_a_robot(admin_client, lead_pipeline, stages):
    url = f"/settings/robots/{lead_pipeline.pk}/new/?stage={stages['new'].pk}"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, _robot_form(stages["new"]))
    assert response.status_code == 302, response.content.decode()[:2000]
    robot = Robot.objects.get()
    assert (robot.delay_kind, robot.delay_amount, robot.params["title"]) == ("after", 10, "Позвонить {title}")
    assert AuditEvent.objects.filter(action="automation.robot_created").exists()
    second = admin_client.post(url, _robot_form(stages["new"], name="Второй", delay_kind="none"))
    assert second.status_code == 302
    first, other = Robot.objects.order_by("order", "id")
    board = f"/settings/robots/{lead_pipeline.pk}/"
    admin_client.post(board, {"op": "down", "robot": first.pk})
    assert list(Robot.objects.order_by("order", "id").values_list("id", flat=True)) == [other.pk, first.pk]
    assert AuditEvent.objects.filter(action="automation.robots_reordered").exists()
    admin_client.post(board, {"op": "disable", "robot": first.pk})
    first.refresh_from_db()
    assert not first.enabled
    edit = admin_client.post(f"/settings/robots/{lead_pipeline.pk}/robot/{first.pk}/",
                             _robot_form(stages["assigned"], name="Переехал"))
    assert edit.status_code == 302
    moved = Robot.objects.get(name="Переехал")
    assert moved.stage_id == stages["assigned"].pk and not Robot.objects.filter(pk=first.pk).exists()
    admin_client.post(board, {"op": "delete", "robot": other.pk})
    assert list(Robot.objects.values_list("name", flat=True)) == ["Переехал"]


def test_robot_form_shows_errors_per_field(admin_client, lead_pipeline, stages):
    url = f"/settings/robots/{lead_pipeline.pk}/new/"
    bad_yaml = admin_client.post(url, _robot_form(stages["new"], conditions="all: [field: x"))
    assert bad_yaml.status_code == 422 and "not valid YAML" in bad_yaml.content.decode()
    bad_condition = admin_client.post(url, _robot_form(stages["new"], conditions="all:\n- {field: source, op: like}\n"))
    assert bad_condition.status_code == 422 and "unknown operator" in bad_condition.content.decode()
    no_title = admin_client.post(url, _robot_form(stages["new"], params="description: x\n"))
    assert no_title.status_code == 422 and "title" in no_title.content.decode()
    bad_delay = admin_client.post(url, _robot_form(stages["new"], delay_amount="soon"))
    assert bad_delay.status_code == 422 and "whole number" in bad_delay.content.decode()
    not_a_map = admin_client.post(url, _robot_form(stages["new"], params="- a\n- b\n"))
    assert not_a_map.status_code == 422
    assert not Robot.objects.exists()


def test_limit_form(admin_client, lead_pipeline, stages):
    url = f"/settings/robots/{lead_pipeline.pk}/limit/{stages['new'].pk}/"
    assert admin_client.get(url).status_code == 200
    bad = admin_client.post(url, {"amount": "0", "unit": "hours", "steps": "", "enabled": "on"})
    assert bad.status_code == 422
    ok = admin_client.post(url, {"amount": "3", "unit": "hours", "enabled": "on",
                                 "steps": "- after: {amount: 0, unit: minutes}\n  notify: [responsible]\n"})
    assert ok.status_code == 302
    assert stages["new"].time_limit.amount == 3
    admin_client.post(f"/settings/robots/{lead_pipeline.pk}/", {"op": "delete_limit", "stage": stages["new"].pk})
    stages["new"].refresh_from_db()
    from voronka.automation.models import StageLimit

    assert not StageLimit.objects.exists()


def test_export_and_import_with_preview(admin_client, admin, lead_pipeline, stages):
    create_robot(admin, stage=stages["new"].pk, name="Звонок", action="create_task", params={"title": "Звонок"})
    exported = admin_client.get(f"/settings/robots/{lead_pipeline.pk}/export/")
    assert exported["Content-Disposition"].startswith("attachment")
    text = exported.content.decode().replace("name: Звонок", "name: Звонок клиенту")
    url = f"/settings/robots/{lead_pipeline.pk}/import/"
    preview = admin_client.post(url, {"op": "check", "text": text})
    assert preview.status_code == 200 and "Import now" in preview.content.decode()
    assert Robot.objects.get().name == "Звонок"  # the preview changed nothing
    broken = text.replace("action: create_task", "action: fly")
    failed = admin_client.post(url, {"op": "apply", "text": broken})
    assert failed.status_code == 422 and "Nothing was changed" in failed.content.decode()
    assert Robot.objects.get().name == "Звонок"
    applied = admin_client.post(url, {"op": "apply", "text": text})
    assert applied.status_code == 302
    assert Robot.objects.get().name == "Звонок клиенту"
    other = admin_client.post(url, {"op": "check", "text": text.replace("code: leads", "code: other")})
    assert other.status_code == 422 and "not «leads»" in other.content.decode()


def test_dry_run_writes_nothing(admin_client, admin, lead_pipeline, stages):
    create_robot(admin, stage=stages["assigned"].pk, name="Большим", action="comment", params={"text": "x"},
                 conditions={"all": [{"field": "opportunity", "op": "greater", "value": 1000}]})
    create_robot(admin, stage=stages["assigned"].pk, name="Всем", action="comment", params={"text": "y"},
                 delay={"kind": "after", "amount": 2, "unit": "hours"})
    set_stage_limit(admin, stages["assigned"].pk, amount=1, unit="days")
    lead = create_lead(admin, title="Лид", opportunity="10")
    runs_before = Run.objects.count()
    page = admin_client.get(f"/settings/robots/{lead_pipeline.pk}/dry-run/?record={lead.pk}&stage={stages['assigned'].pk}")
    text = page.content.decode()
    assert page.status_code == 200 and "The conditions do not hold." in text and "Всем" in text
    assert "notify the responsible" in text
    assert Run.objects.count() == runs_before
    missing = admin_client.get(f"/settings/robots/{lead_pipeline.pk}/dry-run/?record=999999&stage={stages['new'].pk}")
    assert missing.status_code == 422
    card = admin_client.get(f"/crm/leads/{lead.pk}/").content.decode()
    assert "Automation dry run" in card


def test_log_filters_and_retry(admin_client, admin, lead_pipeline, stages):
    from voronka.core.management.commands.worker import drain

    create_robot(admin, stage=stages["new"].pk, name="В стадию", action="move_stage", params={"stage": "qualified"})
    lead = create_lead(admin, title="Без телефона")
    drain()
    run = Run.objects.get(rule__startswith="robot:")
    assert run.status == "failed"  # «qualified» needs a phone
    page = admin_client.get("/settings/automation-log/?status=failed").content.decode()
    assert "Без телефона" in page and "Retry" in page
    assert admin_client.get(f"/settings/automation-log/?entity_type=lead&entity_id={lead.pk}&pipeline={lead_pipeline.pk}"
                            "&date_from=2020-01-01&date_to=2999-01-01").status_code == 200
    assert admin_client.get("/settings/automation-log/?status=nope").status_code == 422
    assert admin_client.get("/settings/automation-log/?date_from=yesterday").status_code == 422
    assert admin_client.get("/settings/automation-log/?cursor=garbage").status_code == 422
    admin_client.post(f"/settings/automation-log/{run.pk}/retry/")
    run.refresh_from_db()
    assert run.status == "pending" and run.attempts == 0
    assert AuditEvent.objects.filter(action="automation.run_retried").exists()
    again = admin_client.post(f"/settings/automation-log/{run.pk}/retry/", follow=True)
    assert "Only a failed run" in again.content.decode()
    drain()
    card = admin_client.get(f"/crm/leads/{lead.pk}/").content.decode()
    assert "В стадию" in card and "Failed" in card


def test_pages_need_the_robots_right(client, manager_user, lead_pipeline):
    client.force_login(manager_user)
    for url in ["/settings/robots/", f"/settings/robots/{lead_pipeline.pk}/", "/settings/automation-log/",
                f"/settings/robots/{lead_pipeline.pk}/export/", f"/settings/robots/{lead_pipeline.pk}/dry-run/"]:
        assert client.get(url).status_code == 403, url


def test_notifications_bell_and_mark_read(client, manager_user, admin, lead_pipeline):
    from voronka.activities.actions import notify

    client.force_login(manager_user)
    assert "bell-count" not in client.get("/").content.decode()
    lead = create_lead(admin, title="Для менеджера", responsible=manager_user.pk)
    notify(admin, users=[manager_user], text="Посмотрите лид", entity_type_id=1, entity_id=lead.pk)
    notify(admin, users=[manager_user], text="Второе")
    home = client.get("/").content.decode()
    assert 'class="bell-count" aria-hidden="true">2<' in home
    page = client.get("/notifications/?show=unread").content.decode()
    assert "Посмотрите лид" in page and f'name="go" value="/crm/leads/{lead.pk}/"' in page
    first = Notification.objects.get(text="Посмотрите лид")
    go = client.post("/notifications/read/", {"id": first.pk, "go": first.link})
    assert go.status_code == 302 and go["Location"] == first.link
    first.refresh_from_db()
    assert first.is_read
    client.post("/notifications/read/", {})
    assert not Notification.objects.filter(user=manager_user, is_read=False).exists()
    evil = client.post("/notifications/read/", {"go": "https://evil.example/"})
    assert evil["Location"] == "/notifications/"


def _trigger_form(stage, **extra):
    data = {"name": "Клиент позвонил", "stage": stage.pk, "kind": "call", "order": "",
            "params": "directions: [incoming, missed]\n", "enabled": "on"}
    data.update(extra)
    return data


def test_add_edit_disable_delete_a_trigger(admin_client, admin, lead_pipeline, stages):
    from voronka.automation.models import StageTrigger

    url = f"/settings/robots/{lead_pipeline.pk}/trigger/new/?stage={stages['assigned'].pk}"
    form = admin_client.get(url).content.decode()
    assert "A call from or to the client" in form and "directions: incoming, missed, outgoing." in form
    bad = admin_client.post(url, _trigger_form(stages["assigned"], params="directions: sideways\n"))
    assert bad.status_code == 422 and "«directions» is a list of" in bad.content.decode()
    bad = admin_client.post(url, _trigger_form(stages["assigned"], params="directions: [\n"))
    assert bad.status_code == 422 and "not valid YAML" in bad.content.decode()
    assert admin_client.post(url, _trigger_form(stages["assigned"])).status_code == 302
    trigger = StageTrigger.objects.get()
    assert (trigger.stage_id, trigger.params) == (stages["assigned"].pk, {"directions": ["incoming", "missed"]})
    board = admin_client.get(f"/settings/robots/{lead_pipeline.pk}/").content.decode()
    assert "Клиент позвонил" in board and "directions: incoming, missed" in board
    edit = f"/settings/robots/{lead_pipeline.pk}/trigger/{trigger.pk}/"
    assert admin_client.post(edit, _trigger_form(stages["qualified"], kind="webhook", params="",
                                                 allow_backwards="on")).status_code == 302
    trigger.refresh_from_db()
    assert (trigger.kind, trigger.stage_id, trigger.allow_backwards) == ("webhook", stages["qualified"].pk, True)
    page = admin_client.get(edit).content.decode()
    assert f"/hooks/trigger/{trigger.pk}/{trigger.secret}/" in page
    old = trigger.secret
    admin_client.post(edit, _trigger_form(stages["qualified"], kind="webhook", params="", rotate_secret="on"))
    trigger.refresh_from_db()
    assert trigger.secret != old
    board_url = f"/settings/robots/{lead_pipeline.pk}/"
    admin_client.post(board_url, {"op": "trigger_disable", "trigger": trigger.pk})
    trigger.refresh_from_db()
    assert trigger.enabled is False
    lead = create_lead(admin, title="Лид")
    dry = admin_client.get(f"/settings/robots/{lead_pipeline.pk}/dry-run/?record={lead.pk}&stage={stages['qualified'].pk}")
    assert "The trigger is disabled." in dry.content.decode()
    admin_client.post(board_url, {"op": "trigger_delete", "trigger": trigger.pk})
    assert not StageTrigger.objects.exists()
    assert AuditEvent.objects.filter(action="automation.trigger_deleted").exists()


def test_trigger_pages_need_the_right(client, manager_user, lead_pipeline, stages, admin):
    from voronka.automation.actions import create_trigger

    trigger = create_trigger(admin, stage=stages["new"].pk, kind="call")
    client.force_login(manager_user)
    assert client.get(f"/settings/robots/{lead_pipeline.pk}/trigger/new/").status_code == 403
    assert client.get(f"/settings/robots/{lead_pipeline.pk}/trigger/{trigger.pk}/").status_code == 403
    assert client.post(f"/settings/robots/{lead_pipeline.pk}/", {"op": "trigger_delete", "trigger": trigger.pk}).status_code == 403
    trigger.refresh_from_db()
