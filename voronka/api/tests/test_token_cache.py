"""API tokens are kept per process behind the «tokens» and «rights» versions, read once per request together with
the settings version: a cached token costs no query, and revoking it (here or in another process) or changing its
user takes effect on the very next request."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from voronka.core import config_cache
from voronka.core.actor import Actor
from voronka.identity import models as identity_models
from voronka.identity.actions import revoke_token, update_user
from voronka.identity.models import ApiToken
from voronka.leads.models import Lead

from .conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_tokens_kept():
    identity_models.forget_tokens()
    yield
    identity_models.forget_tokens()


def _statements(client, method: str, path: str, data=None) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(client, method)(path, data)
    return response.status_code, [q["sql"] for q in ctx.captured_queries]


def _token_reads(sqls: list[str]) -> int:
    return sum(1 for s in sqls if "identity_apitoken" in s and s.lstrip().upper().startswith("SELECT"))


def _version_reads(sqls: list[str]) -> int:
    return sum(1 for s in sqls if "core_configversion" in s and s.lstrip().upper().startswith("SELECT"))


def test_a_known_token_costs_no_query_and_the_versions_are_read_once(admin_user, lead_pipeline):
    client = bearer(ApiToken.issue(admin_user)[1])
    status, first = _statements(client, "get", "/leads")
    assert status == 200 and _token_reads(first) == 1
    status, sqls = _statements(client, "post", "/leads", {"title": "Кэш", "phones": ["+79161234567"]})
    assert status == 201
    assert _token_reads(sqls) == 0
    assert _version_reads(sqls) == 1  # token, rights and settings checked against one read


def test_a_manager_create_reads_the_versions_once(manager_user, lead_pipeline):
    client = bearer(ApiToken.issue(manager_user)[1])
    assert client.post("/leads", {"title": "Прогрев"}).status_code == 201
    status, sqls = _statements(client, "post", "/leads", {"title": "Второй"})
    assert status == 201
    assert _token_reads(sqls) == 0 and _version_reads(sqls) == 1  # the rights come from the same read


def test_revoking_through_the_action_refuses_the_next_request(admin_user, admin, lead_pipeline):
    token, raw = ApiToken.issue(admin_user)
    client = bearer(raw)
    assert client.get("/leads").status_code == 200
    revoke_token(admin, token.pk)
    response = client.post("/leads", {"title": "После отзыва"})
    assert response.status_code == 401 and response.json()["code"] == "invalid_token"
    assert not Lead.objects.filter(title="После отзыва").exists()


def test_a_revocation_by_another_process_is_seen_by_the_next_request(admin_user, lead_pipeline):
    token, raw = ApiToken.issue(admin_user)
    client = bearer(raw)
    assert client.get("/leads").status_code == 200
    # another process revokes: it writes the row and bumps the version, but cannot clear this process's memory
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert client.get("/leads").status_code == 200  # not told yet: the version is unchanged
    config_cache.bump(config_cache.TOKENS)
    assert client.get("/leads").status_code == 401


def test_a_change_in_the_admin_or_the_shell_is_seen_by_the_next_request(admin_user, lead_pipeline):
    token, raw = ApiToken.issue(admin_user)
    client = bearer(raw)
    assert client.get("/leads").status_code == 200
    token.expires_at = timezone.now() - datetime.timedelta(seconds=1)
    token.save()  # as the admin site does: the model's save tells every process
    assert client.get("/leads").status_code == 401


def test_deactivating_the_user_refuses_his_cached_token(admin, manager_user, lead_pipeline):
    client = bearer(ApiToken.issue(manager_user)[1])
    assert client.get("/leads").status_code == 200
    update_user(admin, manager_user.pk, is_active=False)
    assert client.get("/leads").status_code == 401


def test_deactivating_the_user_by_a_plain_save_refuses_his_cached_token(manager_user, lead_pipeline):
    client = bearer(ApiToken.issue(manager_user)[1])
    assert client.get("/leads").status_code == 200
    manager_user.is_active = False
    manager_user.save()
    assert client.get("/leads").status_code == 401


def test_a_renamed_user_is_named_in_the_next_requests_history(manager_user, lead_pipeline):
    client = bearer(ApiToken.issue(manager_user)[1])
    assert client.post("/leads", {"title": "До"}).status_code == 201
    manager_user.first_name = "Павел"
    manager_user.save(update_fields=["first_name"])  # the account page does this
    lead_id = client.post("/leads", {"title": "После"}).json()["id"]
    entry = client.get(f"/leads/{lead_id}/timeline").json()["items"][-1]
    assert entry["actor_label"].startswith("Павел")


def test_raw_sql_changes_are_seen_after_the_ttl(admin_user, lead_pipeline, monkeypatch):
    token, raw = ApiToken.issue(admin_user)
    client = bearer(raw)
    assert client.get("/leads").status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())  # no version bump at all
    monkeypatch.setattr(identity_models, "TOKEN_TTL", 0.0)
    assert client.get("/leads").status_code == 401


def test_a_wrong_secret_with_a_cached_prefix_is_refused(admin_user, lead_pipeline):
    _, raw = ApiToken.issue(admin_user)
    assert bearer(raw).get("/leads").status_code == 200
    forged = raw[:-4] + ("aaaa" if not raw.endswith("aaaa") else "bbbb")
    assert bearer(forged).get("/leads").status_code == 401


def test_last_use_is_recorded_once_a_minute_with_a_cached_token(admin_user, lead_pipeline):
    token, raw = ApiToken.issue(admin_user)
    client = bearer(raw)
    assert client.get("/leads").status_code == 200
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first is not None
    _, sqls = _statements(client, "get", "/leads")
    assert not any("UPDATE" in s and "identity_apitoken" in s for s in sqls)  # the cached row knows the last use
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - datetime.timedelta(minutes=5))
    identity_models.forget_tokens()
    _, sqls = _statements(client, "get", "/leads")
    assert sum(1 for s in sqls if "UPDATE" in s and "identity_apitoken" in s) == 1


def test_outside_a_request_every_call_reads_the_versions(admin_user, lead_pipeline, django_assert_num_queries):
    from voronka.leads.actions import create_lead

    actor = Actor.for_user(admin_user, "test")
    create_lead(actor, title="Прогрев")
    with CaptureQueriesContext(connection) as ctx:
        create_lead(actor, title="Без запроса")
    assert _version_reads([q["sql"] for q in ctx.captured_queries]) == 1
    with config_cache.request_scope():
        config_cache.versions()
        with django_assert_num_queries(0):
            config_cache.versions()
        config_cache.bump(config_cache.KEY)  # a change made in this request clears the snapshot
        with django_assert_num_queries(1):
            config_cache.versions()
