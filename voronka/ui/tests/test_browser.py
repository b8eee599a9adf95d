"""The main screens in a real browser (Debian's Chromium driven by Playwright): sign in, create a lead,
drag it across the board, see a refused move explained, fill a required field, convert, switch language."""

from __future__ import annotations

import pytest

from .browser import MARKS, sign_in

pytestmark = MARKS


@pytest.fixture
def page(browser, live_server, admin_user, lead_pipeline, deal_pipelines):
    context, pg = sign_in(browser, live_server, "admin", "admin-pass")
    yield pg
    context.close()


def test_lead_journey(page):
    from voronka.leads.models import Lead

    base = page.base
    # create a lead
    page.goto(base + "/crm/leads/new/")
    page.fill("#id_title", "Запрос: фильтры для КАМАЗ")
    page.fill("#id_first_name", "Игорь")
    page.fill("#phones", "8 (916) 555-11-22")
    page.click("main button[type=submit]")
    page.wait_for_selector("h1:has-text('Запрос: фильтры для КАМАЗ')")
    lead = Lead.objects.get(title="Запрос: фильтры для КАМАЗ")
    # drag it from «Не обработан» to «Назначен менеджер»
    page.goto(base + "/crm/leads/board/")
    card = page.locator(f'.kcard[data-id="{lead.pk}"]')
    target = page.locator(f'.column[data-stage="{lead_stage(lead, "assigned")}"] [data-drop]')
    card.drag_to(target)
    page.wait_for_selector(f'.column[data-stage="{lead_stage(lead, "assigned")}"] .kcard[data-id="{lead.pk}"]')
    page.wait_for_function("document.getElementById('toast').textContent.length > 0")
    lead.refresh_from_db()
    assert lead.stage.code == "assigned"
    # the move is on the timeline
    page.goto(base + f"/crm/leads/{lead.pk}/")
    assert page.locator(".tl-stage").first.inner_text().count("Назначен менеджер") == 1


def test_refused_move_snaps_back_with_the_reason(page, admin):
    from voronka.leads.actions import create_lead
    from voronka.leads.models import Lead
    from voronka.pipelines.actions import update_stage

    lead = create_lead(admin, title="Без телефона")
    base = page.base
    # «Квалифицирован» requires a phone: the move asks for it; cancelling snaps the card back
    page.goto(base + "/crm/leads/board/")
    qualified = lead_stage(lead, "qualified")
    page.locator(f'.kcard[data-id="{lead.pk}"]').drag_to(page.locator(f'.column[data-stage="{qualified}"] [data-drop]'))
    page.wait_for_selector("dialog[open] .required-form")
    assert "Phone" in page.inner_text("dialog[open]") or "Телефон" in page.inner_text("dialog[open]")
    page.click("dialog[open] [data-cancel]")
    page.wait_for_selector(f'.column[data-stage="{lead_stage(lead, "new")}"] .kcard[data-id="{lead.pk}"]')
    assert Lead.objects.get(pk=lead.pk).stage.code == "new"
    # now fill the phone in the dialog: the move completes
    page.locator(f'.kcard[data-id="{lead.pk}"]').drag_to(page.locator(f'.column[data-stage="{qualified}"] [data-drop]'))
    page.fill("dialog[open] input[name=req-phones]", "+7 495 123-45-67")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_function("!document.querySelector('dialog[open]')")
    assert Lead.objects.get(pk=lead.pk).stage.code == "qualified"
    # a move refused for another reason (a stage of a deleted... required custom field gone) shows the message
    update_stage(admin, lead.pipeline.stages.get(code="junk").pk, required_fields=["comment"])
    page.goto(base + f"/crm/leads/{lead.pk}/")
    page.click("button.stage:has-text('Некачественный')")
    page.wait_for_selector("dialog[open] .required-form")
    page.fill("dialog[open] textarea, dialog[open] input[type=text]", "Спам")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_load_state("load")
    page.wait_for_selector("button.stage.current:has-text('Некачественный')")


def test_convert_and_language(page, admin):
    from voronka.deals.models import Deal
    from voronka.leads.actions import create_lead

    lead = create_lead(admin, title="Клиент на сцепление", first_name="Ольга", last_name="Ким", company_name="ООО Ромашка",
                       phones=["+79160001122"])
    base = page.base
    page.goto(base + f"/crm/leads/{lead.pk}/")
    page.click("text=Convert to deal")
    page.wait_for_url("**/crm/deals/*/")
    deal = Deal.objects.get(lead=lead)
    assert deal.contact and deal.company.name == "ООО Ромашка"
    assert "Клиент на сцепление" in page.inner_text("h1")
    # the lead's history is on the deal's timeline
    assert page.locator(".tl").count() >= 3
    # switch to Russian
    with page.expect_navigation():
        page.select_option("#lang", "ru")
    assert page.get_attribute("html", "lang") == "ru"
    assert "Сделки" in page.inner_text(".sidebar") and "Мои задачи" in page.inner_text(".sidebar")


def lead_stage(lead, code: str) -> int:
    return lead.pipeline.stages.get(code=code).pk


def test_operator_saved_view_shows_exactly_its_stages(browser, live_server, admin, lead_pipeline):
    """F16: the call-centre operator's board shows only its three stages, through the role's default view."""
    from voronka.identity.actions import assign_role
    from voronka.identity.models import Role, User
    from voronka.ui.actions import save_view

    operator = User.objects.create_user("operator", password="operator-pass", first_name="Оля")
    role = Role.objects.get(code="call_centre_operator")
    assign_role(admin, role.pk, user_id=operator.pk)
    stages = {s.code: s for s in lead_pipeline.stages.all()}
    save_view(admin, entity_type_id=1, name="Мои три стадии", role_id=role.pk, is_default=True,
              params={"stage": [str(stages[c].pk) for c in ("new", "assigned", "qualified")]})
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="ru-RU")
    page = context.new_page()
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-pass")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")
    page.goto(live_server.url + "/crm/leads/board/")
    titles = [t.strip() for t in page.locator(".column .column-title").all_inner_texts()]
    assert titles == ["Не обработан", "Назначен менеджер", "Квалифицирован"]
    assert "Мои три стадии" in page.inner_text(".views-bar")
    context.close()


def test_add_a_robot_on_the_robots_board(page, lead_pipeline):
    """Keyboard and mouse: open the board, add a robot to «Назначен менеджер», see it in that column."""
    from voronka.automation.models import Robot

    base = page.base
    stage = lead_pipeline.stages.get(code="assigned")
    page.goto(base + f"/settings/robots/{lead_pipeline.pk}/")
    column = page.locator(f"#stage-{stage.pk}")
    column.get_by_role("link", name="+ Add a robot").click()
    page.wait_for_selector("#f-name")
    page.fill("#f-name", "Поставить задачу менеджеру")
    page.select_option("#f-delay-kind", "after")
    page.fill("#f-delay-amount", "15")
    page.select_option("#f-action", "notify")  # the parameters follow the action's example
    assert "text:" in page.input_value("#f-params")
    page.fill("#f-params", "text: 'Новый лид {title}'\nto: [responsible]\n")
    page.keyboard.press("Tab")
    page.click("button:has-text('Save the robot')")
    page.wait_for_url(f"**/settings/robots/{lead_pipeline.pk}/#robot-*")
    robot = Robot.objects.get(name="Поставить задачу менеджеру")
    assert robot.stage_id == stage.pk and robot.delay_amount == 15 and robot.action == "notify"
    card = page.locator(f"#stage-{stage.pk} #robot-{robot.pk}")
    card.wait_for()
    assert "Поставить задачу менеджеру" in card.inner_text()
