"""Calendar arithmetic for deadlines, in whole epoch seconds (UTC)."""

from __future__ import annotations

import time

DAY = 86400


def add_working_days(start: int, days: int) -> int:
    """Counts Monday to Friday (public holidays are not modelled)."""
    moment = start
    while days > 0:
        moment += DAY
        if time.gmtime(moment).tm_wday < 5:
            days -= 1
    return moment
