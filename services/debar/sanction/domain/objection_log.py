"""The objection transition log's hash chain, as pure logic. One chain for every objection: each entry's hash is
SHA-1 over the previous entry's hash and every field of its own, in a fixed order (the append script,
adapters/lua/objection.lua, computes the same). The entry and break types are the decision log's."""

from __future__ import annotations

from collections.abc import Iterable

from debar.sanction.domain.chain import ChainBreak, LogEntry, entry_hash, verify_chain

# The order the append script hashes the fields in, after the entry's stream id: objection id, decision id,
# from state ("" for the filing), to state, actor, reason, time (epoch seconds).
TRANSITION_FIELDS = ("o", "d", "f", "t", "a", "r", "at")


def transition_hash(previous_hash: str, entry: LogEntry) -> str:
    return entry_hash(previous_hash, entry, TRANSITION_FIELDS)


def verify_transitions(entries: Iterable[LogEntry], head: str | None) -> tuple[int, ChainBreak | None]:
    """Walks the chain; returns how many entries verified and the first break if any. `head` is the recorded
    "<ms> <seq> <hash>" of the last entry (None when nothing was ever appended)."""
    return verify_chain(entries, head, fields=TRANSITION_FIELDS, head_required=True)
