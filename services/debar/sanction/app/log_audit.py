"""`debar log verify`: rebuilds the Merkle tree from the entries themselves (Redis, and the archive for records
trimmed from Redis) in the stored leaf order, and checks it against every checkpoint kept outside Redis. Trusts
nothing in Redis: the leaf order, the stored nodes and the tree's state are only a map, checked against the
entries and the signed checkpoints; what Redis cannot forge is the log key's signature on a checkpoint kept in
the checkpoint store (and the witnesses' cosignatures on it).

What it checks, each failure one line naming it:
- every stored checkpoint: the log key's signature, each cosignature from a witness key given (a bad one breaks
  it; a missing one is counted, not broken: a witness may have been down), the origin; two of one size with
  different roots (a fork);
- the tree rebuilt from the entries has, at each checkpoint's size, that checkpoint's root (an entry removed,
  changed, reordered, or a record missing from the leaf order changes every root from there on), and reaches the
  newest checkpoint's size (a cut tail or a dropped stream makes it fall short);
- every record the leaf order names exists and holds as many entries as it says (a deleted record, a dropped
  bucket, a front trimmed without archiving), and every leaf hash, in Redis or in an archived tile, matches the
  entry it stands for (an archived tile rewritten); a leaf hash in neither (a tile deleted) is broken;
- every record in a stream up to the stream's cursor is in the leaf order (nothing integrated was hidden from
  it); records after the cursors are pending integration (counted);
- the stored tree state (size, root) is the rebuilt tree, and the stored nodes prove the newest checkpoint
  consistent with it;
- every record is readable as entries: one that is not (a garbage XADD, a chunk cut short) was integrated as one
  opaque entry of its raw fields and is named;
- every import chunk (one record of many registry entries) carries its writer's signature over its entries in
  order: an entry dropped with its restriction erased, moved to another chunk or reordered is named;
- every registry, objection and rekey entry (in Redis or the archive, integrated or pending) carries its writer's
  signature with the log's key (tlog/entry_signature.py): one without, or with one that does not verify, was
  written into a stream behind the service's back (a forged lift, confirmation or overturn, or a genuine entry
  altered), and the same signed entry twice is a genuine one copied. Entries of `debar import` and `debar rekey`
  run without the key are unsigned by design and counted (the operator's word: README, threat model);
- with the decision seal key (`seal_key`, derived from DEBAR_BUCKET_KEY): every decision record's decisions are
  covered, in order, by the server's seals over their questions (domain/decision_seals.py): a decision no seal
  covers was made up in Redis, one whose seal does not match it was made up or its question changed, and a nonce
  used twice is a genuine record (or decision) copied;
- with the decision lists (`lists`): every decision held in the buckets' streams is on its subject's decision list
  (one taken off hides it from ListDecisions and the console);
- with the registry's records (`held`): every restriction and permit held in Redis is what its registry entries,
  folded in log order, leave it (a record lifted, shortened or created in place, with no entry, is named), and
  every record the entries created is still held (one deleted in place is named). A subject's pseudonym moved by
  `debar rekey` since is not compared (its entries name the old one)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from debar.common.identifiers import key_id_of
from debar.sanction.app.log_proofs import consistency_proof
from debar.sanction.app.ports import (
    IntegratedRecord,
    ListedDecisions,
    SequencedLog,
    SequencedRecord,
    StoredRecords,
    StoreUnavailable,
    TreeState,
    TreeStore,
)
from debar.sanction.domain.decision_seals import parse_seals, seal_matches
from debar.sanction.domain.log_entries import (
    FORMAT,
    UNREADABLE,
    EntryKind,
    MalformedEntry,
    ObjectionEntry,
    RegistryEntry,
)
from debar.sanction.domain.model import Exemption
from debar.sanction.domain.objections import ObjectionState, same_reviewer
from debar.sanction.domain.registry_log import Action, exemption_fields, restriction_fields
from debar.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from debar.tlog.compact import CompactRange
from debar.tlog.entry_signature import chunk_signed_by, entry_signed_by
from debar.tlog.merkle import leaf_hash
from debar.tlog.nodes import MissingNodes
from debar.tlog.note import NoteError, Verifier
from debar.tlog.proofs import InvalidProof, verify_consistency

PAGE = 1000
TILE_WIDTH = 256
HASH = 32


@dataclass
class AuditReport:
    checkpoints: int = 0
    newest_size: int = 0
    leaves: int = 0
    records: int = 0
    pending: int = 0  # records sequenced after the cursors: not integrated yet
    missing_cosignatures: int = 0
    from_archive: int = 0
    held_records: int = 0  # restrictions and permits held in Redis, each compared with its registry entries
    signed: int = 0  # registry, objection and rekey entries whose writer's signature verifies
    unsigned_by_tools: int = 0  # of `debar import` or `debar rekey` run without the log's key
    sealed: int = 0  # decisions covered by a valid seal of the service's (domain/decision_seals.py)
    broken: list[str] = field(default_factory=list)


def _order_key(record_id: str) -> tuple[int, ...]:
    return tuple(int(p) for p in record_id.split("-") if p.isdigit())


async def _all_records(log: SequencedLog, report: AuditReport) -> dict[str, list[SequencedRecord]]:
    out: dict[str, list[SequencedRecord]] = {}
    for stream in await log.streams():
        records: list[SequencedRecord] = []
        after = ""
        while True:
            try:
                page = await log.read_after(stream, after, PAGE)
            except StoreUnavailable:
                raise
            except Exception as error:  # a record the sequenced log cannot turn into entries: tampered with
                report.broken.append(
                    f"{stream}: a record after {after or 'the start'} cannot be read as log entries "
                    f"({type(error).__name__}: {error}); the records from there on count as missing"
                )
                break
            records += page
            if len(page) < PAGE:
                break
            after = page[-1].record_id
        out[stream] = records
    return out


_SIGNED_KINDS = {
    f"{FORMAT} {kind.value}\n".encode(): kind for kind in (EntryKind.REGISTRY, EntryKind.OBJECTION, EntryKind.REKEY)
}
_IMPORT_CALLER = b"\ncaller=import\n"  # registry entries of `debar import` (app/importer.py)


def _kind_of(entry: bytes) -> EntryKind | None:
    """The kind of an entry its writer signs; None for a decision (decided in Redis, unsigned)."""
    return _SIGNED_KINDS.get(entry[: entry.find(b"\n") + 1])


def _check_writers(
    records: Iterable[SequencedRecord], log_key: Verifier, report: AuditReport, tools_sign: bool = False
) -> None:
    """`tools_sign`: the entries of `debar import` and `debar rekey` must be signed too."""
    seen: dict[bytes, str] = {}
    for record in records:
        if record.unreadable or any(e.startswith(UNREADABLE) for e in record.entries):
            report.broken.append(
                f"record {record.record_id} of {record.stream}: unreadable as log entries "
                f"({record.unreadable or 'an entry in the form of an unreadable record'}): integrated as one opaque "
                "entry of its raw fields; written into Redis behind the service's back"
            )
            continue
        chunk_signed = record.chunk_signature is not None and _check_chunk(record, log_key, report)
        for k, entry in enumerate(record.entries):
            kind = _kind_of(entry)
            if kind is None:
                continue
            where = f"record {record.record_id} of {record.stream}, entry {k}"
            signature = record.signatures[k] if k < len(record.signatures) else ""
            if not signature and record.chunk_signature:
                # An entry of a signed chunk (its writer signs the chunk, not each entry): the chunk's signature
                # vouches for it, or the chunk was named broken above.
                report.signed += int(chunk_signed)
            elif not signature and not tools_sign and (kind is EntryKind.REKEY or _IMPORT_CALLER in entry):
                report.unsigned_by_tools += 1
                continue
            elif not entry_signed_by(log_key, entry, signature):
                report.broken.append(
                    f"{where}: a {kind.value} entry not signed by the log's key "
                    f"({'a signature over other bytes' if signature else 'no signature'}): written into Redis "
                    "behind the service's back"
                )
                continue
            else:
                report.signed += 1
            if entry in seen:
                report.broken.append(
                    f"{where}: the same signed {kind.value} entry as {seen[entry]}, twice: a genuine entry copied"
                )
            seen.setdefault(entry, where)


def _check_seals(records: Iterable[SequencedRecord], key: bytes, report: AuditReport) -> None:
    """Each decision record's seals (field `q`) against its decisions' questions, in order; each nonce once."""
    seen: dict[str, str] = {}
    for record in records:
        sealed = record.sealed
        if sealed is None or record.unreadable:
            continue
        where = f"record {record.record_id} of {record.stream}"
        try:
            seals = parse_seals(sealed.seals)
        except ValueError as error:
            seals = []
            report.broken.append(f"{where}: its seals are unreadable ({error}): written behind the service's back")
        questions, at = sealed.questions, 0
        for seal in seals:
            if at >= len(questions):
                report.broken.append(f"{where}: a seal past its last decision (record cut, or seals added)")
                break
            end = min(at + seal.count, len(questions))
            what = f"{where}, decision {at}" if end - at == 1 else f"{where}, decisions {at}..{end - 1}"
            if not seal_matches(key, sealed.bucket, seal, questions[at:end]):
                report.broken.append(
                    f"{what}: the seal does not match (not sealed by the service: made up, moved or changed in Redis?)"
                )
            elif seal.nonce in seen:
                report.broken.append(
                    f"{what}: sealed with the nonce of {seen[seal.nonce]}: a genuine decision copied in Redis"
                )
            else:
                report.sealed += end - at
                seen[seal.nonce] = what
            at = end
        for i in range(at, len(questions)):
            report.broken.append(f"{where}, decision {i}: not sealed by the service (made up in Redis?)")


def _check_chunk(record: SequencedRecord, log_key: Verifier, report: AuditReport) -> bool:
    """An import's chunk: its writer signed its entries as a whole, in order (chunks written before 2026-12-02 sign
    each entry besides; a chunk of `debar import` run without the key has neither). Whether the chunk's signature
    is its writer's on exactly these entries."""
    where = f"record {record.record_id} of {record.stream}"
    if record.chunk_signature:
        if chunk_signed_by(log_key, record.entries, record.chunk_signature):
            return True
        report.broken.append(
            f"{where}: the chunk's {len(record.entries)} entries are not those its writer signed, in its order "
            "(an entry dropped, cut, added, moved from another chunk or reordered behind the service's back)"
        )
    elif any(record.signatures):
        report.broken.append(
            f"{where}: a chunk of signed entries without its writer's signature on the chunk (removed behind the "
            "service's back: entries may have been dropped, moved or reordered)"
        )
    return False


