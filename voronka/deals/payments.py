"""«Payment received» on a deal: a line on its timeline and a ``deal.payment_received`` event (automation's
payment trigger listens to it). A payment system's repeated notice with the same ``reference`` is recorded once."""

from __future__ import annotations

import decimal

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import audit, entity_types, history, outbox, policies
from voronka.core.actor import Actor
from voronka.core.errors import NotFound, ValidationFailed
from voronka.core.models import TimelineEntry
from voronka.core.recordkit import lock

from .actions import DEAL


def _amount(value) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | decimal.Decimal):
        raise ValidationFailed(_("The amount must be a number."), fields={"amount": [_("a number")]})
    try:
        amount = decimal.Decimal(str(value).replace(",", ".").replace(" ", ""))
    except decimal.InvalidOperation:
        raise ValidationFailed(_("The amount must be a number."), fields={"amount": [_("a number")]}) from None
    if not amount.is_finite() or amount <= 0 or amount >= decimal.Decimal("1e15"):
        raise ValidationFailed(_("The amount must be more than zero."), fields={"amount": [_("more than zero")]})
    return amount.quantize(decimal.Decimal("0.01"))


def payment_received(actor: Actor, deal_id: int, *, amount, currency: str = "", reference: str = "",
                     note: str = "") -> dict:
    """Record that the client paid ``amount`` for the deal; returns ``{"recorded": bool, "entry": id}``
    (``recorded`` is false when a payment with the same ``reference`` was recorded before)."""
    value = _amount(amount)
    for key, text, limit in (("currency", currency, 3), ("reference", reference, 100), ("note", note, 1000)):
        if not isinstance(text, str) or len(text) > limit:
            raise ValidationFailed(_("At most %(n)s characters.") % {"n": limit}, fields={key: [_("too long")]})
    with transaction.atomic():
        deal = lock(DEAL, deal_id)
        if not policies.can(actor, policies.READ, entity_types.DEAL, deal):  # not found, not «forbidden»: no leak
            raise NotFound(_("Deal #%(id)s does not exist.") % {"id": deal_id})
        policies.require(actor, policies.UPDATE, entity_types.DEAL, deal)
        if reference:
            before = TimelineEntry.objects.filter(entity_type_id=entity_types.DEAL, entity_id=deal.pk,
                                                          data__payment__reference=reference).first()
            if before is not None:
                return {"recorded": False, "entry": before.pk}
        currency = (currency or settings.VORONKA_DEFAULT_CURRENCY or "").upper()
        payment = {"amount": str(value), "currency": currency, "reference": reference, "note": note}
        text = _("Payment received: %(amount)s %(currency)s") % {"amount": value, "currency": currency}
        entry = history.entry(actor, entity_types.DEAL, deal.pk, "comment", text=(text + ("\n" + note if note else "")),
                              data={"payment": payment})
        audit.record(actor, "deal.payment_received", entity_type_id=entity_types.DEAL, entity_id=deal.pk, amount=str(value), reference=reference)
        outbox.emit(actor, "deal.payment_received", entity_types.DEAL, deal.pk, {**payment, "entry": entry.pk})
        return {"recorded": True, "entry": entry.pk}
