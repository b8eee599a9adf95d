"""Record pickers in a real browser (Chromium via Playwright), with the keyboard only: choose a deal's contact,
add and remove records of a multi-value link field, Escape restores the choice."""

from __future__ import annotations

from .browser import MARKS

pytestmark = MARKS


def test_pick_contact_and_partners_with_the_keyboard(page, admin, deal_pipelines):
    from voronka.customfields.actions import define_field
    from voronka.deals.actions import create_deal
    from voronka.deals.models import Deal
    from voronka.parties.actions import create_company, create_contact

    define_field(admin, entity_type_id=2, code="uf_partners", label="Партнёры", kind="link", multiple=True,
                 options={"entity_type_id": 4})
    create_contact(admin, last_name="Сидорова", first_name="Анна")
    oleg = create_contact(admin, last_name="Сидоров", first_name="Олег", phones=["+79161112233"])
    a = create_company(admin, name="Альфа Логистик")
    b = create_company(admin, name="Бета Монтаж")
    deal = create_deal(admin, title="Кухня", opportunity="100000")
    page.goto(f"{page.base}/crm/deals/{deal.pk}/")

    # the contact: type part of the name, the list opens; ArrowDown to the second suggestion, Enter chooses
    box = page.locator("#id_contact")
    box.focus()
    page.keyboard.type("сидоров")
    page.wait_for_selector("#id_contact-list [role=option] >> nth=1")
    assert box.get_attribute("aria-expanded") == "true"
    options = page.locator("#id_contact-list [role=option]").all_inner_texts()
    target = next(i for i, text in enumerate(options) if text.startswith("Сидоров Олег"))
    for _ in range(target):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")  # chooses, does not submit the form
    assert box.input_value() == "Сидоров Олег"
    assert page.locator("input[name=contact]").input_value() == str(oleg.pk)
    # Escape after typing something else restores the choice
    page.keyboard.type(" xyz")
    page.wait_for_selector("#id_contact-list:not([hidden])")
    page.keyboard.press("Escape")
    assert box.input_value() == "Сидоров Олег"

    # the partners (several companies): two chosen by Enter, the last removed by Backspace, one chosen again
    partners = page.locator("#id_cf_uf_partners")
    partners.focus()
    page.keyboard.type("альфа")
    page.wait_for_selector("#id_cf_uf_partners-list [role=option]:has-text('Альфа Логистик')")
    page.keyboard.press("Enter")
    page.keyboard.type("бета")
    page.wait_for_selector("#id_cf_uf_partners-list [role=option]:has-text('Бета Монтаж')")
    page.keyboard.press("Enter")
    assert page.locator(".picker .chip").count() == 2
    page.keyboard.press("Backspace")
    assert page.locator(".picker .chip").count() == 1
    page.keyboard.type("бета")
    page.wait_for_selector("#id_cf_uf_partners-list [role=option]:has-text('Бета Монтаж')")
    page.keyboard.press("Enter")

    page.click("#fields button[type=submit]")
    page.wait_for_selector(".messages .success, .messages li")
    deal = Deal.objects.get(pk=deal.pk)
    assert deal.contact_id == oleg.pk
    assert deal.custom["uf_partners"] == [a.pk, b.pk]
    # the saved card shows the names
    assert page.locator("#id_contact").input_value() == "Сидоров Олег"
    assert page.locator(".picker .chip").all_inner_texts()[0].startswith("Альфа Логистик")
