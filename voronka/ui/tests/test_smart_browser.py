"""Smart processes in a real browser (Debian's Chromium driven by Playwright): define a process on the settings
screen, create an item, drag it across its board with a custom field asked on the way, approve a launch."""

from __future__ import annotations

from .browser import MARKS

pytestmark = MARKS


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