def _check_objection_steps(records: Iterable[SequencedRecord], report: AuditReport) -> None:
    """Each objection's steps, in log order (one stream), as a chain: every step starts from the state the one
    before it left (the first from none), and an overturn is confirmed by another than who overturned it. A sealed
    record put back as an older version of itself (an overturn awaiting confirmation that a second reviewer has
    since upheld, confirmed then by a third) opens; only its steps tell."""
    last: dict[str, tuple[str, str]] = {}  # objection id -> (the state its last step left, who took that step)
    for record, e in _decoded(records, EntryKind.OBJECTION, ObjectionEntry.decode):
        state, actor = last.get(e.objection_id, ("", ""))
        where = f"objection {e.objection_id}: the step {e.from_state or '(none)'} -> {e.to_state} by {e.actor}"
        if e.from_state != state:
            report.broken.append(
                f"{where} (record {record.record_id} of {record.stream}) starts where the log did not leave it "
                f"({state or 'no step'}): the objection was rolled back or rewritten behind the service's back"
            )
        elif e.to_state == ObjectionState.OVERTURNED.value and same_reviewer(e.actor, actor):
            report.broken.append(f"{where}: confirmed by the reviewer who overturned it")
        last[e.objection_id] = (e.to_state, e.actor)


E = TypeVar("E")


