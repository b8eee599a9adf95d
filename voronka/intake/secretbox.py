"""Mailbox passwords at rest: encrypted with a key derived from the installation's secret key.

Stored values look like ``fernet:<token>`` (Fernet: AES-128-CBC with an HMAC-SHA256, from ``cryptography``);
the key is HKDF-SHA256 of ``SECRET_KEY``. A value without the prefix is a password stored before encryption
(read as it is; the migration encrypts those). If the secret key changes, stored passwords can no longer be
read: the mailbox says so and the password has to be entered again.
"""

from __future__ import annotations

import base64

from django.conf import settings
from django.utils.translation import gettext as _

PREFIX = "fernet:"


class CannotDecrypt(ValueError):
    pass


def _fernet():
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"voronka mailbox passwords") \
        .derive(str(settings.SECRET_KEY).encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(password: str) -> str:
    """The stored form of a password ("" stays "")."""
    if not password:
        return ""
    return PREFIX + _fernet().encrypt(password.encode()).decode()


def is_sealed(value: str) -> bool:
    return bool(value) and value.startswith(PREFIX)


def reveal(value: str) -> str:
    """The password of a stored value (a value stored before encryption is returned as it is)."""
    from cryptography.fernet import InvalidToken

    if not is_sealed(value):
        return value or ""
    try:
        return _fernet().decrypt(value.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise CannotDecrypt(_("The stored password cannot be read (the secret key has changed): enter it again.")) \
            from None
