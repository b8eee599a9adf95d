"""Fixtures of the API tests: a JSON client with a token, and the data most tests need."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from voronka.identity.models import ApiToken

BASE = "/api/v1"


class ApiClient:
    """Django's test client speaking JSON to /api/v1 with one set of headers."""

    def __init__(self, headers: dict | None = None):
        self.client = Client(headers=headers or {})

    def _send(self, method: str, path: str, data=None, raw: str | bytes | None = None, **params):
        url = path if path.startswith("/") and path.startswith(BASE) else f"{BASE}{path}"
        if method == "get":
            return self.client.get(url, data=params or data)
        payload = raw if raw is not None else (json.dumps(data) if data is not None else "")
        return getattr(self.client, method)(url, data=payload, content_type="application/json")

    def get(self, path, data=None, **params):
        return self._send("get", path, data, **params)

    def post(self, path, data=None, raw=None):
        return self._send("post", path, data, raw)

    def patch(self, path, data=None, raw=None):
        return self._send("patch", path, data, raw)

    def put(self, path, data=None, raw=None):
        return self._send("put", path, data, raw)

    def delete(self, path):
        return self._send("delete", path)


def bearer(raw: str) -> ApiClient:
    return ApiClient({"Authorization": f"Bearer {raw}"})


@pytest.fixture
def admin_token(admin_user) -> str:
    return ApiToken.issue(admin_user, name="tests")[1]


@pytest.fixture
def api(admin_token) -> ApiClient:
    return bearer(admin_token)


@pytest.fixture
def manager_api(manager_user) -> ApiClient:
    return bearer(ApiToken.issue(manager_user, name="tests")[1])


@pytest.fixture
def anonymous() -> ApiClient:
    return ApiClient()
