"""Who may call the API: tokens (Bearer, X-Api-Key), their scopes and lifetimes, and browser sessions."""

from __future__ import annotations

import datetime

import pytest
from django.test import Client
from django.utils import timezone

from voronka.core.models import TimelineEntry
from voronka.identity.models import ApiToken
from voronka.leads.models import Lead

from .conftest import ApiClient, bearer

pytestmark = pytest.mark.django_db


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"code", "message", "fields"} and data["message"]
    if code:
        assert data["code"] == code, data
    return data


def test_no_token_is_401_with_a_challenge(anonymous, lead_pipeline):
    response = anonymous.get("/leads")
    _assert_error(response, 401, "unauthorized")
    assert response["WWW-Authenticate"].startswith("Bearer")
    _assert_error(anonymous.post("/leads", {"title": "x"}), 401, "unauthorized")  # not a CSRF 403
    assert Lead.objects.count() == 0


@pytest.mark.parametrize("raw", ["nonsense", "vk_deadbeef00_wrong", "vk__", "Bearer"])
def test_bad_token_is_401(raw, lead_pipeline):
    _assert_error(bearer(raw).get("/leads"), 401)
    _assert_error(ApiClient({"X-Api-Key": raw}).post("/leads", {"title": "x"}), 401)
    assert Lead.objects.count() == 0


def test_revoked_expired_and_inactive_tokens_are_401(admin_user, manager_user, lead_pipeline):
    revoked, raw_revoked = ApiToken.issue(admin_user)
    ApiToken.objects.filter(pk=revoked.pk).update(revoked_at=timezone.now())
    _, raw_expired = ApiToken.issue(admin_user, expires_at=timezone.now() - datetime.timedelta(seconds=1))
    _, raw_inactive = ApiToken.issue(manager_user)
    manager_user.is_active = False
    manager_user.save(update_fields=["is_active"])
    for raw in (raw_revoked, raw_expired, raw_inactive):
        _assert_error(bearer(raw).get("/leads"), 401, "invalid_token")
        _assert_error(bearer(raw).post("/leads", {"title": "x"}), 401, "invalid_token")
    assert Lead.objects.count() == 0


def test_token_in_x_api_key_header_works_and_history_names_the_api(admin_token, lead_pipeline):
    client = ApiClient({"X-Api-Key": admin_token})
    response = client.post("/leads", {"title": "Через ключ"})
    assert response.status_code == 201, response.content
    entry = TimelineEntry.objects.get(entity_type_id=1, entity_id=response.json()["id"], kind="created")
    assert (entry.actor_kind, entry.entry_point) == ("token", "api")
    assert client.get(f"/leads/{response.json()['id']}").status_code == 200


def test_read_only_token_reads_but_never_writes(admin_user, lead_pipeline, admin):
    from voronka.leads.actions import create_lead

    lead = create_lead(admin, title="Есть")
    client = bearer(ApiToken.issue(admin_user, scopes=["read"])[1])
    assert client.get("/leads").status_code == 200
    assert client.get(f"/leads/{lead.pk}").status_code == 200
    before = (Lead.objects.count(), TimelineEntry.objects.count())
    for response in (client.post("/leads", {"title": "x"}), client.patch(f"/leads/{lead.pk}", {"title": "y"}),
                     client.delete(f"/leads/{lead.pk}"), client.post("/leads/bulk", {"items": [{"title": "z"}]}),
                     client.post(f"/leads/{lead.pk}/comments", {"text": "nope"}),
                     client.post("/tasks", {"title": "nope"})):
        _assert_error(response, 403, "forbidden_scope")
    assert (Lead.objects.count(), TimelineEntry.objects.count()) == before
    lead.refresh_from_db()
    assert lead.title == "Есть" and lead.deleted_at is None


def test_write_only_token_cannot_read(admin_user, lead_pipeline):
    client = bearer(ApiToken.issue(admin_user, scopes=["write"])[1])
    _assert_error(client.get("/leads"), 403, "forbidden_scope")
    assert client.post("/leads", {"title": "x"}).status_code == 201


def test_the_users_rights_apply_through_the_api(manager_api, lead_pipeline):
    """A manager may create leads but not delete them: 403, and nothing changes."""
    response = manager_api.post("/leads", {"title": "Свой"})
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    _assert_error(manager_api.delete(f"/leads/{pk}"), 403)
    assert Lead.objects.get(pk=pk).deleted_at is None


