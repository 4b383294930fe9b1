"""The fast path of identifier validation accepts exactly what python-stdnum's path accepts, giving the same
number, and leaves every other input to it (so the reasons stay the same)."""

from __future__ import annotations

import random

import pytest
from stdnum.cn import ric, uscc
from stdnum.exceptions import ValidationError

from debar.bench.feed import People
from debar.common import identifiers
from debar.common.identifiers import IdKind, InvalidIdentifier, validate_identifier

_CHARS = "0123456789XxABCDEFGHJKLMNPQRTUWXYabcIOSVZ -*\u0660\uff11\u00df"


def _slow(kind: IdKind, raw: str) -> str | None:
    try:
        number = identifiers._validate_ric(raw) if kind is IdKind.RIC else uscc.validate(raw)
    except ValidationError:
        return None
    return number.upper()


def _mutations(rng: random.Random, number: str) -> list[str]:
    out = [number, number.lower(), number[:-1], number + "1", f" {number}", number[:6] + "-" + number[6:]]
    for _ in range(30):
        chars = list(number)
        chars[rng.randrange(len(chars))] = rng.choice(_CHARS)
        out.append("".join(chars))
    return out


@pytest.mark.parametrize("kind", [IdKind.RIC, IdKind.USCC])
def test_fast_path_agrees_with_stdnum(kind: IdKind) -> None:
    rng = random.Random(7)
    people = People(rng)
    fast = identifiers._fast_ric if kind is IdKind.RIC else identifiers._fast_uscc
    for _ in range(400):
        number = people.person() if kind is IdKind.RIC else people.organisation()
        for raw in _mutations(rng, number):
            expected = _slow(kind, raw)
            got = fast(raw)
            if got is not None:  # whatever the fast path accepts, the slow one accepts the same way
                assert got == expected, raw
            try:
                result = validate_identifier(kind, raw).number
            except InvalidIdentifier:
                result = None
            assert result == expected, raw


def test_dates_that_do_not_exist_are_left_to_the_full_path() -> None:
    body = "11010119990230123"
    number = body + ric.calc_check_digit(body + "0")
    assert identifiers._fast_ric(number) is None
    with pytest.raises(InvalidIdentifier, match="birth date"):
        validate_identifier(IdKind.RIC, number)
