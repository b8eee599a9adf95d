"""YAML export and import of a pipeline's stages, robots and time limits."""

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError

from voronka.automation.actions import create_robot, create_trigger, set_stage_limit
from voronka.automation.models import Robot, StageLimit, StageTrigger
from voronka.pipelines.models import Pipeline

pytestmark = pytest.mark.django_db


@pytest.fixture
def configured(admin, stages, manager_user):
    create_robot(admin, stage=stages["new"].pk, name="Звонок", action="create_task",
                 params={"title": "Позвонить {title}", "responsible": f"user:{manager_user.pk}"},
                 conditions={"all": [{"field": "source", "op": "in", "value": ["site"]}]},
                 delay={"kind": "after", "amount": 10, "unit": "minutes"})
    set_stage_limit(admin, stages["new"].pk, amount=3, unit="hours",
                    steps=[{"notify": ["responsible"]}, {"after": {"amount": 1, "unit": "hours"}, "notify": ["head"]}])
    create_trigger(admin, stage=stages["assigned"].pk, name="Входящий", kind="webhook")


def export(ref="leads") -> str:
    from io import StringIO

    out = StringIO()
    call_command("automation", "export", ref, stdout=out)
    return out.getvalue()


def test_export_then_import_into_a_new_pipeline_gives_the_same_document(configured):
    text = export()
    doc = yaml.safe_load(text)
    new = doc["pipeline"]["stages"][0]
    assert new["robots"][0]["params"] == {"title": "Позвонить {title}", "responsible": "user:manager"}  # by login
    assert new["time_limit"]["amount"] == 3 and len(new["time_limit"]["steps"]) == 2
    doc["pipeline"]["code"], doc["pipeline"]["name"] = "leads-copy", "Копия"
    from io import StringIO

    out = StringIO()
    path = _write(doc)
    call_command("automation", "import", path, stdout=out)
    assert "6 stage(s), 1 robot(s), 1 trigger(s), 1 time limit(s)" in out.getvalue()
    copy = yaml.safe_load(export("lead:leads-copy"))
    assert copy["pipeline"]["stages"] == doc["pipeline"]["stages"]


def _write(doc) -> str:
    import tempfile

    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8")
    handle.write(yaml.safe_dump(doc, allow_unicode=True))
    handle.close()
    return handle.name


def test_import_replaces_robots_of_listed_stages_and_is_idempotent(configured, stages):
    doc = yaml.safe_load(export())
    doc["pipeline"]["stages"][0]["robots"][0]["name"] = "Другое имя"
    path = _write(doc)
    call_command("automation", "import", path)
    call_command("automation", "import", path)
    assert list(Robot.objects.values_list("name", flat=True)) == ["Другое имя"]
    assert StageLimit.objects.count() == 1


def test_triggers_round_trip_and_a_webhook_keeps_its_address(configured, stages):
    before = StageTrigger.objects.get()
    doc = yaml.safe_load(export())
    assigned = doc["pipeline"]["stages"][1]
    assert assigned["triggers"] == [{"name": "Входящий", "kind": "webhook", "params": {}, "allow_backwards": False,
                                     "enabled": True, "order": 100}]
    assert before.secret not in export()  # never exported
    assigned["triggers"].append({"name": "Звонок", "kind": "call", "params": {"directions": ["missed"]}})
    path = _write(doc)
    call_command("automation", "import", path)
    call_command("automation", "import", path)
    assert StageTrigger.objects.get(kind="webhook").secret == before.secret
    assert StageTrigger.objects.get(kind="call").params == {"directions": ["missed"]}
    assigned["triggers"] = [assigned["triggers"][1]]
    call_command("automation", "import", _write(doc))
    assert list(StageTrigger.objects.values_list("kind", flat=True)) == ["call"]
    doc["pipeline"]["stages"][1]["triggers"][0]["kind"] = "telepathy"
    with pytest.raises(CommandError, match="stage «assigned», trigger 1: kind: Unknown event"):
        call_command("automation", "import", _write(doc))


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(version=2), "version: 1"),
    (lambda d: d["pipeline"].update(entity_type="ship"), "unknown kind of record «ship»"),
    (lambda d: d["pipeline"].update(entity_type="contact"), "have no stages"),
    (lambda d: d["pipeline"]["stages"].append(dict(d["pipeline"]["stages"][0])), "appears twice"),
    (lambda d: d["pipeline"]["stages"][0]["robots"][0].update(action="explode"), "stage «new», robot 1: action: Unknown action"),
    (lambda d: d["pipeline"]["stages"][0]["robots"][0]["params"].update(responsible="user:nobody"),
     "no active user «nobody»"),
    (lambda d: d["pipeline"]["stages"][0]["time_limit"].update(unit="weeks"), "time limit: unit"),
    (lambda d: d["pipeline"]["stages"][1].update(colour="red"), "stage 2: unknown keys colour"),
])
def test_bad_files_get_a_clear_message_and_change_nothing(configured, mutate, message):
    doc = yaml.safe_load(export())
    mutate(doc)
    before = (Robot.objects.count(), StageLimit.objects.count(), Pipeline.objects.count())
    with pytest.raises(CommandError) as exc:
        call_command("automation", "import", _write(doc))
    assert message in str(exc.value) and "Nothing was changed." in str(exc.value)
    assert (Robot.objects.count(), StageLimit.objects.count(), Pipeline.objects.count()) == before


def test_not_yaml_and_missing_files(configured, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: [unclosed")
    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("automation", "import", str(bad))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("automation", "import", str(tmp_path / "nope.yaml"))
    with pytest.raises(CommandError, match="No pipeline «nope»"):
        call_command("automation", "export", "nope")
