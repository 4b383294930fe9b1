"""The sanction core's ports in memory, for unit tests of the use cases without Redis or gRPC. A test double, held
to what the Redis adapters do where a use case can tell: checks are decided by the domain rule
(domain/rules.py:evaluate), each store call that decides appends one record to the stream of its first item's
bucket (decision locations `<record>-<bucket>-<index>`, shown as external ids and readable back through the
DecisionReader), writes bump the revision only when the use case says so, index entries keep Redis's order
(a replaced entry moves last), objections list soonest deadline first, ties by id.

Not a second implementation to trust: the integration tests hold the real adapters to the same behaviour.

    backend = MemoryBackend(clock)
    core = build_core(backend.adapters(), catalogue, resolver, clock=clock)
    backend.down = True   # every store call raises StoreUnavailable (the rate counter RateCounterUnavailable)
    backend.spool.broken = True   # the spool cannot be written (OSError)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from debar.sanction.app.ports import (
    Adapters,
    DecisionNames,
    IntegratedRecord,
    RateCounterUnavailable,
    RekeyCounts,
    Sequenced,
    StaleWrite,
    StoreUnavailable,
    Written,
)
from debar.sanction.domain import four_eyes
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decisions import Decision, LoggedCheck, SpooledDecision, decision_id
from debar.sanction.domain.entries import ENTRY_SEP, encode_entry, entry_key
from debar.sanction.domain.log_records import DECISION_FS, DECISION_SEP, LogEntry, decisions_of
from debar.sanction.domain.model import (
    Exemption,
    IndexChange,
    IndexEntry,
    Restriction,
    SubjectRef,
)
from debar.sanction.domain.objections import Listed, ListingCursor, Objection, ObjectionState
from debar.sanction.domain.rules import evaluate
from tests.support.memory_tlog import MemoryCheckpoints, MemorySequencedLog, MemoryTreeStore

Clock = Callable[[], float]


class _Switch:
    """Shared by every part of one backend: a Redis that is down is down for all of them."""

    def __init__(self) -> None:
        self.down = False

    def answer(self) -> None:
        if self.down:
            raise StoreUnavailable("memory backend: down")


class _Stream:
    """A stream's ids as XADD * picks them: the clock's milliseconds, never before the last id (same millisecond:
    next sequence number)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._last = (0, -1)

    def append(self, entries: list[LogEntry], fields: dict[str, str]) -> str:
        ms, seq = int(self._clock() * 1000), 0
        if ms <= self._last[0]:
            ms, seq = self._last[0], self._last[1] + 1
        self._last = (ms, seq)
        stream_id = f"{ms}-{seq}"
        entries.append(LogEntry(stream_id, fields))
        return stream_id