def _decoded(
    records: Iterable[SequencedRecord], kind: EntryKind, decode: Callable[[bytes], E]
) -> Iterator[tuple[SequencedRecord, E]]:
    """Each entry of `kind`, decoded, with its record, in log order; one that does not decode is skipped here (the
    signature check or the tree names it)."""
    for record in records:
        for entry in record.entries:
            if _kind_of(entry) is kind:
                try:
                    yield record, decode(entry)
                except MalformedEntry:
                    continue


_EXEMPTION_ACTIONS = {Action.GRANT_EXEMPTION, Action.CONFIRM_EXEMPTION}


def _check_before(e: RegistryEntry, key: tuple[bool, str], expected: Mapping[str, str], report: AuditReport) -> None:
    """A write's `before` (the record as the service read it) against what the log's entries left it: a record
    changed in Redis between two writes shows in the next write's `before` even when that write puts it back in
    line (a pending lift stored behind the log, "asked by" a second clerk, then confirmed by one clerk: the lifted
    record is what the entries leave it, and only the confirmation's `before` tells)."""
    what = f"{'permit' if key[0] else 'restriction'} {e.target}"
    for name, value in e.before:
        if name in _MOVED_BY_REKEY and key_id_of(value) != key_id_of(expected.get(name, "")):
            continue  # moved in place by `debar rekey`
        if expected.get(name, "") != value:
            report.broken.append(
                f"{what}: before its {e.action} by {e.caller} at {e.at}, {name} was {value[:60]!r}, "
                f"{expected.get(name, '')[:60]!r} as its registry entries left it: changed behind the service's back"
            )


