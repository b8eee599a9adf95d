"""SQLite's LIKE folds the case of ASCII letters only, so «менедж» would not find «Менеджеров».

On every new SQLite connection we replace LIKE with a function that folds case the way Python does
(all of Unicode). PostgreSQL needs nothing: Django's icontains uses UPPER(), which is Unicode-aware.
The replacement cannot use an index, but neither could ``LIKE '%…%'``.
"""

from __future__ import annotations

import functools
import re


@functools.lru_cache(maxsize=512)
def _pattern(pattern: str, escape: str | None) -> re.Pattern:
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if escape and ch == escape and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | re.IGNORECASE)


def like(pattern, value, escape=None):
    if pattern is None or value is None:
        return None
    return 1 if _pattern(str(pattern), escape).fullmatch(str(value)) else 0


def install(sender, connection, **kwargs) -> None:
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    raw.create_function("like", 2, like, deterministic=True)
    raw.create_function("like", 3, like, deterministic=True)
