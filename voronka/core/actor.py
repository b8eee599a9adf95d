"""Who is doing something: a user, an API token acting for its user, or the system.

Every action takes an ``Actor`` as its first argument. The actor carries the entry
point (ui, api, cli, b24, intake, automation …) and, for the system, the cause
(e.g. ``robot:12``), so that history says who did what, through which door and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    kind: str  # "user" | "token" | "system"
    user: Any = None  # identity.User or None for the bare system
    entry_point: str = "internal"
    token_id: int | None = None
    cause: str = ""  # e.g. "robot:12", "process:7"
    scopes: frozenset[str] = field(default_factory=frozenset)
    depth: int = 0  # how many rule-caused hops led here
    ip: str = ""

    @classmethod
    def for_user(cls, user, entry_point: str = "ui") -> Actor:
        return cls(kind="user", user=user, entry_point=entry_point)

    @classmethod
    def for_token(cls, token, entry_point: str = "api") -> Actor:
        return cls(kind="token", user=token.user, entry_point=entry_point, token_id=token.pk,
                   scopes=frozenset(token.scopes or ()))

    @classmethod
    def system(cls, cause: str = "", entry_point: str = "system", on_behalf_of=None, depth: int = 0) -> Actor:
        return cls(kind="system", user=on_behalf_of, entry_point=entry_point, cause=cause, depth=depth)

    @property
    def user_id(self) -> int | None:
        return getattr(self.user, "pk", None)

    @property
    def is_system(self) -> bool:
        return self.kind == "system"

    @property
    def label(self) -> str:
        if self.kind == "system":
            return f"system:{self.cause}" if self.cause else "system"
        name = self.user.get_full_name() if self.user is not None else ""
        return name or getattr(self.user, "username", "") or "?"
