"""The objection transition log's hash chain, as pure logic. One chain for every objection: each entry's hash is
SHA-1 over the previous entry's hash and every field of its own, in a fixed order (the append script,
adapters/lua/objlog.lua, computes the same). The entry and break types are the decision log's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from debar.sanction.domain.chain import ChainBreak, LogEntry

FS = "\x1f"
# The order the append script hashes the fields in, after the entry's stream id: objection id, decision id,
# from state ("" for the filing), to state, actor, reason, time (epoch seconds).
TRANSITION_FIELDS = ("o", "d", "f", "t", "a", "r", "at")


def transition_hash(previous_hash: str, entry: LogEntry) -> str:
    body = FS.join([entry.stream_id, *(entry.fields.get(name, "") for name in TRANSITION_FIELDS)])
    return hashlib.sha1(f"{previous_hash}{FS}{body}".encode()).hexdigest()


def verify_transitions(entries: Iterable[LogEntry], head: str | None) -> tuple[int, ChainBreak | None]:
    """Walks the chain; returns how many entries verified and the first break if any. `head` is the recorded
    "<ms> <seq> <hash>" of the last entry (None when nothing was ever appended)."""
    previous, count, last_id = "", 0, ""
    for entry in entries:
        if entry.fields.get("p", "") != previous:
            return count, ChainBreak(entry.stream_id, "does not follow the previous entry (one was removed or moved)")
        recomputed = transition_hash(previous, entry)
        if recomputed != entry.fields.get("h"):
            return count, ChainBreak(entry.stream_id, "its content does not match its hash (a field was changed)")
        previous, last_id, count = recomputed, entry.stream_id, count + 1
    if count and head is not None:
        ms, seq = last_id.split("-")
        if head != f"{ms} {seq} {previous}":
            return count, ChainBreak(last_id, "the chain head does not point at the last entry (entries were removed)")
    if count == 0 and head is not None:
        return 0, ChainBreak(head, "the chain head points at entries that are gone")
    if count and head is None:
        return count, ChainBreak(last_id, "entries exist but the chain head is gone")
    return count, None
