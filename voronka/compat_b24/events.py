"""Event handlers (``event.bind``) and the outgoing notices."""

WATCHED_PREFIXES = ("lead.", "deal.", "contact.", "company.")


def on_outbox_event(event) -> None:
    return None


def deliver_due() -> int:
    return 0
