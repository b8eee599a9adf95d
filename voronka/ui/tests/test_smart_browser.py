"""Smart processes in a real browser (Debian's Chromium driven by Playwright): define a process on the settings
screen, create an item, drag it across its board with a custom field asked on the way, approve a launch."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM) and os.environ.get("CI") != "true",
                       reason="Chromium is not installed on this machine (CI installs Debian's chromium)"),
]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run", "--disable-quic",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server, admin_user):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    pg = context.new_page()
    pg.set_default_timeout(10000)
    pg.base = live_server.url
    pg.goto(live_server.url + "/login/")
    pg.fill("#id_username", "admin")
    pg.fill("#id_password", "admin-pass")
    pg.click("button[type=submit]")
    pg.wait_for_url(live_server.url + "/")
    yield pg
    context.close()


def test_define_a_process_and_work_an_item(page, admin):
    from voronka.activities.actions import create_task
    from voronka.customfields.actions import define_field
    from voronka.items.models import SmartItem, SmartType
    from voronka.pipelines.actions import update_stage
    from voronka.pipelines.models import Stage

    base = page.base
    page.goto(base + "/settings/types/")
    page.fill("#tname", "Доставка")
    page.fill("#tplural", "Доставки")
    page.fill("#tcode", "deliveries")
    page.click("form.card button[type=submit]")
    page.wait_for_selector("a:has-text('Доставки')")
    t = SmartType.objects.get(code="deliveries")
    define_field(admin, entity_type_id=t.id, code="uf_address", label="Адрес доставки", kind="string")
    work = Stage.objects.get(pipeline__entity_type_id=t.id, code="work")
    update_stage(admin, work.pk, required_fields=["custom.uf_address"])
    # the menu has the new process; create an item
    page.goto(base + "/")
    page.click("nav a:has-text('Доставки')")
    page.goto(base + "/crm/deliveries/new/")
    page.fill("#id_title", "Доставка дивана")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1:has-text('Доставка дивана')")
    item = SmartItem.objects.get(title="Доставка дивана")
    # drag it to «In progress»: the required custom field is asked for in the dialog
    page.goto(base + "/crm/deliveries/board/")
    page.locator(f'.kcard[data-id="{item.pk}"]').drag_to(page.locator(f'.column[data-stage="{work.pk}"] [data-drop]'))
    page.wait_for_selector("dialog[open] .required-form")
    page.fill("dialog[open] input[name=req-custom-uf_address]", "Москва, ул. Ленина, 1")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_function("!document.querySelector('dialog[open]')")
    item.refresh_from_db()
    assert item.stage_id == work.pk and item.custom == {"uf_address": "Москва, ул. Ленина, 1"}
    # an approval task on the item: «Approve» moves it to «Done»
    task = create_task(admin, title="Подтвердить доставку", entity_type_id=t.id, entity_id=item.pk,
                       approval={"approved": "done", "rejected": "cancelled"})
    page.goto(base + f"/tasks/{task.pk}/")
    page.click("button[value=approved]")
    page.wait_for_selector("text=Approved")
    item.refresh_from_db()
    assert item.stage.code == "done"
    page.goto(base + f"/crm/deliveries/{item.pk}/")
    assert page.locator("input[name=cf_uf_address]").input_value() == "Москва, ул. Ленина, 1"
