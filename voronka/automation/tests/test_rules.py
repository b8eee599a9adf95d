"""Conditions (every operator, and/or groups), templates and delays."""

import datetime
from decimal import Decimal

import pytest

from voronka.automation import conditions, fields
from voronka.automation.engine import schedule_for
from voronka.automation.models import Robot
from voronka.deals.actions import create_deal
from voronka.leads.actions import create_lead

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead(admin, lead_pipeline, manager_user):
    return create_lead(admin, title="Окна для дачи", first_name="Иван", last_name="Петров", source="site",
                       opportunity="1500.50", responsible=manager_user.pk, phones=["+7 916 123-45-67"],
                       custom={})


def c(field, op, value=None):
    return {"field": field, "op": op, **({} if value is None else {"value": value})}


@pytest.mark.parametrize("cond, expected", [
    (c("source", "equals", "site"), True),
    (c("source", "equals", "SITE "), True),  # text compares without case and outer spaces
    (c("source", "equals", "call"), False),
    (c("source", "differs", "call"), True),
    (c("source", "differs", "site"), False),
    (c("opportunity", "greater", 1000), True),
    (c("opportunity", "greater", "1500.50"), False),
    (c("opportunity", "less", 2000), True),
    (c("opportunity", "less", 100), False),
    (c("title", "contains", "ДАЧИ"), True),
    (c("title", "contains", "квартиры"), False),
    (c("phones", "contains", "+79161234567"), True),
    (c("inquiry", "empty"), True),
    (c("title", "empty"), False),
    (c("title", "not_empty"), True),
    (c("emails", "not_empty"), False),
    (c("source", "in", ["call", "site"]), True),
    (c("source", "in", ["call", "mail"]), False),
    (c("opportunity", "in", [1500.5, 10]), True),
])
def test_each_operator(lead, cond, expected):
    conditions.validate(cond)
    assert conditions.check(lead, cond) is expected


def test_and_or_groups(lead):
    spec = {"all": [c("source", "equals", "site"),
                    {"any": [c("opportunity", "greater", 100000), c("first_name", "equals", "Иван")]}]}
    assert conditions.check(lead, spec) is True
    spec["all"][1]["any"][1]["value"] = "Пётр"
    assert conditions.check(lead, spec) is False
    assert conditions.check(lead, {}) is True


def test_greater_and_less_on_an_empty_field_are_false(lead):
    assert not conditions.check(lead, c("utm_source", "greater", "a"))
    assert not conditions.check(lead, c("utm_source", "less", "z"))


def test_dates_compare_as_dates(admin, deal_pipelines):
    deal = create_deal(admin, title="Баня", close_date="2026-03-10")
    assert conditions.check(deal, c("close_date", "greater", "2026-03-01"))
    assert conditions.check(deal, c("close_date", "less", "2026-03-11"))
    assert conditions.check(deal, c("close_date", "equals", "2026-03-10"))


@pytest.mark.parametrize("bad, message", [
    ([], "must be an object"),
    ({"all": {}}, "must be a list"),
    ({"all": [], "any": []}, "exactly one key"),
    ({"field": "title", "op": "like", "value": 1}, "unknown operator"),
    ({"field": "title", "op": "equals"}, "needs a «value»"),
    ({"field": "title", "op": "in", "value": "a"}, "needs a list"),
    ({"field": "", "op": "empty"}, "must name a field"),
    ({"field": "title", "op": "empty", "x": 1}, "unknown keys"),
])
def test_bad_conditions_get_clear_errors(bad, message):
    with pytest.raises(conditions.ConditionError, match=message):
        conditions.validate(bad)


def test_an_unknown_field_is_an_error_at_check_time(lead):
    with pytest.raises(conditions.ConditionError, match="Unknown field «nope»"):
        conditions.check(lead, c("nope", "empty"))


def test_templates_substitute_fields_and_keep_unknown_placeholders(lead, manager_user):
    text = fields.render("Лид «{title}» ({stage}), {responsible}, {opportunity} ₽, {phones}, {nope}, {custom.x}", lead)
    assert text == ("Лид «Окна для дачи» (Не обработан), Пётр Менеджеров, 1500.50 ₽, +7 916 123-45-67, {nope}, ")
    assert fields.render("{title} {limit}", lead, {"limit": "3 hours"}) == "Окна для дачи 3 hours"
    assert fields.render("{{title}} {__class__} {title.__class__}", lead) == "{Окна для дачи} {__class__} {title.__class__}"


def test_a_single_placeholder_keeps_the_raw_value(lead):
    assert fields.value_or_render("{opportunity}", lead) == Decimal("1500.50")
    assert fields.value_or_render("{responsible}", lead) == lead.responsible_id
    assert fields.value_or_render("x {opportunity}", lead) == "x 1500.50"
    assert fields.value_or_render(7, lead) == 7


def test_delays(admin, deal_pipelines, stages):
    deal = create_deal(admin, title="Баня", close_date="2026-03-10")
    base = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
    robot = Robot(stage=stages["new"], action="comment")
    assert schedule_for(robot, deal, base) == (base, "")
    robot.delay_kind, robot.delay_amount, robot.delay_unit = "after", 90, "minutes"
    assert schedule_for(robot, deal, base) == (base + datetime.timedelta(minutes=90), "")
    robot.delay_unit = "days"
    assert schedule_for(robot, deal, base)[0] == base + datetime.timedelta(days=90)
    robot.delay_kind, robot.delay_field, robot.delay_amount, robot.delay_unit = "at_field", "close_date", -2, "days"
    at, problem = schedule_for(robot, deal, base)
    assert problem == ""
    from django.utils import timezone

    assert timezone.localtime(at).isoformat() == "2026-03-08T00:00:00+03:00"  # midnight in the installation's zone
    robot.delay_field = "begin_date"
    at, problem = schedule_for(robot, deal, base)
    assert problem == "The date field «begin_date» is empty."
