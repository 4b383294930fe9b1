"""Which deadline of an objection matters now, and how it reads: "due in 3 days", "overdue by 2 days". Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from debar.console.views import AWAITING_CONFIRMATION, OVERTURNED, UPHELD, Objection

MINUTE, HOUR, DAY = 60, 3600, 86400


@dataclass(frozen=True, slots=True)
class Deadline:
    label: str  # what is due, e.g. "review due"
    due_at: int  # epoch seconds
    overdue: bool
    words: str  # "due in 3 days", "overdue by 2 days"
    persons: bool = False  # the person's own deadline (to ask for reconsideration), never the authority's lateness


def duration(seconds: int) -> str:
    """The largest whole unit: "2 days", "1 hour", "5 minutes", "less than a minute"."""
    seconds = abs(seconds)
    for unit, name in ((DAY, "day"), (HOUR, "hour"), (MINUTE, "minute")):
        if seconds >= unit:
            count = seconds // unit
            return f"{count} {name}" + ("" if count == 1 else "s")
    return "less than a minute"


def when(epoch_s: int) -> str:
    """A moment as the pages show it, in UTC and saying so."""
    if not epoch_s:
        return "-"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M UTC")


def day(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d") if epoch_s else "-"


def deadline(objection: Objection, now: int) -> Deadline | None:
    """The deadline that matters in the objection's state; None once nothing is due (corrected in time).

    Whether it is overdue is the sanction service's judgement (it knows whether a correction was made); how late
    is counted from the deadline."""
    if objection.state == UPHELD:
        due = objection.reconsideration_request_due
        if not due:
            return None
        if now > due:
            return Deadline("reconsideration could be asked until", due, False, "passed", persons=True)
        return Deadline("reconsideration may be asked until", due, False, f"{duration(due - now)} left", persons=True)
    if objection.state in (OVERTURNED, AWAITING_CONFIRMATION) and objection.correction_due:
        label, due = "correction due", objection.correction_due
    elif objection.state == OVERTURNED:
        return None
    else:
        label, due = "decision due", objection.review_due
    if objection.overdue:
        return Deadline(label, due, True, f"overdue by {duration(now - due)}" if now > due else "overdue")
    if now > due:  # past its deadline yet not late: the correction was made
        return None
    return Deadline(label, due, False, f"due in {duration(due - now)}")
