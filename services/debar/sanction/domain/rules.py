"""The check rule, in one place. The Redis adapter runs the same rule inside its server-side script (so the
decision and its log entry are one round trip); tests hold the two to each other."""

from __future__ import annotations

from collections.abc import Iterable

from debar.sanction.domain.model import EntryKind, Evaluation, IndexEntry, Outcome


def evaluate(entries: Iterable[IndexEntry], measure_mask: int, at: int) -> Evaluation:
    """Deny when a restriction reaching the subject covers the measure at `at`, unless an exemption for that
    measure covers `at` too. Lifted restrictions are not in the index; expired and not-yet-effective ones
    never cover."""
    grounds: list[IndexEntry] = []
    exemption: IndexEntry | None = None
    for entry in entries:
        if not entry.covers(measure_mask, at):
            continue
        if entry.kind is EntryKind.RESTRICTION:
            grounds.append(entry)
        else:
            exemption = entry
    if not grounds:
        return Evaluation(Outcome.ALLOW)
    if exemption is not None:
        return Evaluation(Outcome.ALLOW, exemption=exemption, overridden=tuple(grounds))
    return Evaluation(Outcome.DENY, grounds=tuple(grounds))