def _order(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


def _newest_first_key(decision: str) -> tuple[int, int, str, int]:
    """As the Redis decision log orders a subject's decision ids across pseudonyms."""
    ms, seq, bucket, index = decision.split("-")
    return int(ms), int(seq), bucket, int(index)


def _rekey_order(decision: str) -> tuple[int, int, int]:
    """As the rekey script sorts merged decision lists (spooled ids `S<ms>-<token>-<bucket>` included)."""
    parts = decision.lstrip("S").split("-")
    seq = int(parts[1]) if parts[1].isdigit() else 0
    return int(parts[0]), seq, int(parts[3]) if len(parts) > 3 else 0


class MemoryDecisionLog:
    """The buckets' streams, and each subject's decision locations, newest first."""

    def __init__(self, switch: _Switch, clock: Clock) -> None:
        self._switch = switch
        self._clock = clock
        self.chains: dict[str, list[LogEntry]] = {}
        self.tiles: dict[int, bytes] = {}
        self._streams: dict[str, _Stream] = {}
        self._bases: dict[str, str] = {}
        self.subject_decisions: dict[tuple[str, str], list[str]] = {}  # (bucket, pseudonym) -> ids, newest first

    def append(self, bucket: str, catalogue_version: str, decisions: list[str], spooled: list[str]) -> str:
        stream = self._streams.setdefault(bucket, _Stream(self._clock))
        fields = {"cat": catalogue_version, "d": DECISION_SEP.join(decisions)}
        if spooled:
            fields["sp"] = DECISION_SEP.join(spooled)
        return stream.append(self.chains.setdefault(bucket, []), fields)

    def remember(self, subject: SubjectRef, decision: str) -> None:
        self.subject_decisions.setdefault((subject.bucket, subject.pseudonym), []).insert(0, decision)

    async def get(self, bucket: str, stream_id: str) -> LogEntry | None:
        self._switch.answer()
        return next((e for e in self.chains.get(bucket, []) if e.stream_id == stream_id), None)

    async def ids_for_subject(self, bucket: str, pseudonyms: Sequence[str], offset: int, count: int) -> list[str]:
        self._switch.answer()
        ids = [i for p in pseudonyms for i in self.subject_decisions.get((bucket, p), [])[: offset + count]]
        ids.sort(key=_newest_first_key, reverse=True)
        return ids[offset : offset + count]

    async def buckets(self) -> list[str]:
        self._switch.answer()
        return sorted(self.chains)

    def stream(self, bucket: str) -> str:
        return f"log:{bucket}"

    async def archived_to(self, bucket: str) -> str:
        self._switch.answer()
        return self._bases.get(bucket, "")

    async def trim(self, bucket: str, first_id: str, last_id: str) -> int:
        self._switch.answer()
        entries = self.chains.get(bucket, [])
        if not entries or entries[0].stream_id != first_id:
            return -1
        kept = [e for e in entries if _order(e.stream_id) > _order(last_id)]
        self.chains[bucket] = kept
        self._bases[bucket] = last_id
        return len(entries) - len(kept)

    async def forget_archived(self, bucket: str, records: Sequence[LogEntry]) -> int:
        self._switch.answer()
        gone = {decision_id(r.stream_id, bucket, i) for r in records for i in range(len(decisions_of(r)))}
        removed = 0
        for key, ids in self.subject_decisions.items():
            kept = [i for i in ids if i not in gone]
            removed += len(ids) - len(kept)
            self.subject_decisions[key] = kept
        return removed

    async def walk(self, bucket: str, page: int = 1000) -> AsyncIterator[LogEntry]:
        self._switch.answer()
        for entry in list(self.chains.get(bucket, [])):
            yield entry


def _unchecked_allow(check: LoggedCheck) -> str:
    q = check.query
    fields = (
        check.logged_caller,
        str(check.revision),
        q.subject.kind.value,
        q.subject.pseudonym,
        q.measure.code,
        "ALLOW",
    )
    return DECISION_FS.join((*fields, str(q.at), "", ""))


class MemoryStore:
    """Restrictions, the subject index, exemptions, the revision and the import counts; decides checks with the
    domain rule and logs them in the decision log."""

    def __init__(self, switch: _Switch, log: MemoryDecisionLog) -> None:
        self._switch = switch
        self._log = log
        self.revision_value = 0
        self.restrictions: dict[str, Restriction] = {}
        self.index: dict[tuple[str, str], dict[str, IndexEntry]] = {}  # (bucket, pseudonym) -> entry key -> entry
        self.exemptions: dict[tuple[str, str], Exemption] = {}  # (bucket, exemption id)
        self._imports: dict[str, int] = {}
        self._refs: dict[str, str] = {}  # text -> ref
        self._texts: dict[str, str] = {}  # ref -> text
        self._replayed: dict[str, dict[str, str]] = {}  # bucket -> spool id -> decision id
        # As the Redis store gives the check script (four eyes over permits granted alone), for the packaged catalogue.
        self._alone_overrides = four_eyes.one_identity_sources(load_default_catalogue())
        self.registry_log: list[Sequenced] = []  # every registry write's entry, in order
        self._history: dict[tuple[str, str], list[tuple[str, bytes]]] = {}  # (bucket, target) -> (id, entry)

    # -- revision and counts ---------------------------------------------------------------------------------

    async def ping(self) -> None:
        self._switch.answer()

    async def revision(self) -> int:
        self._switch.answer()
        return self.revision_value

    async def bump_revision(self) -> int:
        self._switch.answer()
        self.revision_value += 1
        return self.revision_value

    async def add_import_counts(self, counts: Mapping[str, int]) -> None:
        self._switch.answer()
        for result, n in counts.items():
            self._imports[result] = self._imports.get(result, 0) + n

    async def import_counts(self) -> dict[str, int]:
        self._switch.answer()
        return dict(self._imports)

    # -- checks ----------------------------------------------------------------------------------------------

    def _entries_of(self, subject: SubjectRef) -> list[IndexEntry]:
        """Under the current pseudonym and, during a key rotation, the previous one."""
        names = [n for n in (subject.pseudonym, subject.alias) if n]
        return [e for name in names for e in self.index.get((subject.bucket, name), {}).values()]

    def _packed(self, entries: Iterable[IndexEntry]) -> str:
        """Entries as the log keeps them (domain/entries.py), their texts under refs this store allocates."""
        listed = list(entries)
        for text in (t for e in listed for t in (e.source, e.legal_basis, e.authority) if t):
            if text not in self._refs:
                self._refs[text] = ref = f"m{len(self._refs)}"
                self._texts[ref] = text
        return ENTRY_SEP.join(encode_entry(e, self._refs) for e in listed)

    async def decide(
        self, checks: Sequence[LoggedCheck], catalogue_version: str, rates: Sequence[object] = (),
        names: DecisionNames | None = None,
    ) -> list[Decision]:  # fmt: skip
        if rates:
            raise NotImplementedError("the in-memory store counts no rates (tests of rates use Redis)")
        self._switch.answer()
        chain = checks[0].query.subject.bucket
        evaluations = [
            evaluate(self._entries_of(c.query.subject), c.query.measure.mask, c.query.at, self._alone_overrides)
            for c in checks
        ]
        records = []
        for check, e in zip(checks, evaluations, strict=True):
            q = check.query
            matched = (*e.grounds, *e.overridden)  # the script returns the covering restrictions either way
            fields = (
                check.logged_caller, str(check.revision), q.subject.kind.value, q.subject.pseudonym, q.measure.code,
                e.outcome.value, str(q.at), self._packed(matched), self._packed([e.exemption] if e.exemption else []),
            )  # fmt: skip
            records.append(DECISION_FS.join(fields))
        stream_id = self._log.append(chain, catalogue_version, records, [])
        decided_at_ms = _order(stream_id)[0]
        external = names(stream_id, chain, len(checks)) if names else None
        decisions = []
        for i, (check, e) in enumerate(zip(checks, evaluations, strict=True)):
            self._log.remember(check.query.subject, decision_id(stream_id, chain, i))
            decisions.append(
                Decision(
                    decision_id=external[i] if external else decision_id(stream_id, chain, i),
                    query=check.query,
                    outcome=e.outcome,
                    grounds=(*e.grounds, *e.overridden),
                    exemption=e.exemption,
                    decided_at_ms=decided_at_ms,
                    revision=check.revision,
                    catalogue_version=catalogue_version,
                )
            )
        return decisions

    async def replay(self, spooled: Sequence[SpooledDecision], catalogue_version: str) -> int:
        self._switch.answer()
        fresh: list[SpooledDecision] = []
        for s in spooled:
            done = self._replayed.setdefault(s.check.query.subject.bucket, {})
            if s.decision_id not in done and s.decision_id not in (f.decision_id for f in fresh):
                fresh.append(s)
        if not fresh:
            return 0
        chain = spooled[0].check.query.subject.bucket
        records = [_unchecked_allow(s.check) for s in fresh]  # the record's `sp` field says they were not checked
        spool_ids = [f"{s.decision_id}\x1f{s.decided_at_ms}" for s in fresh]
        stream_id = self._log.append(chain, catalogue_version, records, spool_ids)
        for i, s in enumerate(fresh):
            replayed_as = decision_id(stream_id, chain, i)
            self._replayed[s.check.query.subject.bucket][s.decision_id] = replayed_as
            self._log.remember(s.check.query.subject, replayed_as)
        return len(fresh)

    async def replayed_decision_id(self, bucket: str, spooled_id: str) -> str | None:
        self._switch.answer()
        return self._replayed.get(bucket, {}).get(spooled_id)

    async def resolve_texts(self, refs: Sequence[str]) -> dict[str, str]:
        self._switch.answer()
        return {r: self._texts[r] for r in refs if r in self._texts}

    # -- index -----------------------------------------------------------------------------------------------

    async def index_entries(self, subject: SubjectRef) -> list[IndexEntry]:
        self._switch.answer()
        return self._entries_of(subject)

    async def index_entries_many(self, subjects: Sequence[SubjectRef]) -> list[list[IndexEntry]]:
        self._switch.answer()
        return [self._entries_of(s) for s in subjects]

    def _apply(self, changes: Sequence[IndexChange]) -> int:
        """As lib/entries.lua: a put replaces the entry (moving it last), a drop removes it; how many changed."""
        changed = 0
        for c in changes:
            field = self.index.setdefault((c.subject.bucket, c.subject.pseudonym), {})
            key = entry_key(c.kind, c.entry_id, c.role)
            old = field.pop(key, None)
            if c.entry is not None:
                self._packed([c.entry])  # refuses what the packed form cannot hold, as the adapter does
                field[key] = c.entry
            changed += int(old != c.entry)
            if not field:
                del self.index[(c.subject.bucket, c.subject.pseudonym)]
        return changed

    async def apply_index(self, changes: Sequence[IndexChange]) -> int:
        self._switch.answer()
        return self._apply(changes)

    # -- records ---------------------------------------------------------------------------------------------

    async def get_restrictions(self, ids: Sequence[str]) -> list[Restriction | None]:
        self._switch.answer()
        return [self.restrictions.get(i) for i in ids]

    async def put_restriction(self, restriction: Restriction) -> None:
        self._switch.answer()
        self.restrictions[restriction.id] = restriction

    async def write_restrictions(
        self,
        restrictions: Sequence[Restriction],
        replacing: Sequence[Restriction | None],
        changes: Sequence[IndexChange],
        log: Sequence[Sequenced] = (),
    ) -> int:
        self._switch.answer()
        for r, old in zip(restrictions, replacing, strict=True):
            if self.restrictions.get(r.id) != old:  # as lua/write.lua: compare-and-set, nothing written
                raise StaleWrite(f"restriction {r.id} changed since it was read")
        self.restrictions.update((r.id, r) for r in restrictions)
        self._sequence(log)
        return self._apply(changes)

    async def write_exemption(
        self,
        exemption: Exemption,
        replacing: Exemption | None,
        changes: Sequence[IndexChange],
        log: Sequence[Sequenced] = (),
    ) -> int:
        self._switch.answer()
        if self.exemptions.get((exemption.subject.bucket, exemption.id)) != replacing:
            raise StaleWrite(f"exemption {exemption.id} changed since it was read")
        self.exemptions[(exemption.subject.bucket, exemption.id)] = exemption
        self._sequence(log)
        return self._apply(changes)

    def _sequence(self, log: Sequence[Sequenced]) -> None:
        for s in log:
            self.registry_log.append(s)
            self._history.setdefault((s.bucket, s.target), []).append((f"{len(self.registry_log)}-0", s.entry.encode()))

    async def registry_history(self, bucket: str, target: str) -> list[tuple[str, bytes]]:
        self._switch.answer()
        return list(self._history.get((bucket, target), []))

    async def get_exemption(self, subject: SubjectRef, exemption_id: str) -> Exemption | None:
        self._switch.answer()
        return self.exemptions.get((subject.bucket, exemption_id))

    async def put_exemption(self, exemption: Exemption) -> None:
        self._switch.answer()
        self.exemptions[(exemption.subject.bucket, exemption.id)] = exemption


class MemoryObjectionStore:
    """Objections as lua/objection.lua keeps them: compare-and-set on the stored record, one objection per
    decision, state indexes by listing order, open disputes per restriction, a hash-chained transition log."""

    def __init__(self, switch: _Switch, clock: Clock) -> None:
        self._switch = switch
        self.records: dict[str, Objection] = {}
        self._by_decision: dict[str, str] = {}
        self._indexes: dict[ObjectionState, dict[str, int]] = {s: {} for s in ObjectionState}
        self.disputes: dict[str, int] = {}
        self.transitions: list[LogEntry] = []
        self._stream = _Stream(clock)

    def _write(self, mode: str, new: Objection, old: Objection | None, delta: int) -> Written:
        if mode == "file":
            existing = self._by_decision.get(new.decision_id)
            if existing is not None:
                return Written(False, self.records.get(existing))
            self._by_decision[new.decision_id] = new.id
        else:
            current = self.records.get(new.id)
            if current is None:
                return Written(False, None)
            if current != old:
                return Written(False, current)
        self.records[new.id] = new
        if mode == "update":
            self._indexes[new.state][new.id] = new.listing_order
            return Written(True, new)
        self._indexes[old.state if old else new.state].pop(new.id, None)
        self._indexes[new.state][new.id] = new.listing_order
        cleared = []
        if delta:
            for rid in new.restriction_ids:
                self.disputes[rid] = self.disputes.get(rid, 0) + delta
                if self.disputes[rid] <= 0:
                    del self.disputes[rid]
                    cleared.append(rid)
        step = new.history[-1]
        fields = {
            "o": new.id, "d": new.decision_id, "f": step.from_state.value if step.from_state else "",
            "t": step.to_state.value, "a": step.actor, "r": step.reason, "at": str(step.at),
        }  # fmt: skip
        self._stream.append(self.transitions, fields)
        return Written(True, new, tuple(cleared))

    async def file(self, objection: Objection) -> Written:
        self._switch.answer()
        return self._write("file", objection, None, 1)

    async def move(self, new: Objection, old: Objection) -> Written:
        self._switch.answer()
        return self._write("move", new, old, 0 if new.is_open == old.is_open else (1 if new.is_open else -1))

    async def update(self, new: Objection, old: Objection) -> Written:
        self._switch.answer()
        return self._write("update", new, old, 0)

    async def get(self, objection_id: str) -> Objection | None:
        self._switch.answer()
        return self.records.get(objection_id)

    async def disputing(self, restriction_ids: Sequence[str]) -> list[int]:
        self._switch.answer()
        return [self.disputes.get(r, 0) for r in restriction_ids]

    async def counted(self, state: ObjectionState, due_before: int | None) -> int:
        self._switch.answer()
        return sum(1 for order in self._indexes[state].values() if due_before is None or order < due_before)

    async def listed(
        self, states: Sequence[ObjectionState], due_before: int | None, limit: int, after: ListingCursor | None = None
    ) -> list[Listed]:
        self._switch.answer()
        found = sorted(
            (order, oid)
            for state in states
            for oid, order in self._indexes[state].items()
            if (due_before is None or order < due_before)
            and (after is None or (order, oid) > (after.order, after.objection_id))
        )
        return [Listed(order, oid, self.records.get(oid)) for order, oid in found[:limit]]


class MemoryRateCounter:
    def __init__(self, switch: _Switch) -> None:
        self._switch = switch
        self.counts: dict[tuple[str, int], int] = {}

    async def add(self, caller: str, window: int, window_s: int, cost: int) -> int:
        if self._switch.down:
            raise RateCounterUnavailable("memory backend: down")
        self.counts[(caller, window)] = self.counts.get((caller, window), 0) + cost
        return self.counts[(caller, window)]


class MemorySubjectTally:
    def __init__(self, switch: _Switch) -> None:
        self._switch = switch
        self.seen: dict[tuple[int, str], set[str]] = {}

    async def add(self, hour: int, seen: Mapping[str, Sequence[str]]) -> None:
        if self._switch.down:
            raise StoreUnavailable("memory backend: down")
        for caller, pseudonyms in seen.items():
            self.seen.setdefault((hour, caller), set()).update(pseudonyms)

    async def counts(self, hour: int) -> dict[str, int]:
        self._switch.answer()
        return {caller: len(found) for (h, caller), found in self.seen.items() if h == hour}


class MemorySpool:
    """Fail-open decisions waiting for replay: an active batch, rotated into a pending one as the file spool
    rotates its file."""

    def __init__(self) -> None:
        self.broken = False
        self._active: list[SpooledDecision] = []
        self._pending: dict[Path, list[SpooledDecision]] = {}
        self._rotations = 0

    def append(self, decisions: list[SpooledDecision]) -> None:
        if self.broken:
            raise OSError("memory spool: broken")
        self._active += decisions

    def pending_files(self) -> list[Path]:
        if self._active:
            self._rotations += 1
            self._pending[Path(f"memory-spool/replay-{self._rotations:06d}.jsonl")] = self._active
            self._active = []
        return sorted(self._pending)

    def read(self, path: Path) -> list[SpooledDecision]:
        return list(self._pending.get(path, []))

    def done(self, path: Path) -> None:
        self._pending.pop(path, None)

    @property
    def waiting(self) -> list[SpooledDecision]:
        """Every decision not replayed yet, oldest first."""
        return [*(d for p in sorted(self._pending) for d in self._pending[p]), *self._active]


class MemoryArchive:
    def __init__(self) -> None:
        self.chains: dict[str, list[LogEntry]] = {}
        self.tiles: dict[int, bytes] = {}
        self.order: dict[int, IntegratedRecord] = {}

    def write(self, bucket: str, records: list[LogEntry]) -> str:
        self.chains.setdefault(bucket, []).extend(records)
        return f"memory-archive/{bucket}"

    def buckets(self) -> list[str]:
        return sorted(self.chains)

    def read(self, bucket: str) -> list[LogEntry]:
        return list(self.chains.get(bucket, []))

    def write_tiles(self, tiles: Mapping[int, bytes]) -> str:
        self.tiles.update(tiles)
        return "memory-archive/tile/0"

    def read_tiles(self) -> dict[int, bytes]:
        return dict(self.tiles)

    def write_order(self, first: int, records: Sequence[IntegratedRecord]) -> str:
        for i, record in enumerate(records, first):
            if self.order.setdefault(i, record) != record:
                raise ValueError(f"leaf-order item {i} differs")
        return "memory-archive/tile/order"

    def read_order(self) -> list[IntegratedRecord]:
        return [self.order[i] for i in range(len(self.order))]


class MemoryRekeyer:
    """Moves every stored pseudonym to the current key, as lua/rekey.lua does: index fields merged (an entry
    already under the new name wins), records and exemptions rewritten, decision lists merged newest first."""

    def __init__(self, switch: _Switch, store: MemoryStore, log: MemoryDecisionLog) -> None:
        self._switch = switch
        self._store = store
        self._log = log
        self.sequenced: list[bytes] = []  # each run's log entry

    async def sequence(self, entry: bytes) -> None:
        self._switch.answer()
        self.sequenced.append(entry)

    async def run(self, is_current: Callable[[str], bool], forward: Callable[[str], str]) -> RekeyCounts:
        self._switch.answer()
        counts = RekeyCounts()
        index = self._store.index
        for bucket, old in [k for k in index if not is_current(k[1])]:
            moved = index.pop((bucket, old))
            target = index.setdefault((bucket, forward(old)), {})
            target.update((k, e) for k, e in moved.items() if k not in target)
            counts.index_fields += 1

        def subject(ref: SubjectRef) -> SubjectRef:
            return replace(ref, pseudonym=forward(ref.pseudonym))

        for rid, r in list(self._store.restrictions.items()):
            principals = tuple(replace(p, subject=subject(p.subject)) for p in r.principals)
            moved_record = replace(r, subject=subject(r.subject), principals=principals)
            if moved_record != r:
                self._store.restrictions[rid] = moved_record
                counts.records += 1
        for key, x in list(self._store.exemptions.items()):
            if not is_current(x.subject.pseudonym):
                self._store.exemptions[key] = replace(x, subject=subject(x.subject))
                counts.exemptions += 1
        lists = self._log.subject_decisions
        for bucket, old in [k for k in lists if not is_current(k[1])]:
            merged = lists.pop((bucket, old)) + lists.get((bucket, forward(old)), [])
            lists[(bucket, forward(old))] = sorted(merged, key=_rekey_order, reverse=True)
            counts.decision_lists += 1
        return counts


class ManualClock:
    """Now, as the test says: share one between the backend and build_core so that stream ids, deadlines and
    default check times agree."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class MemoryBackend:
    """One "Redis" and the files beside it, in memory: every port of the sanction core."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._switch = _Switch()
        self.decision_log = MemoryDecisionLog(self._switch, clock)
        self.store = MemoryStore(self._switch, self.decision_log)
        self.objection_store = MemoryObjectionStore(self._switch, clock)
        self.rate_counter = MemoryRateCounter(self._switch)
        self.subject_tally = MemorySubjectTally(self._switch)
        self.rekeyer = MemoryRekeyer(self._switch, self.store, self.decision_log)
        self.spool = MemorySpool()
        self.archive = MemoryArchive()
        self.sequenced_log = MemorySequencedLog()
        self.tree = MemoryTreeStore(clock)
        self.checkpoints = MemoryCheckpoints()
        self.closed = False

    @property
    def down(self) -> bool:
        return self._switch.down

    @down.setter
    def down(self, value: bool) -> None:
        self._switch.down = value

    async def close(self) -> None:
        self.closed = True

    def adapters(self) -> Adapters:
        return Adapters(
            store=self.store,
            decision_log=self.decision_log,
            objection_store=self.objection_store,
            rate_counter=self.rate_counter,
            subject_tally=self.subject_tally,
            rekeyer=self.rekeyer,
            spool=self.spool,
            archive=self.archive,
            close=self.close,
            sequenced_log=self.sequenced_log,
            tree=self.tree,
            checkpoints=self.checkpoints,
        )
