"""CRUD, bulk, lists and the record-specific operations of the REST API."""

from __future__ import annotations

import datetime
import decimal

import pytest
from django.utils import timezone

from voronka.core.models import TimelineEntry
from voronka.deals.models import Deal
from voronka.leads.models import Lead
from voronka.parties.models import Communication, Company, Contact
from voronka.pipelines.models import StageHistory

pytestmark = pytest.mark.django_db

CASES = {
    "leads": ({"title": "Заявка с сайта", "first_name": "Иван", "phones": ["8 (916) 123-45-67"],
               "emails": ["Ivan@Example.RU"], "opportunity": "1500.50", "source": "site"},
              {"title": "Заявка (уточнена)", "opportunity": 2000}, Lead),
    "deals": ({"title": "Поставка фильтров", "opportunity": 99000, "probability": 40, "close_date": "2026-03-01"},
              {"probability": 60}, Deal),
    "contacts": ({"first_name": "Мария", "last_name": "Иванова", "birthday": "1990-05-17",
                  "phones": [{"value": "+7 916 000-00-01", "type": "work"}], "emails": ["maria@example.ru"]},
                 {"position": "Закупщик"}, Contact),
    "companies": ({"name": "ООО Ромашка", "company_type": "partner", "revenue": "1000000.00",
                   "phones": ["+7 495 123-45-67"]}, {"industry": "Автозапчасти"}, Company),
}


def _same(got, sent) -> bool:
    try:
        return decimal.Decimal(str(got)) == decimal.Decimal(str(sent))
    except decimal.InvalidOperation:
        return got == sent


@pytest.fixture
def pipelines(lead_pipeline, deal_pipelines):
    return {"leads": lead_pipeline, **deal_pipelines}


@pytest.mark.parametrize("kind", CASES)
def test_crud_delete_and_restore(api, pipelines, kind):
    create, change, model = CASES[kind]
    response = api.post(f"/{kind}", create)
    assert response.status_code == 201, response.content
    record = response.json()
    pk = record["id"]
    assert record["created_by"] is not None and record["custom"] == {}

    got = api.get(f"/{kind}/{pk}").json()
    assert got == record

    response = api.patch(f"/{kind}/{pk}", change)
    assert response.status_code == 200, response.content
    changed = response.json()
    for key, value in change.items():
        assert _same(changed[key], value), (key, changed[key], value)
    assert TimelineEntry.objects.filter(entity_id=pk, kind="updated").exists()

    assert pk in [r["id"] for r in api.get(f"/{kind}").json()["items"]]

    assert api.delete(f"/{kind}/{pk}").status_code == 204
    assert model.objects.get(pk=pk).deleted_at is not None  # soft
    assert api.get(f"/{kind}/{pk}").status_code == 404
    assert pk not in [r["id"] for r in api.get(f"/{kind}").json()["items"]]
    assert api.delete(f"/{kind}/{pk}").status_code == 404

    response = api.post(f"/{kind}/{pk}/restore")
    assert response.status_code == 200, response.content
    assert api.get(f"/{kind}/{pk}").status_code == 200


def test_lead_has_phones_emails_and_stage(api, lead_pipeline):
    lead = api.post("/leads", CASES["leads"][0]).json()
    assert lead["phones"] == [{"value": "8 (916) 123-45-67", "type": "mobile", "normalized": "+79161234567"}]
    assert lead["emails"][0]["normalized"] == "ivan@example.ru"
    assert lead["pipeline"] == lead_pipeline.pk and lead["stage_semantics"] == "process"
    assert lead["opportunity"] == "1500.50" and lead["responsible"] is not None


@pytest.mark.parametrize("kind", CASES)
def test_unknown_ids_are_404(api, pipelines, kind):
    for path in (f"/{kind}/999999", f"/{kind}/abc", f"/{kind}/0", f"/{kind}/{2**70}"):
        response = api.get(path)
        assert response.status_code == 404, (path, response.content)
        assert response.json()["code"] == "not_found"
    assert api.patch(f"/{kind}/999999", {}).status_code == 404
    assert api.post(f"/{kind}/999999/restore").status_code == 404


# --- bulk --------------------------------------------------------------------------------------------