_MOVED_BY_REKEY = ("subject", "principals")  # pseudonyms: `debar rekey` moves them in place, entries keep the old


async def _check_records(records: StoredRecords, ordered: Sequence[SequencedRecord], report: AuditReport) -> None:
    """Each held record against its registry entries folded in log order (creation: every field; then each
    write's `after`, the fields it changed)."""
    logged: dict[tuple[bool, str], dict[str, str]] = {}
    last: dict[tuple[bool, str], tuple[object, object]] = {}  # each record's last write: (before, after)
    for _, e in _decoded(ordered, EntryKind.REGISTRY, RegistryEntry.decode):
        key = (e.action in _EXEMPTION_ACTIONS, e.target)
        if not e.before:
            logged[key] = {}
        elif key in logged and last.get(key) != (e.before, e.after):  # a write sent again is logged twice
            _check_before(e, key, logged[key], report)
        last[key] = (e.before, e.after)
        logged.setdefault(key, {}).update(e.after)
    held: set[tuple[bool, str]] = set()
    async for r in records.stored_records():
        report.held_records += 1
        exemption = isinstance(r, Exemption)
        what = f"{'permit' if exemption else 'restriction'} {r.id}"
        key = (exemption, r.id)
        held.add(key)
        fields = dict(exemption_fields(r) if isinstance(r, Exemption) else restriction_fields(r))
        expected = logged.get(key)
        if expected is None:
            report.broken.append(f"{what}: held in Redis with no registry entry: written behind the service's back")
            continue
        rekeyed = key_id_of(fields.get("subject", "")) != key_id_of(expected.get("subject", ""))
        for name, value in fields.items():
            if rekeyed and name in _MOVED_BY_REKEY:
                continue
            if expected.get(name, "") != value:
                report.broken.append(
                    f"{what}: {name} is {value[:60]!r} in Redis, {expected.get(name, '')[:60]!r} as its registry "
                    "entries leave it: changed behind the service's back"
                )
    for exemption, target in sorted(logged.keys() - held):
        report.broken.append(
            f"{'permit' if exemption else 'restriction'} {target}: created by its registry entries, not held in "
            "Redis: deleted behind the service's back"
        )


def _open_checkpoints(
    notes: Sequence[bytes], log_key: Verifier, witness_keys: Sequence[Verifier], report: AuditReport
) -> dict[int, Checkpoint]:
    by_size: dict[int, Checkpoint] = {}
    for number, note in enumerate(notes, start=1):
        try:
            signed = open_checkpoint(note, log_key, witnesses=witness_keys, quorum=0)
        except (NoteError, CheckpointError) as error:
            report.broken.append(f"stored checkpoint {number}: {error}")
            continue
        cp = signed.checkpoint
        report.missing_cosignatures += sum(1 for w in witness_keys if not any(
            s.name == w.name and s.key_id == w.key_id for s in signed.verified))  # fmt: skip
        seen = by_size.get(cp.size)
        if seen is not None and not hmac.compare_digest(seen.root_hash, cp.root_hash):
            report.broken.append(f"two stored checkpoints of size {cp.size} with different roots: a forked log")
            continue
        by_size[cp.size] = cp
    report.checkpoints = len(notes)
    return by_size