def test_session_auth_needs_csrf_for_changes(admin_user, lead_pipeline):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.get("/api/v1/leads").status_code == 200
    response = client.post("/api/v1/leads", data='{"title": "x"}', content_type="application/json")
    _assert_error(response, 403, "csrf_failed")
    assert Lead.objects.count() == 0
    secret = "a1" * 16  # what the UI sends: the csrftoken cookie and the same secret in the header
    client.cookies["csrftoken"] = secret
    response = client.post("/api/v1/leads", data='{"title": "x"}', content_type="application/json",
                           headers={"X-CSRFToken": secret})
    assert response.status_code == 201, response.content
    entry = TimelineEntry.objects.get(entity_type_id=1, entity_id=response.json()["id"], kind="created")
    assert (entry.actor_kind, entry.entry_point) == ("user", "api")


def test_openapi_and_docs_are_public_and_document_every_error(anonymous):
    response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert {"BearerToken", "HeaderToken", "Session"} <= set(schema["components"]["securitySchemes"])
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            assert {"400", "401", "403", "404", "409", "422"} <= documented, (method, path, documented)
    assert anonymous.get("/docs").status_code == 200


def test_unknown_address_and_method_are_json(api):
    _assert_error(api.get("/nowhere/at/all"), 404, "not_found")
    response = api.put("/leads", {})
    _assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


@pytest.fixture
def role_engine():
    from voronka.core import policies
    from voronka.identity.permissions import RoleEngine

    previous = policies._engine
    policies.install(RoleEngine())
    yield
    policies.install(previous)


def test_records_out_of_sight_are_404_and_missing_from_lists(role_engine, api, manager_api, admin, manager_user,
                                                            lead_pipeline):
    """With roles switched on, a sales manager sees own leads only: another's lead is not found, not forbidden."""
    theirs = api.post("/leads", {"title": "Чужой", "responsible": admin.user_id}).json()
    own = api.post("/leads", {"title": "Свой", "responsible": manager_user.pk}).json()
    assert [r["id"] for r in manager_api.get("/leads").json()["items"]] == [own["id"]]
    for response in (manager_api.get(f"/leads/{theirs['id']}"), manager_api.patch(f"/leads/{theirs['id']}", {"title": "x"}),
                     manager_api.get(f"/leads/{theirs['id']}/timeline"),
                     manager_api.post(f"/leads/{theirs['id']}/comments", {"text": "x"})):
        _assert_error(response, 404, "not_found")
    assert manager_api.get(f"/leads/{own['id']}").status_code == 200
    assert Lead.objects.get(pk=theirs["id"]).title == "Чужой"


def test_listing_past_the_threshold_needs_the_export_right(client, admin, manager_user, lead_pipeline, settings):
    """Page after page is an export once it goes past VORONKA_EXPORT_THRESHOLD rows."""
    from voronka.core.actor import Actor
    from voronka.core.models import AuditEvent
    from voronka.identity.models import ApiToken
    from voronka.leads.actions import create_leads

    settings.VORONKA_EXPORT_THRESHOLD = 5
    create_leads(Actor.for_user(manager_user, "test"), [{"title": f"L{i}"} for i in range(12)])
    _token, manager_raw = ApiToken.issue(manager_user)
    _token, admin_raw = ApiToken.issue(admin.user)

    def walk(raw):
        statuses, cursor = [], None
        for _ in range(5):
            response = client.get("/api/v1/leads", {"limit": 4, **({"cursor": cursor} if cursor else {})},
                                  HTTP_AUTHORIZATION=f"Bearer {raw}")
            statuses.append(response.status_code)
            if response.status_code != 200:
                return statuses, response.json()
            cursor = response.json()["next_cursor"]
            if not cursor:
                break
        return statuses, None

    statuses, error = walk(manager_raw)
    assert statuses == [200, 403] and error["code"] == "forbidden_export"
    statuses, error = walk(admin_raw)
    assert statuses == [200, 200, 200] and error is None
    assert AuditEvent.objects.filter(action="records.listed_past_threshold", actor_user_id=admin.user_id).count() == 1
