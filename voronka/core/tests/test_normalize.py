"""Phone normalisation: the shortcut for «+7» and ten digits must give what phonenumbers gives."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from django.core.exceptions import ValidationError

from voronka.core.normalize import normalize_phone


def _by_phonenumbers(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@pytest.mark.parametrize("region", ["RU", "KZ", "US"])
def test_plus_seven_and_ten_digits_normalize_as_phonenumbers_does(region):
    rng = random.Random(20261124)
    for first in "0123456789":
        for _ in range(300):
            text = "+7" + first + "".join(rng.choice("0123456789") for _ in range(9))
            assert normalize_phone(f"  {text} ", region) == _by_phonenumbers(text, region) == text


@pytest.mark.parametrize("raw, expected", [
    ("8 (916) 123-45-67", "+79161234567"), ("+7 916 1234567", "+79161234567"), ("9161234567", "+79161234567"),
    ("+7916123456", None), ("+791612345678", None), ("+7９１６1234567", "+79161234567"), ("+1 212 555 0100", "+12125550100"),
])
def test_other_forms_still_go_through_phonenumbers(raw, expected):
    if expected is None:
        with pytest.raises(ValidationError):
            normalize_phone(raw, "RU")
    else:
        assert normalize_phone(raw, "RU") == expected