async def audit_log(
    log: SequencedLog,
    tree: TreeStore,
    checkpoint_notes: Sequence[bytes],
    log_key: Verifier,
    witness_keys: Sequence[Verifier] = (),
    archived: Iterable[SequencedRecord] = (),
    held: StoredRecords | None = None,
    tools_sign: bool = False,
    archived_tiles: Mapping[int, bytes] = MappingProxyType({}),
    archived_order: Sequence[IntegratedRecord] = (),
    lists: ListedDecisions | None = None,
    seal_key: bytes | None = None,
) -> AuditReport:
    """`archived_tiles`: the level-0 tiles `debar log archive` moved out of Redis, by number; each leaf of them is
    checked against the entry it stands for, which is rebuilt from the archived records (the root comes from
    the entries, never from a stored hash). `archived_order`: the leaf order's items it moved out of Redis
    (items 0 to its cursor); the rest of the leaf order is read from Redis after them. `seal_key`: the decision
    seal key (domain/decision_seals.py: seal_key); None checks no seal."""
    report = AuditReport()
    checkpoints = _open_checkpoints(checkpoint_notes, log_key, witness_keys, report)
    report.newest_size = max(checkpoints, default=0)
    streams = await _all_records(log, report)
    in_redis = {(r.stream, r.record_id): r for records in streams.values() for r in records}
    from_archive = {(r.stream, r.record_id): r for r in archived}
    every = {**from_archive, **in_redis}
    in_streams = [every[k] for k in sorted(every, key=lambda k: (k[0], _order_key(k[1])))]
    _check_writers(in_streams, log_key, report, tools_sign)
    _check_objection_steps(in_streams, report)
    if seal_key is not None:
        _check_seals(in_streams, seal_key, report)
    if held is not None:  # in time order across streams (a record's entries may span two buckets)
        await _check_records(held, [every[k] for k in sorted(every, key=lambda k: _order_key(k[1]))], report)
    if lists is not None:
        async for stream, record_id, index in lists.unlisted():
            report.broken.append(
                f"record {record_id} of {stream}, decision {index}: held in Redis but on no decision list of its "
                "subject (taken off behind the service's back: ListDecisions and the console no longer show it)"
            )
    try:
        state = await tree.state()
    except ValueError as error:
        report.broken.append(f"stored tree state: unreadable ({error})")
        state = TreeState(CompactRange(), {})

    rebuilt = CompactRange()
    listed: set[tuple[str, str]] = set()
    unstored: set[int] = set()  # tiles with a leaf hash neither in Redis nor archived (reported once each)
    checked_roots: set[int] = set()

    def reached(size: int) -> None:
        cp = checkpoints.get(size)
        if cp is None:
            return
        checked_roots.add(size)
        if not hmac.compare_digest(rebuilt.root(), cp.root_hash):
            report.broken.append(
                f"checkpoint of size {size}: its root is not the root of the tree rebuilt from the entries "
                "(an entry before it was removed, changed, reordered or added)"
            )

    reached(0)
    base = await tree.order_base()
    if base > len(archived_order):
        report.broken.append(
            f"leaf order items {len(archived_order)}..{base - 1}: neither in Redis nor in the archive (moved by "
            "`debar log archive`: verify with --archive, or an archived leaf-order file was deleted)"
        )
    start = 0
    while True:
        if start < len(archived_order):
            page: list[IntegratedRecord] = list(archived_order[start : start + PAGE])
        else:
            page = await tree.records(max(start, base), PAGE)
        if not page:
            break
        start = max(start, base) + len(page) if start >= len(archived_order) else start + len(page)
        stored_at = page[0].first_leaf
        stored = await tree.leaf_hashes(stored_at, page[-1].first_leaf + page[-1].count)
        for i, h in enumerate(stored):
            if h is None:
                tile, at = divmod(stored_at + i, TILE_WIDTH)
                data = archived_tiles.get(tile)
                if data is not None and len(data) >= (at + 1) * HASH:
                    stored[i] = data[at * HASH : (at + 1) * HASH]
                elif tile not in unstored:
                    unstored.add(tile)
                    report.broken.append(
                        f"leaf {stored_at + i}: its hash is neither in Redis nor in an archived tile (tile {tile} "
                        "deleted, or verified without the archive)"
                    )
        for item in page:
            report.records += 1
            where = f"record {item.record_id} of {item.stream}"
            key = (item.stream, item.record_id)
            if key in listed:
                report.broken.append(f"{where}: in the leaf order twice (rewritten tree state)")
            listed.add(key)
            if item.first_leaf != rebuilt.size:
                report.broken.append(
                    f"{where}: the leaf order puts it at leaf {item.first_leaf}, not {rebuilt.size} "
                    "(rewritten tree state)"
                )
            record = in_redis.get(key)
            if record is None and key in from_archive:
                record = from_archive[key]
                report.from_archive += 1
            if record is None:
                report.broken.append(
                    f"{where} (leaves {item.first_leaf}..{item.first_leaf + item.count - 1}) is missing from Redis "
                    "and the archive: deleted, trimmed without archiving, or its stream dropped"
                )
                entries_hashes = [
                    stored[i - stored_at] or b"\0" * 32 if 0 <= i - stored_at < len(stored) else b"\0" * 32
                    for i in range(item.first_leaf, item.first_leaf + item.count)
                ]
            else:
                if len(record.entries) != item.count:
                    report.broken.append(
                        f"{where}: holds {len(record.entries)} entries, the tree {item.count} (entries removed or "
                        "added)"
                    )
                entries_hashes = [leaf_hash(e) for e in record.entries]
            for k, h in enumerate(entries_hashes):
                index = rebuilt.size
                stored_hash = stored[index - stored_at] if 0 <= index - stored_at < len(stored) else None
                if record is not None and stored_hash is not None and not hmac.compare_digest(stored_hash, h):
                    report.broken.append(
                        f"leaf {index} ({where}, entry {k}): the entry does not hash to the stored leaf (the entry, "
                        "or the stored tree, was changed)"
                    )
                rebuilt.append(h)
                reached(rebuilt.size)
    report.leaves = rebuilt.size

    for size in sorted(checkpoints):
        if size > rebuilt.size:
            report.broken.append(
                f"checkpoint of size {size}: the tree rebuilt from the entries has only {rebuilt.size} leaves "
                "(entries cut from the tail, or a stream or bucket dropped)"
            )
            break

    cursors: Mapping[str, str] = state.cursors
    for stream, records in sorted(streams.items()):
        cursor = cursors.get(stream)
        for record in records:
            if cursor is not None and _order_key(record.record_id) <= _order_key(cursor):
                if (stream, record.record_id) not in listed:
                    report.broken.append(
                        f"record {record.record_id} of {stream}: before the stream's cursor but not in the tree "
                        "(added behind the log's back, or the leaf order was rewritten)"
                    )
            else:
                report.pending += 1

    if state.size != rebuilt.size or not hmac.compare_digest(state.edge.root(), rebuilt.root()):
        report.broken.append(
            f"stored tree state: size {state.size}, root {state.edge.root().hex()[:16]}..., not the tree rebuilt "
            f"from the leaf order (size {rebuilt.size}, root {rebuilt.root().hex()[:16]}...)"
        )
    if report.newest_size and state.size >= report.newest_size:
        newest = checkpoints[report.newest_size]
        try:
            proof = await consistency_proof(tree, newest.size, state.size)
            verify_consistency(newest.size, state.size, newest.root_hash, state.edge.root(), proof)
        except (InvalidProof, MissingNodes, ValueError) as error:
            report.broken.append(
                f"stored tree: not consistent with the newest checkpoint (size {newest.size}): {error}"
            )
    return report