def test_bulk_create_reports_each_item_and_writes_only_valid_ones(api, lead_pipeline):
    items = [{"title": "Первый", "phones": ["+79160000001"]},
             {"title": "x" * 300},
             {"phones": ["не телефон"]},
             {"title": "Второй", "stage": "assigned"},
             {"bogus": True},
             {"title": 5},
             "not an object"]
    response = api.post("/leads/bulk", {"items": items})
    assert response.status_code == 200, response.content
    results = response.json()["items"]
    assert [r["index"] for r in results] == list(range(len(items)))
    assert [r["ok"] for r in results] == [True, False, False, True, False, False, False]
    assert "title" in results[1]["error"]["fields"]
    assert "phones" in results[2]["error"]["fields"]
    assert "bogus" in results[4]["error"]["fields"]
    assert "title" in results[5]["error"]["fields"]
    ids = [r["id"] for r in results if r["ok"]]
    assert sorted(Lead.objects.values_list("id", flat=True)) == sorted(ids)
    assert Communication.objects.filter(entity_type_id=1).count() == 1
    assert StageHistory.objects.count() == 2
    assert Lead.objects.get(pk=ids[1]).stage.code == "assigned"


def test_bulk_limits(api, lead_pipeline, settings):
    response = api.post("/leads/bulk", {"items": [{"title": str(i)} for i in range(settings.VORONKA_BULK_MAX + 1)]})
    assert response.status_code == 422 and "items" in response.json()["fields"]
    assert api.post("/leads/bulk", {"items": []}).status_code == 422
    assert api.post("/leads/bulk", {"things": []}).status_code == 422
    assert Lead.objects.count() == 0


def test_bulk_update(api, lead_pipeline):
    ids = [r["id"] for r in api.post("/leads/bulk", {"items": [{"title": "a"}, {"title": "b"}]}).json()["items"]]
    response = api.patch("/leads/bulk", {"items": [
        {"id": ids[0], "title": "A", "phones": ["+79160000002"]},
        {"id": ids[1], "opportunity": "много"},
        {"title": "no id"},
        {"id": 999999, "title": "missing"},
        {"id": ids[1], "stage": "converted"},
    ]})
    assert response.status_code == 200, response.content
    results = response.json()["items"]
    assert [r["ok"] for r in results] == [True, False, False, False, True]
    assert "opportunity" in results[1]["error"]["fields"]
    assert "id" in results[2]["error"]["fields"]
    assert results[3]["error"]["code"] == "not_found"
    assert Lead.objects.get(pk=ids[0]).title == "A"
    second = Lead.objects.get(pk=ids[1])
    assert second.opportunity == 0 and second.stage.code == "converted" and second.closed_at is not None


# --- lists -------------------------------------------------------------------------------------------

def test_keyset_pagination_walks_every_record_once(api, lead_pipeline):
    api.post("/leads/bulk", {"items": [{"title": f"Лид {i:02d}", "opportunity": i % 7} for i in range(25)]})
    for order in ("-id", "id", "title", "-opportunity", "created_at"):
        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 10, "order": order, **({"cursor": cursor} if cursor else {})}
            response = api.get("/leads", **params)
            assert response.status_code == 200, response.content
            data = response.json()
            seen += data["items"]
            pages += 1
            cursor = data["next_cursor"]
            if not cursor:
                break
        assert pages == 3 and len(seen) == 25 and len({r["id"] for r in seen}) == 25, order
        if order == "title":
            assert [r["title"] for r in seen] == sorted(r["title"] for r in seen)
        if order == "-opportunity":
            values = [float(r["opportunity"]) for r in seen]
            assert values == sorted(values, reverse=True)


@pytest.mark.parametrize("params, field", [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "WzEsIDk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ"}, "cursor"),  # [1, 99…9]: an id beyond any column
    ({"order": "password"}, "order"),
    ({"limit": 0}, "limit"),
    ({"limit": 100000}, "limit"),
    ({"responsible": "me"}, "responsible"),
    ({"created_at_from": "вчера"}, "created_at_from"),
    ({"phone": "не телефон"}, "phone"),
    ({"email": "nobody@"}, "email"),
    ({"stage": "nope"}, "stage"),
    ({"custom.uf_nope": "1"}, "custom.uf_nope"),
    ({"search": "a\x00b"}, "search"),
])
def test_bad_list_parameters_are_400_naming_the_parameter(api, lead_pipeline, params, field):
    response = api.get("/leads", **params)
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"], response.json()


