"""The records of the sequencing streams as Redis holds them (what `debar log archive` copies out and the log's
entries are made from): a record of a bucket's stream holds the decisions of one check script call (a Check, the
items of a BatchCheck on one node, or concurrent Checks coalesced into one call) in its field `d`, or one registry
write's entry in its field `e` (domain/log_entries.py). The Merkle log (app/integrator.py) commits to every
record's entries; the SHA-1 hash chain these records once carried is gone (README "The tamper-evident log")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# A record's `d` field: decisions separated by GS, a decision's fields by DECISION_FS, in this order.
DECISION_SEP = "\x1d"
DECISION_FS = "\x1c"
DECISION_FIELDS = ("caller", "revision", "id_type", "subject", "measure", "outcome", "at", "grounds", "exemption")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One stream record: its stream id and its fields."""

    stream_id: str
    fields: dict[str, str]


def decisions_of(entry: LogEntry) -> list[dict[str, str]]:
    """A record's decisions. A record holding a registry write (field `r`, or an import's chunk `rs`) holds none,
    whatever else it carries: no writer puts decisions beside a registry write, and the log's entries of such a
    record are the write's alone (a `d` added to an integrated registry record changes no root, and carries no
    seal; adapters/sequenced_log.py reads it as unreadable, and `debar log verify` names it)."""
    if holds_registry_write(entry.fields):
        return []
    packed = entry.fields.get("d", "")
    return [dict(zip(DECISION_FIELDS, d.split(DECISION_FS), strict=True)) for d in packed.split(DECISION_SEP) if d]


def holds_registry_write(fields: Mapping[str, str]) -> bool:
    """A record of a registry write (field `r`) or of an import's chunk (`rs`): one that holds no decisions."""
    return "r" in fields or "rs" in fields


def spool_ids(entry: LogEntry) -> list[str]:
    """Per decision, in order, the spool id of a fail-open decision replay.lua appended ("" for none; decisions past
    the list have none): what each decision's entry names (field `sp`: "spool id US decided at", GS-joined)."""
    return [s.split("\x1f")[0] for s in entry.fields.get("sp", "").split(DECISION_SEP) if s]


def subject_buckets(entry: LogEntry, stream_bucket: str) -> list[str]:
    """The bucket of each decision's subject (where its decision list is): the record's field `sb` when the check
    script wrote one (some subject in another bucket than the stream's, lua/decide.lua), else the stream's."""
    count = len(decisions_of(entry))
    packed = entry.fields.get("sb", "")
    if len(packed) != 3 * count:
        return [stream_bucket] * count
    return [packed[i : i + 3] for i in range(0, len(packed), 3)]
