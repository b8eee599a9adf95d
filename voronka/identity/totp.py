"""Time-based one-time passwords (RFC 6238, SHA-1, 30 s, 6 digits): the optional second factor."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

STEP = 30
DIGITS = 6


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def code_at(secret: str, counter: int) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def verify(secret: str, code: str, *, now: float | None = None, window: int = 1) -> bool:
    if not secret or not code or not code.strip().isdigit():
        return False
    counter = int((now if now is not None else time.time()) // STEP)
    return any(hmac.compare_digest(code_at(secret, counter + d), code.strip()) for d in range(-window, window + 1))


def provisioning_uri(secret: str, account: str, issuer: str = "Voronka") -> str:
    return f"otpauth://totp/{quote(issuer)}:{quote(account)}?secret={secret}&issuer={quote(issuer)}"