def test_list_queries_do_not_grow_with_the_page(api, lead_pipeline, django_assert_max_num_queries):
    api.post("/leads/bulk", {"items": [{"title": f"{i}", "phones": [f"+7916000{i:04d}"],
                                        "emails": [f"l{i}@example.ru"]} for i in range(3)]})
    api.get("/leads")  # the token's last use is written at most once a minute: not in the counts below
    with django_assert_max_num_queries(3):  # token, page, all phones and e-mails of the page
        small = api.get("/leads")
    api.post("/leads/bulk", {"items": [{"title": f"{i}", "phones": [f"+7916100{i:04d}"]} for i in range(40)]})
    with django_assert_max_num_queries(3):
        large = api.get("/leads", limit=50)
    assert len(small.json()["items"]) == 3 and len(large.json()["items"]) == 43
    assert all(item["phones"] for item in large.json()["items"])


@pytest.mark.parametrize("raw", ["8 (916) 123-45-67", "+7 916 1234567", "89161234567", "9161234567", "+7(916)123 45 67"])
def test_filter_by_phone_in_any_format(api, lead_pipeline, raw):
    wanted = api.post("/leads", {"title": "Нужный", "phones": ["+7 916 123-45-67"]}).json()["id"]
    api.post("/leads", {"title": "Другой", "phones": ["+7 916 765-43-21"]})
    assert [r["id"] for r in api.get("/leads", phone=raw).json()["items"]] == [wanted]


def test_filters_on_main_fields(api, admin, manager_user, lead_pipeline):
    a = api.post("/leads", {"title": "Фильтры масляные", "source": "site", "emails": ["Buyer@Example.ru"]}).json()
    b = api.post("/leads", {"title": "Свечи", "source": "call", "stage": "assigned",
                            "responsible": manager_user.pk}).json()
    Lead.objects.filter(pk=a["id"]).update(created_at=timezone.now() - datetime.timedelta(days=10))

    def ids(**params):
        response = api.get("/leads", **params)
        assert response.status_code == 200, response.content
        return sorted(r["id"] for r in response.json()["items"])

    assert ids(source="site") == [a["id"]]
    assert ids(stage="assigned") == [b["id"]] == ids(stage=str(b["stage"]))
    assert ids(pipeline="leads") == sorted([a["id"], b["id"]]) == ids(pipeline=str(lead_pipeline.pk))
    assert ids(responsible=manager_user.pk) == [b["id"]]
    assert ids(search="масл") == [a["id"]]
    assert ids(email="buyer@EXAMPLE.ru") == [a["id"]]
    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert ids(created_at_from=since) == [b["id"]]
    assert ids(created_at_to=since) == [a["id"]]
    assert ids(source="site", stage="assigned") == []


def test_filters_on_custom_fields(api, admin, lead_pipeline):
    from voronka.customfields.actions import define_field

    define_field(admin, entity_type_id=1, code="uf_budget", label="Бюджет", kind="integer")
    define_field(admin, entity_type_id=1, code="uf_vip", label="VIP", kind="boolean")
    define_field(admin, entity_type_id=1, code="uf_car", label="Марка", kind="enum",
                 options={"choices": [{"id": "kia", "label": "Kia"}, {"id": "lada", "label": "Lada"}]})
    a = api.post("/leads", {"title": "a", "custom": {"uf_budget": 100, "uf_vip": True, "uf_car": "kia"}}).json()
    b = api.post("/leads", {"title": "b", "custom": {"uf_budget": "200", "uf_vip": "no", "uf_car": "lada"}}).json()
    assert a["custom"] == {"uf_budget": 100, "uf_vip": True, "uf_car": "kia"}

    def ids(**params):
        response = api.get("/leads", **params)
        assert response.status_code == 200, response.content
        return [r["id"] for r in response.json()["items"]]

    assert ids(**{"custom.uf_budget": "200"}) == [b["id"]]
    assert ids(**{"custom.uf_vip": "true"}) == [a["id"]]
    assert ids(**{"custom.uf_car": "kia", "custom.uf_budget": "100"}) == [a["id"]]
    assert ids(**{"custom.uf_car": "kia", "custom.uf_budget": "200"}) == []
    response = api.get("/leads", **{"custom.uf_budget": "много"})
    assert response.status_code == 400 and "custom.uf_budget" in response.json()["fields"]


