"""The trigger form on the robots board and the working-calendar screens in a real browser (Debian's Chromium
driven by Playwright): what an administrator does with the mouse and keyboard, checked in the database."""

from __future__ import annotations

import datetime

import pytest

from .browser import MARKS, sign_in

pytestmark = MARKS


@pytest.fixture
def page(browser, live_server, admin_user):
    context, pg = sign_in(browser, live_server, "admin", "admin-pass", language="en")
    yield pg
    context.close()


def test_add_a_trigger_see_its_webhook_address_and_disable_it(page, lead_pipeline):
    from voronka.automation.models import StageTrigger

    base = page.base
    stage = lead_pipeline.stages.get(code="assigned")
    page.goto(base + f"/settings/robots/{lead_pipeline.pk}/")
    page.locator(f"#stage-{stage.pk}").get_by_role("link", name="+ Add a trigger").click()
    page.wait_for_selector("#f-name")
    assert page.input_value("#f-stage") == str(stage.pk)  # the column it was added from
    page.select_option("#f-kind", "call")  # the parameters follow the event's example
    assert "directions" in page.input_value("#f-params")
    page.fill("#f-name", "Звонок из 1С")
    page.fill("#f-params", "directions: [sometimes]\n")
    page.click("button:has-text('Save the trigger')")
    page.wait_for_selector("#e-params")  # a per-field message, the form keeps what was typed
    assert page.get_attribute("#f-params", "aria-invalid") == "true"
    assert page.input_value("#f-name") == "Звонок из 1С"
    assert not StageTrigger.objects.exists()
    page.select_option("#f-kind", "webhook")
    page.fill("#f-params", "")
    page.click("button:has-text('Save the trigger')")
    page.wait_for_url(f"**/settings/robots/{lead_pipeline.pk}/#trigger-*")
    trigger = StageTrigger.objects.get(name="Звонок из 1С")
    assert trigger.stage_id == stage.pk and trigger.kind == "webhook" and trigger.enabled
    card = page.locator(f"#stage-{stage.pk} #trigger-{trigger.pk}")
    card.wait_for()
    assert f"/hooks/trigger/{trigger.pk}/{trigger.secret}/" in card.locator("input.code").input_value()
    card.get_by_role("button", name="Disable").click()
    page.locator(f"#trigger-{trigger.pk} .badge.warn").wait_for()
    trigger.refresh_from_db()
    assert not trigger.enabled


def test_set_the_company_week_a_holiday_and_a_persons_schedule(page, manager_user):
    from voronka.calendars.models import Absence, CalendarDay, CompanyCalendar, UserSchedule

    base = page.base
    page.goto(base + "/settings/calendar/")
    page.fill("#f-tz", "Moscow")
    page.fill("#w-mon", "09:00-13:00, 14:00-18:00")
    page.fill("#w-sat", "")
    page.click("form:has(#f-tz) button[type=submit]")
    page.wait_for_selector("#e-tz")
    assert "is not a time zone" in page.inner_text("#e-tz")
    assert page.input_value("#w-mon") == "09:00-13:00, 14:00-18:00"  # nothing typed is lost
    page.fill("#f-tz", "Europe/Moscow")
    page.click("form:has(#f-tz) button[type=submit]")
    page.wait_for_selector(".messages :text('The working calendar is saved.')")
    row = CompanyCalendar.objects.get()
    assert row.time_zone == "Europe/Moscow" and row.week["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]]
    assert row.week["sat"] == []
    year = datetime.date.today().year + 1
    page.fill("#f-days", f"{year}-01-01 holiday Новый год\n{year}-02-22 09:00-17:00 предпраздничный")
    page.click("button:has-text('Save the days')")
    page.wait_for_selector(f"td:text('01.01.{year}')")
    assert CalendarDay.objects.filter(user__isnull=True).count() == 2
    page.get_by_role("button", name=f"Remove 01.01.{year}").click()
    page.wait_for_selector(f"td:text('22.02.{year}')")
    assert list(CalendarDay.objects.filter(user__isnull=True).values_list("date", flat=True)) == [
        datetime.date(year, 2, 22)]
    # a person: own zone and an absence
    page.get_by_role("link", name=manager_user.get_full_name() or manager_user.username).click()
    page.wait_for_url(f"**/settings/calendar/users/{manager_user.pk}/")
    page.fill("#f-tz", "Asia/Yekaterinburg")
    page.click("form:has(#f-tz) button[type=submit]")
    page.wait_for_selector(".messages :text('The schedule is saved.')")
    assert UserSchedule.objects.get(user=manager_user).time_zone == "Asia/Yekaterinburg"
    page.fill("#f-from", f"{year}-07-01")
    page.fill("#f-to", f"{year}-07-14")
    page.fill("#f-reason", "отпуск")
    page.click("form:has(#f-from) button[type=submit]")
    page.wait_for_selector(f"td:text('14.07.{year}')")
    assert Absence.objects.get(user=manager_user).reason == "отпуск"


def test_a_person_adds_an_absence_under_my_account(browser, live_server, manager_user):
    from voronka.calendars.models import Absence

    context, page = sign_in(browser, live_server, manager_user.username, "manager-pass", language="en")
    try:
        page.click("a[href='/account/']")
        page.wait_for_selector("#absences")
        year = datetime.date.today().year + 1
        page.fill("#a-from", f"{year}-08-10")
        page.fill("#a-to", f"{year}-08-01")
        page.click("#absences button:has-text('Add')")
        page.wait_for_selector("#absences .errorlist")
        assert "The end is before the start." in page.inner_text("#absences")
        page.fill("#a-to", f"{year}-08-20")
        page.fill("#a-reason", "больничный")
        page.click("#absences button:has-text('Add')")
        page.wait_for_selector(f"#absences td:text('20.08.{year}')")
        assert Absence.objects.get(user=manager_user).reason == "больничный"
        page.click("#absences button:has-text('Remove')")
        page.wait_for_selector("#absences td:text('No absences.')")
        assert not Absence.objects.filter(user=manager_user).exists()
    finally:
        context.close()
