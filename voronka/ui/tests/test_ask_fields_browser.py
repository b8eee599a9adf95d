"""Optional fields asked on entry (F23) in a real browser: an administrator lists them for a stage on the pipeline
screen; dragging a card into that stage opens the small form with them (filled with the record's values, none
required) together with the stage's missing required fields; an empty optional field never blocks the move. The
API's move is unaffected."""

from __future__ import annotations

import datetime

from .browser import MARKS

pytestmark = MARKS


def _setup(admin):
    from voronka.customfields.actions import define_field
    from voronka.items.actions import create_item, create_type

    t = create_type(admin, name="Production order", name_plural="Production orders", code="orders",
                    pipeline_name="Workshop", stages=[
                        {"name": "Queued", "code": "queued"}, {"name": "Cutting", "code": "cutting"},
                        {"name": "Painting", "code": "painting", "required_fields": ["close_date"]},
                        {"name": "Done", "code": "done", "semantics": "success"},
                        {"name": "Rejected", "code": "rejected", "semantics": "failure"}])
    define_field(admin, entity_type_id=t.id, code="uf_sheet", label="Sheet thickness, mm", kind="integer")
    define_field(admin, entity_type_id=t.id, code="uf_note", label="Workshop note", kind="string")
    a = create_item(admin, "orders", title="Frame A", opportunity=1000, custom={"uf_note": "from the deal"})
    b = create_item(admin, "orders", title="Frame B", opportunity=2000)
    return t, a, b


def test_settings_then_board_asks_optional_fields(page, admin):
    from voronka.items.models import SmartItem
    from voronka.pipelines.models import Pipeline

    t, a, b = _setup(admin)
    pipe = Pipeline.objects.get(entity_type_id=t.id)
    cutting, painting = pipe.stages.get(code="cutting"), pipe.stages.get(code="painting")
    # the administrator lists the optional fields of «Cutting» and «Painting» on the pipeline screen
    page.goto(page.base + f"/settings/pipelines/{pipe.pk}/")
    for stage, names in ((cutting, ["uf_sheet", "uf_note"]), (painting, ["uf_note"])):
        row = page.locator(f'form.stage-row[data-id="{stage.pk}"]')
        row.locator("select[name=ask]").select_option(names)
        row.locator("button[type=submit]").first.click()
        page.wait_for_load_state()
    cutting.refresh_from_db()
    painting.refresh_from_db()
    assert (cutting.ask_fields, painting.ask_fields) == (["uf_sheet", "uf_note"], ["uf_note"])
    assert painting.required_fields == ["close_date"]

    # drag Frame A into «Cutting»: the form asks both, optional, the note filled with the item's value
    page.goto(page.base + f"/crm/orders/board/?pipeline={pipe.pk}")
    zone = page.locator(f'#board .column[data-stage="{cutting.pk}"] [data-drop]')
    page.locator(f'.kcard[data-id="{a.pk}"]').drag_to(zone)
    page.wait_for_selector("dialog[open] .required-form")
    dialog = page.locator("dialog[open]")
    assert "Sheet thickness, mm" in dialog.inner_text() and "optional" in dialog.inner_text()
    assert page.get_attribute("dialog[open] [name=req-custom-uf_sheet]", "required") is None
    assert page.input_value("dialog[open] [name=req-custom-uf_note]") == "from the deal"
    # Cancel: nothing moved
    page.click("dialog[open] [data-cancel]")
    page.wait_for_function("!document.querySelector('dialog[open]')")
    assert SmartItem.objects.get(pk=a.pk).stage_id != cutting.pk
    page.locator(f'.kcard[data-id="{a.pk}"]').drag_to(zone)
    page.wait_for_selector("dialog[open] .required-form")
    page.fill("dialog[open] [name=req-custom-uf_sheet]", "3")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_function("!document.querySelector('dialog[open]')")
    page.wait_for_selector(f'#board .column[data-stage="{cutting.pk}"] .kcard[data-id="{a.pk}"]')
    item = SmartItem.objects.get(pk=a.pk)
    assert (item.stage_id, item.custom) == (cutting.pk, {"uf_note": "from the deal", "uf_sheet": 3})

    # Frame B into «Cutting» with every optional field left empty: it moves, nothing is written
    page.locator(f'.kcard[data-id="{b.pk}"]').drag_to(zone)
    page.wait_for_selector("dialog[open] .required-form")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_function("!document.querySelector('dialog[open]')")
    page.wait_for_selector(f'#board .column[data-stage="{cutting.pk}"] .kcard[data-id="{b.pk}"]')
    item = SmartItem.objects.get(pk=b.pk)
    assert (item.stage_id, item.custom or {}) == (cutting.pk, {})

    # «Painting» requires the end date and asks the note: both in one form; the date is required there
    zone = page.locator(f'#board .column[data-stage="{painting.pk}"] [data-drop]')
    page.locator(f'.kcard[data-id="{b.pk}"]').drag_to(zone)
    page.wait_for_selector("dialog[open] .required-form")
    assert page.get_attribute("dialog[open] [name=req-close_date]", "required") is not None
    assert page.get_attribute("dialog[open] [name=req-custom-uf_note]", "required") is None
    page.fill("dialog[open] [name=req-close_date]", "2026-12-20")
    page.fill("dialog[open] [name=req-custom-uf_note]", "matte")
    page.click("dialog[open] button[type=submit]")
    page.wait_for_function("!document.querySelector('dialog[open]')")
    page.wait_for_selector(f'#board .column[data-stage="{painting.pk}"] .kcard[data-id="{b.pk}"]')
    item = SmartItem.objects.get(pk=b.pk)
    assert (item.stage_id, item.close_date, item.custom) == (painting.pk, datetime.date(2026, 12, 20),
                                                             {"uf_note": "matte"})


def test_the_api_move_never_asks(admin, admin_user):
    """Optional fields never block a move: the API moves at once (and the required ones still answer 422)."""
    from voronka.api.tests.conftest import bearer
    from voronka.identity.models import ApiToken
    from voronka.pipelines.actions import update_stage
    from voronka.pipelines.models import Pipeline

    t, a, _b = _setup(admin)
    pipe = Pipeline.objects.get(entity_type_id=t.id)
    for code in ("cutting", "painting"):
        update_stage(admin, pipe.stages.get(code=code).pk, ask_fields=["uf_sheet", "uf_note"])
    api = bearer(ApiToken.issue(admin_user, name="t")[1])
    r = api.post(f"/items/orders/{a.pk}/move", {"stage": "cutting"})
    assert r.status_code == 200, r.content
    r = api.post(f"/items/orders/{a.pk}/move", {"stage": "painting"})
    assert r.status_code == 422 and set(r.json()["fields"]) == {"close_date"}
    r = api.get(f"/pipelines/{pipe.pk}")
    stages = {s["code"]: s for s in r.json()["stages"]}
    assert stages["cutting"]["ask_fields"] == ["uf_sheet", "uf_note"]
    import yaml

    from voronka.automation.config_io import export_pipeline

    exported = {st["code"]: st for st in yaml.safe_load(export_pipeline(pipe))["pipeline"]["stages"]}
    assert exported["cutting"]["ask_fields"] == ["uf_sheet", "uf_note"] and "ask_fields" not in exported["queued"]
    r = api.patch(f"/stages/{stages['queued']['id']}", {"ask_fields": ["no_such_field"]})
    assert r.status_code == 422 and "ask_fields" in r.json()["fields"]