# --- stages, conversion, repeat sales ------------------------------------------------------------

def test_move_refused_without_required_fields_then_completed(api, lead_pipeline):
    lead = api.post("/leads", {"title": "Без телефона"}).json()
    history = StageHistory.objects.count()
    response = api.post(f"/leads/{lead['id']}/move", {"stage": "qualified"})
    assert response.status_code == 422 and "phones" in response.json()["fields"]
    assert Lead.objects.get(pk=lead["id"]).stage.code == "new" and StageHistory.objects.count() == history

    response = api.post(f"/leads/{lead['id']}/move", {"stage": "qualified", "fields": {"phones": ["+79165554433"]}})
    assert response.status_code == 200, response.content
    moved = response.json()
    assert moved["stage"] == lead_pipeline.stages.get(code="qualified").pk
    assert moved["phones"][0]["normalized"] == "+79165554433"
    assert StageHistory.objects.count() == history + 1
    back = api.post(f"/leads/{lead['id']}/move", {"stage": "new"})  # moving back is allowed
    assert back.status_code == 200 and back.json()["stage"] == lead_pipeline.stages.get(code="new").pk


def test_deal_moves_between_pipelines_only_with_the_pipeline(api, deal_pipelines):
    deal = api.post("/deals", {"title": "Сделка"}).json()
    offer = deal_pipelines["repeat"].stages.get(code="offer")
    for body in ({"stage": "offer"}, {"stage": offer.pk}):
        response = api.post(f"/deals/{deal['id']}/move", body)
        assert response.status_code == 422 and "stage" in response.json()["fields"], response.content
    response = api.post(f"/deals/{deal['id']}/move", {"stage": "invoice"})
    assert response.status_code == 422 and "opportunity" in response.json()["fields"]
    response = api.post(f"/deals/{deal['id']}/move", {"stage": "offer", "pipeline": "repeat"})
    assert response.status_code == 200, response.content
    assert response.json()["pipeline"] == deal_pipelines["repeat"].pk


def test_convert_lead(api, lead_pipeline, deal_pipelines):
    lead = api.post("/leads", {"title": "Конверсия", "first_name": "Олег", "company_name": "ООО Вектор",
                               "phones": ["+79161112233"], "opportunity": 5000}).json()
    api.post(f"/leads/{lead['id']}/comments", {"text": "Хочет скидку"})
    response = api.post(f"/leads/{lead['id']}/convert", {})
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["lead"]["converted_at"] and result["lead"]["stage_semantics"] == "success"
    assert result["contact"]["phones"][0]["normalized"] == "+79161112233"
    assert result["company"]["name"] == "ООО Вектор"
    assert result["deal"]["opportunity"] == "5000.00" and result["deal"]["lead"] == lead["id"]
    timeline = api.get(f"/deals/{result['deal']['id']}/timeline").json()["items"]
    assert any(e["kind"] == "comment" and e["text"] == "Хочет скидку" for e in timeline)  # the lead's history came along
    response = api.post(f"/leads/{lead['id']}/convert", {})
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert api.post(f"/leads/{lead['id']}/convert", {"create_deal": "sometimes"}).status_code == 422


def test_repeat_deal(api, deal_pipelines):
    contact = api.post("/contacts", {"first_name": "Постоянный"}).json()
    response = api.post("/deals/repeat", {"contact": contact["id"], "opportunity": 700})
    assert response.status_code == 201, response.content
    deal = response.json()
    assert deal["is_repeat"] and deal["pipeline"] == deal_pipelines["repeat"].pk and deal["contact"] == contact["id"]
    count = Deal.objects.count()
    response = api.post("/deals/repeat", {"title": "Ни с кем"})
    assert response.status_code == 422 and "contact" in response.json()["fields"]
    response = api.post("/deals/repeat", {"contact": 999999})
    assert response.status_code == 422 and "contact" in response.json()["fields"]
    assert Deal.objects.count() == count


# --- timeline and comments -----------------------------------------------------------------------------

