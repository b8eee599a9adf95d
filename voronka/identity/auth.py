"""Sign-in: rate limiting of password guesses and the optional TOTP second factor."""

from __future__ import annotations

import datetime

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from voronka.core.clientip import client_ip

from .models import LoginAttempt
from .totp import verify

WINDOW = datetime.timedelta(minutes=15)
MAX_FAILURES_PER_USER = 5
MAX_FAILURES_PER_IP = 30


def is_locked(username: str, ip: str) -> bool:
    since = timezone.now() - WINDOW
    failures = LoginAttempt.objects.filter(at__gte=since, success=False)
    if username and failures.filter(username=username).count() >= MAX_FAILURES_PER_USER:
        return True
    return bool(ip) and failures.filter(ip=ip).count() >= MAX_FAILURES_PER_IP


class RateLimitedBackend(ModelBackend):
    """The model backend, refusing while an account or address is locked, and asking for the second
    factor of users who set one up (pass it as ``otp``)."""

    def authenticate(self, request, username=None, password=None, otp=None, **kwargs):
        ip = client_ip(request)
        name = (username or kwargs.get("email") or "")[:150]
        if is_locked(name, ip):
            LoginAttempt.objects.create(username=name, ip=ip, success=False)
            raise PermissionDenied("too many attempts")  # stops the backend chain: no further guessing
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is not None and user.totp_secret and not verify(user.totp_secret, otp or ""):
            user = None
        LoginAttempt.objects.create(username=name, ip=ip, success=user is not None)
        return user
