"""The address a request came from: the login lockout, the web forms' rate limit, the webhooks' and API tokens'
logs all count by it.

Behind a reverse proxy (``docs/deploy.md``: nginx on the same machine) every request arrives from the proxy's own
address, so ``REMOTE_ADDR`` alone would put every visitor under one rate limit and let one guesser lock everybody
out of the login. ``VORONKA_TRUSTED_PROXIES`` says how many proxies stand in front of Voronka; each appends the
address it saw to ``X-Forwarded-For``, so the client is the entry that many places from the end (the entries
before it are whatever the client sent, and are never believed). With none configured (the default) the header is
ignored: a client cannot pick his own address by sending it.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings

MAX_LENGTH = 45  # an IPv6 address with an embedded IPv4 one


def client_ip(request) -> str:
    if request is None:
        return ""
    remote = (request.META.get("REMOTE_ADDR") or "")[:MAX_LENGTH]
    hops = getattr(settings, "VORONKA_TRUSTED_PROXIES", 0)
    if not hops:
        return remote
    forwarded = [part.strip() for part in (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",") if part.strip()]
    if not forwarded:
        return remote
    # fewer entries than proxies: the request skipped the outer ones, and the first entry is what the inner one saw
    candidate = forwarded[-hops] if len(forwarded) >= hops else forwarded[0]
    try:
        return str(ipaddress.ip_address(candidate))[:MAX_LENGTH]
    except ValueError:  # not an address (a misconfigured proxy): the connection's own
        return remote
