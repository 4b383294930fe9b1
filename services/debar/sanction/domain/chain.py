"""The decision log's hash chain, as pure logic. A log record holds the decisions of one check script call (a
Check, the items of a BatchCheck on one node, or concurrent Checks coalesced into one call); its hash is SHA-1
over the previous record's hash and every field of its own, in a fixed order. The check script computes it (SHA-1
is what Redis scripting offers; the chain needs second-preimage resistance, which SHA-1 still has);
`debar log verify` recomputes it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

FS = "\x1f"
# The order the check script hashes a record's fields in, after its stream id.
HASHED_FIELDS = ("cat", "d", "sp")
# A record's `d` field: decisions separated by GS, a decision's fields by DECISION_FS, in this order.
DECISION_SEP = "\x1d"
DECISION_FS = "\x1c"
DECISION_FIELDS = ("caller", "revision", "id_type", "subject", "measure", "outcome", "at", "grounds", "exemption")


def decisions_of(entry: LogEntry) -> list[dict[str, str]]:
    packed = entry.fields.get("d", "")
    return [dict(zip(DECISION_FIELDS, d.split(DECISION_FS), strict=True)) for d in packed.split(DECISION_SEP) if d]


@dataclass(frozen=True, slots=True)
class LogEntry:
    stream_id: str
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class ChainBreak:
    stream_id: str
    reason: str


def entry_hash(previous_hash: str, entry: LogEntry, fields: tuple[str, ...] = HASHED_FIELDS) -> str:
    body = FS.join([entry.stream_id, *(entry.fields.get(name, "") for name in fields)])
    return hashlib.sha1(f"{previous_hash}{FS}{body}".encode()).hexdigest()


def verify_chain(
    entries: Iterable[LogEntry],
    head: str | None,
    start_hash: str = "",
    fields: tuple[str, ...] = HASHED_FIELDS,
    head_required: bool = False,
) -> tuple[int, ChainBreak | None]:
    """Walks one chain (any log written this way: `fields` are the ones hashed, in order); returns how many
    entries verified, and the first break if any. `head` is the chain's recorded "<ms> <seq> <hash>" (None when
    the chain has no head; with `head_required`, entries without a head are a break); `start_hash` the hash the
    first entry must follow (empty for a chain that starts here, the last archived hash for a trimmed one)."""
    previous, count, last_id = start_hash, 0, ""
    for entry in entries:
        if entry.fields.get("p", "") != previous:
            return count, ChainBreak(entry.stream_id, "does not follow the previous entry (one was removed or moved)")
        recomputed = entry_hash(previous, entry, fields)
        if recomputed != entry.fields.get("h"):
            return count, ChainBreak(entry.stream_id, "its content does not match its hash (a field was changed)")
        previous, last_id, count = recomputed, entry.stream_id, count + 1
    if count and head is not None:
        ms, seq = last_id.split("-")
        if head != f"{ms} {seq} {previous}":
            return count, ChainBreak(last_id, "the chain head does not point at the last entry (entries were removed)")
    if count == 0 and head is not None and head.rpartition(" ")[2] != start_hash:
        return 0, ChainBreak(head, "the chain head points at entries that are gone")
    if count and head is None and head_required:
        return count, ChainBreak(last_id, "entries exist but the chain head is gone")
    return count, None
