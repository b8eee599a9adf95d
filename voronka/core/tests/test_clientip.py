"""The client's address behind reverse proxies (``voronka/core/clientip.py``)."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from voronka.core.clientip import client_ip


def ask(xff: str | None = None, remote: str = "127.0.0.1"):
    extra = {"REMOTE_ADDR": remote}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return client_ip(RequestFactory().get("/", **extra))


def test_without_trusted_proxies_the_header_is_never_believed(settings):
    settings.VORONKA_TRUSTED_PROXIES = 0
    assert ask("203.0.113.7") == "127.0.0.1"
    assert ask() == "127.0.0.1"
    assert client_ip(None) == ""


@pytest.mark.parametrize(("hops", "xff", "expected"), [
    (1, "203.0.113.7", "203.0.113.7"),  # nginx appended the address it saw
    (1, "10.9.9.9, 203.0.113.7", "203.0.113.7"),  # what the client sent itself comes first and is ignored
    (2, "6.6.6.6, 203.0.113.7, 198.51.100.2", "203.0.113.7"),  # a CDN, then nginx
    (2, "203.0.113.7", "203.0.113.7"),  # the request skipped the outer proxy
    (1, "2001:db8::1", "2001:db8::1"),
    (1, "not-an-address", "127.0.0.1"),  # a broken header: the connection's own address
    (1, "", "127.0.0.1"),
])
def test_behind_trusted_proxies_the_entry_they_appended(settings, hops, xff, expected):
    settings.VORONKA_TRUSTED_PROXIES = hops
    assert ask(xff) == expected
