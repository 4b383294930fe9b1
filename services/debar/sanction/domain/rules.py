"""The check rule in Python. On the hot path the rule is the Redis adapter's script (adapters/lua/decide.lua),
so that a decision and its log entry are one round trip; this mirrors it exactly, for unit tests and stores
without Lua. tests/integration/test_check_rule.py feeds both the same random entries and times and demands the
same answers."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from debar.sanction.domain.model import EntryKind, Evaluation, IndexEntry, Outcome


def evaluate(
    entries: Iterable[IndexEntry], measure_mask: int, at: int, alone_overrides: Collection[str] = frozenset()
) -> Evaluation:
    """Deny when a restriction reaching the subject covers the measure at `at`, unless an exemption for that
    measure covers `at` too (the last such, in index order). Lifted restrictions are not in the index; expired
    and not-yet-effective ones never cover. An exemption is named only when it turned the deny into the allow:
    a court permit lets a restricted subject through, and naming one for a subject nothing restricts would
    tell the platform, the person and the log that a permit was used.

    Four eyes (domain/four_eyes.py): a permit granted by one identity and not confirmed by a second overrides only
    when every covering restriction is of a source in `alone_overrides` (those whose lifts need no confirmation:
    four_eyes.one_identity_sources); a confirmed one is preferred to it."""
    grounds: list[IndexEntry] = []
    exemption: IndexEntry | None = None
    alone: IndexEntry | None = None
    for entry in entries:
        if not entry.covers(measure_mask, at):
            continue
        if entry.kind is EntryKind.RESTRICTION:
            grounds.append(entry)
        elif entry.confirmed:
            exemption = entry
        else:
            alone = entry
    if not grounds:
        return Evaluation(Outcome.ALLOW)
    if exemption is None and alone is not None and all(g.source in alone_overrides for g in grounds):
        exemption = alone
    if exemption is not None:
        return Evaluation(Outcome.ALLOW, exemption=exemption, overridden=tuple(grounds))
    return Evaluation(Outcome.DENY, grounds=tuple(grounds))
