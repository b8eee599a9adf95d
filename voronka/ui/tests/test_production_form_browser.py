"""F23 in a real browser: a deal dragged from the sales board onto the «Production» pipeline zone under the board
asks for the order's data in a small form before the move completes; the robot creates the production order with
those values. The card's «Move to another pipeline» does the same."""

from __future__ import annotations

from voronka.automation.tests.production_setup import order_of, production_company

from .browser import MARKS

pytestmark = MARKS


def test_drag_to_production_asks_for_the_order_data(page, admin):
    from voronka.core.management.commands.worker import drain
    from voronka.deals.actions import create_deal
    from voronka.deals.models import Deal

    company = production_company(admin)
    placed = company["placed"]
    deal = create_deal(admin, title="Trailer frame", opportunity="690000")
    page.goto(page.base + f"/crm/deals/board/?pipeline={company['sales'].pk}")
    zone = page.locator(f'#board-away .column[data-stage="{placed.pk}"] [data-drop]')
    assert "Production" in zone.inner_text()
    page.locator(f'.kcard[data-id="{deal.pk}"]').drag_to(zone)
    page.wait_for_selector("dialog[open] .required-form")
    dialog = page.locator("dialog[open]")
    assert "Order placed" in dialog.inner_text()
    # Cancel: the card goes back, nothing moved
    page.click("dialog[open] [data-cancel]")
    page.wait_for_selector(f'#board .kcard[data-id="{deal.pk}"]')
    assert Deal.objects.get(pk=deal.pk).pipeline_id == company["sales"].pk
    # again, and fill the form: typed inputs for the number and the date
    page.locator(f'.kcard[data-id="{deal.pk}"]').drag_to(zone)
    page.wait_for_selector("dialog[open] .required-form")
    assert page.get_attribute("dialog[open] [name=req-custom-uf_quantity]", "type") == "number"
    assert page.get_attribute("dialog[open] [name=req-custom-uf_due_date]", "type") == "date"
    page.fill("dialog[open] [name=req-custom-uf_product]", "Trailer frame 8 m")
    page.fill("dialog[open] [name=req-custom-uf_quantity]", "2")
    page.fill("dialog[open] [name=req-custom-uf_due_date]", "2026-12-20")
    page.fill("dialog[open] [name=req-custom-uf_notes]", "Channel 16, under a tent")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_function("!document.querySelector('dialog[open]')")
    page.wait_for_function(f"!document.querySelector('#board .kcard[data-id=\"{deal.pk}\"]')")  # it left the board
    deal.refresh_from_db()
    assert (deal.pipeline_id, deal.stage_id) == (company["production"].pk, placed.pk)
    drain()  # the robot «create linked item» runs
    order = order_of(deal.pk, company["orders"].id)
    assert order.title == "Order: Trailer frame"
    assert order.custom == {"uf_product": "Trailer frame 8 m", "uf_quantity": 2, "uf_due_date": "2026-12-20",
                            "uf_notes": "Channel 16, under a tent"}

    # the card: «Move to another pipeline» asks the same
    other = create_deal(admin, title="Canopy", opportunity="980000")
    page.goto(page.base + f"/crm/deals/{other.pk}/")
    page.select_option("#away-stage", str(placed.pk))
    page.click(".away-form button[type=submit]")
    page.wait_for_selector("dialog[open] .required-form")
    page.fill("dialog[open] [name=req-custom-uf_product]", "Canopy 12x6")
    page.fill("dialog[open] [name=req-custom-uf_quantity]", "1")
    page.fill("dialog[open] [name=req-custom-uf_due_date]", "2027-01-15")
    page.fill("dialog[open] [name=req-custom-uf_notes]", "Roof C21")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_selector("span.badge:has-text('Production')")
    drain()
    assert order_of(other.pk, company["orders"].id).custom["uf_product"] == "Canopy 12x6"