def test_comments_and_timeline_pages(api, lead_pipeline):
    lead = api.post("/leads", {"title": "С историей"}).json()
    for i in range(5):
        response = api.post(f"/leads/{lead['id']}/comments", {"text": f"Комментарий {i}"})
        assert response.status_code == 201, response.content
    assert response.json()["kind"] == "comment" and response.json()["entry_point"] == "api"
    first = api.get(f"/leads/{lead['id']}/timeline", limit=4).json()
    assert len(first["items"]) == 4 and first["next_before"]
    rest = api.get(f"/leads/{lead['id']}/timeline", limit=4, before=first["next_before"]).json()
    assert len(rest["items"]) == 2 and rest["next_before"] is None  # 5 comments + "created"
    for body in ({"text": ""}, {"text": "   "}, {"text": "x" * 20001}, {}, {"text": "a", "extra": 1}):
        response = api.post(f"/leads/{lead['id']}/comments", body)
        assert response.status_code == 422, (body, response.content)
    assert api.post("/leads/999999/comments", {"text": "a"}).status_code == 404
    assert TimelineEntry.objects.filter(kind="comment").count() == 5


def test_messengers_and_websites(api, lead_pipeline, deal_pipelines):
    lead = api.post("/leads", {"title": "Из Telegram", "messengers": [
        {"value": "@Ivanov", "type": "telegram"}, {"value": "+7 916 555-44-33", "type": "whatsapp"}],
        "websites": ["ivanov.ru"]})
    assert lead.status_code == 201, lead.content
    lead = lead.json()
    assert lead["messengers"] == [{"value": "@Ivanov", "type": "telegram", "normalized": "ivanov"},
                                  {"value": "+7 916 555-44-33", "type": "whatsapp", "normalized": "+79165554433"}]
    assert lead["websites"] == [{"value": "ivanov.ru", "type": "work", "normalized": "ivanov.ru"}]
    assert api.get(f"/leads/{lead['id']}").json()["messengers"][0]["value"] == "@Ivanov"
    for params in ({"messenger": "t.me/ivanov"}, {"messenger": "89165554433"}, {"website": "https://www.ivanov.ru/"}):
        assert [r["id"] for r in api.get("/leads", **params).json()["items"]] == [lead["id"]], params
    assert api.get("/leads", messenger="@petrov").json()["items"] == []
    bad = api.patch(f"/leads/{lead['id']}", {"messengers": [{"value": "@x", "type": "fax"}]})
    assert bad.status_code == 422 and "messengers" in bad.json()["fields"]
    bad = api.patch(f"/leads/{lead['id']}", {"websites": ["not a site"]})
    assert bad.status_code == 422 and "websites" in bad.json()["fields"]
    timeline = api.get(f"/leads/{lead['id']}/timeline").json()["items"]
    api.patch(f"/leads/{lead['id']}", {"messengers": [{"value": "@ivanov", "type": "telegram"}]})
    timeline = api.get(f"/leads/{lead['id']}/timeline").json()["items"]
    assert any("messengers" in e["changes"] for e in timeline)
    converted = api.post(f"/leads/{lead['id']}/convert", {"create_company": False}).json()
    assert [m["value"] for m in converted["contact"]["messengers"]] == ["@ivanov"]  # came along to the contact
    assert [w["value"] for w in converted["contact"]["websites"]] == ["ivanov.ru"]


def test_a_company_site_is_its_first_website(api):
    company = api.post("/companies", {"name": "Ромашка", "site": "https://romashka.ru"}).json()
    assert [w["value"] for w in company["websites"]] == ["https://romashka.ru"]
    company = api.patch(f"/companies/{company['id']}", {"websites": [
        "romashka.ru", {"value": "vk.com/romashka", "type": "vk"}]}).json()
    assert company["site"] == "romashka.ru"
    company = api.patch(f"/companies/{company['id']}", {"site": "https://new-romashka.ru"}).json()
    assert [w["value"] for w in company["websites"]] == ["https://new-romashka.ru", "vk.com/romashka"]
    assert company["websites"][1]["type"] == "vk"
    company = api.patch(f"/companies/{company['id']}", {"site": ""}).json()
    assert [w["value"] for w in company["websites"]] == ["vk.com/romashka"]
    assert company["site"] == "vk.com/romashka"  # clearing the site removes the first address; the next one moves up
    company = api.patch(f"/companies/{company['id']}", {"websites": []}).json()
    assert company["site"] == "" and company["websites"] == []
