"""Money on boards and lists: grouped by thousands in the language's own format."""

from __future__ import annotations

import decimal

import pytest
from django.utils import translation

from voronka.ui.templatetags.ui import money


@pytest.mark.parametrize(("lang", "value", "expected"), [
    ("ru", decimal.Decimal("1234567.00"), "1\xa0234\xa0567 ₽"),
    ("ru", decimal.Decimal("1234.5"), "1\xa0234,50 ₽"),  # kopecks always as two digits
    ("ru", decimal.Decimal("0.125"), "0,125 ₽"),
    ("ru", "99.90", "99,90 ₽"),
    ("ru", decimal.Decimal("-5000"), "-5\xa0000 ₽"),
    ("en", decimal.Decimal("1234567.00"), "1,234,567 ₽"),
    ("en", decimal.Decimal("0.01"), "0.01 ₽"),
    ("en", 12, "12 ₽"),
])
def test_money_groups_thousands_per_language(lang, value, expected):
    with translation.override(lang):
        assert money(value) == expected


def test_money_keeps_odd_input_readable():
    assert money(None) == "" and money("") == ""
    assert money("abc") == "abc"
    assert money(decimal.Decimal("10"), "USD") == "10 $"
    assert money(decimal.Decimal("10"), "KZT") == "10 KZT"
