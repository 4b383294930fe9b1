"""The times debar accepts: checks, effective windows, travel, stay, contract and bid dates. A time outside them
is almost always a unit mistake in the caller (milliseconds for seconds)."""

from __future__ import annotations

from debar.common.errors import InvalidField

EARLIEST_AT = 946684800  # 2000-01-01
LATEST_AT = 4102444800  # 2100-01-01
NANOS_PER_SECOND = 1_000_000_000


def checked_time(seconds: int, field: str) -> int:
    if not EARLIEST_AT <= seconds < LATEST_AT:
        raise InvalidField(field, "must be between 2000-01-01 and 2100-01-01")
    return seconds


def checked_nanos(nanos: int, field: str) -> int:
    if not 0 <= nanos < NANOS_PER_SECOND:
        raise InvalidField(field, "nanos must be 0 to 999999999")
    return nanos
