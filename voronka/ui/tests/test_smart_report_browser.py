"""A smart process's stage funnel in a real browser (Chromium via Playwright): a production master who reads only
«Production orders» opens Reports → Stage funnel, chooses the process in the records picker, and a band of the
funnel opens the process's list with exactly the items behind it."""

from __future__ import annotations

import pytest

from .browser import MARKS, sign_in

pytestmark = MARKS


@pytest.fixture
def master_page(browser, live_server):
    from voronka.core.actor import Actor
    from voronka.identity.models import Role, RoleAssignment, RolePermission, Scope, User
    from voronka.identity.permissions import rights_changed
    from voronka.items.actions import create_item, create_type, move_item

    admin = Actor.for_user(User.objects.create_superuser("root", "root@example.ru", "root-pass"), "test")
    t = create_type(admin, name="Production order", name_plural="Production orders", code="orders",
                    pipeline_name="Workshop", stages=[
                        {"name": "Queued", "code": "queued"}, {"name": "Cutting", "code": "cutting"},
                        {"name": "Painting", "code": "painting"},
                        {"name": "Done", "code": "done", "semantics": "success"},
                        {"name": "Rejected", "code": "rejected", "semantics": "failure"}])
    master = User.objects.create_user("master", "master@example.ru", "master-pass", first_name="Олег")
    role = Role.objects.create(code="workshop", name="Workshop")
    for perm in ("read", "update"):
        RolePermission.objects.create(role=role, entity_type_id=t.id, perm=perm, scope=Scope.ALL)
    RoleAssignment.objects.create(role=role, user=master)
    rights_changed()
    made = {}
    for title, amount, path in (("Frame A", 1000, ["cutting", "painting", "cutting", "painting"]),
                                ("Frame B", 2000, ["cutting"]), ("Frame C", 3000, ["rejected"]),
                                ("Frame D", 4000, [])):
        made[title] = create_item(admin, "orders", title=title, opportunity=amount)
        for stage in path:
            move_item(admin, "orders", made[title].pk, stage=stage)
    context, pg = sign_in(browser, live_server, "master", "master-pass", language="en")
    yield pg
    context.close()


def test_funnel_of_a_smart_pipeline(master_page):
    page = master_page
    page.click("nav >> text=Reports")
    page.click("text=Stage funnel")
    # he reads no deals: the funnel starts on his process
    page.wait_for_selector("h1:has-text('Stage funnel: Production orders · Workshop')")
    page.select_option("#r-entity", "orders")
    page.click("#report-filters button[type=submit]")
    page.wait_for_selector("h1:has-text('Stage funnel: Production orders · Workshop')")
    rows = page.locator(".report-table tbody tr")
    cells = {rows.nth(i).locator("th").text_content().strip(): rows.nth(i).locator("td").first.inner_text()
             for i in range(rows.count())}
    assert cells == {"Queued": "4", "Cutting": "2", "Painting": "1", "Success": "0"}
    assert page.locator("#r-pipe option", has_text="Production orders: Workshop").count() == 1
    # the «Cutting» band of the chart (2 items, Frame A came back to it and went on) opens exactly those items
    band = page.locator("svg.chart a").filter(has=page.locator("title", has_text="Cutting: 2"))
    band.locator("rect").first.click()
    page.wait_for_url("**/crm/orders/?**")
    titles = sorted(page.locator("#rows tr").nth(i).inner_text() for i in range(page.locator("#rows tr").count()))
    assert len(titles) == 2 and "Frame A" in titles[0] and "Frame B" in titles[1]
