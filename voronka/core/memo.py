"""Answers kept for the length of one read-only piece of work (a report, a dashboard of eleven reports).

Reports ask the same small questions many times («are the read models built? are the stages as the rows were
computed with? which stages are won?»): inside ``scope()`` each answer is computed once and reused; outside a scope
``memo`` computes every time. Only reads that nothing in the scope changes belong here: the scopes are opened
around report building, which writes nothing (a nested scope shares the outer one's answers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

_state = threading.local()


@contextmanager
def scope() -> Iterator[None]:
    if getattr(_state, "answers", None) is not None:
        yield
        return
    _state.answers = {}
    try:
        yield
    finally:
        _state.answers = None


def memo(key: Hashable, compute: Callable[[], Any]) -> Any:
    answers = getattr(_state, "answers", None)
    if answers is None:
        return compute()
    if key not in answers:
        answers[key] = compute()
    return answers[key]
