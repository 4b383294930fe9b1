"""Calendar arithmetic for deadlines, in whole epoch seconds (UTC)."""

from __future__ import annotations

import calendar
import time
from datetime import UTC, datetime

DAY = 86400


def add_months(start: int, months: int) -> int:
    """The same time of day `months` calendar months later (years are 12): a term "of 3 years from the penalty
    date" ends on that date 3 years on, leap days included. A day the target month lacks becomes its last."""
    moment = datetime.fromtimestamp(start, UTC)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return int(moment.replace(year=year, month=month + 1, day=day).timestamp())


def add_working_days(start: int, days: int) -> int:
    """Counts Monday to Friday (public holidays are not modelled)."""
    moment = start
    while days > 0:
        moment += DAY
        if time.gmtime(moment).tm_wday < 5:
            days -= 1
    return moment
