"""Valid identifiers for tests: fresh ones per test, so tests sharing a server never see each other's data."""

from __future__ import annotations

import random
import string
from datetime import date, timedelta

from stdnum.cn import ric, uscc

_rng = random.Random()


def new_ric(birth: str | None = None, region: str = "110105") -> str:
    """A checksum-valid RIC, random enough (18,000 birth dates x 1,000 sequence numbers) not to collide."""
    if birth is None:
        day = date(1950, 1, 1) + timedelta(days=_rng.randrange(18000))
        birth = day.strftime("%Y%m%d")
    body = f"{region}{birth}{_rng.randrange(1000):03d}"
    return body + ric.calc_check_digit(body + "0")


def new_uscc() -> str:
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    body = "91" + "110000" + "".join(_rng.choice(alphabet) for _ in range(9))
    for check in alphabet:
        if uscc.is_valid(body + check):
            return body + check
    raise AssertionError("no check character found")


def bad_checksum(number: str) -> str:
    last = number[-1]
    replacement = next(c for c in "0123456789" if c != last)
    return number[:-1] + replacement


ALPHABET = string.ascii_uppercase
