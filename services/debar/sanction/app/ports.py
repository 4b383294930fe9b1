"""What the sanction service's use cases need from the world outside them: storage, the local spool, the archive.
The use cases reach adapters through these alone; the Redis and file adapters implement them (wired by
adapters/redis_wiring.py), and unit tests pass in-memory ones (tests/support/memory.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from debar.sanction.domain.decision_seals import SealedDecisions
from debar.sanction.domain.decisions import Decision, LoggedCheck, SpooledDecision
from debar.sanction.domain.log_entries import RegistryEntry
from debar.sanction.domain.log_records import LogEntry
from debar.sanction.domain.model import Exemption, IndexChange, IndexEntry, Outcome, Restriction, SubjectRef
from debar.sanction.domain.objections import Listed, ListingCursor, Objection, ObjectionState
from debar.sanction.domain.watch import Subscription, Told
from debar.tlog.compact import CompactRange
from debar.tlog.merkle import NodeId
from debar.tlog.nodes import MissingNodes
from debar.tlog.note import Note


class StoreUnavailable(Exception):
    """Storage did not answer in time or at all."""


class StaleWrite(Exception):
    """A record a write replaces changed after the write was made from it (another write came between): nothing of
    the write was stored on the record's node, and the write is to be made again from the record as it is now."""


class NodesArchived(MissingNodes):
    """A node a proof needs lies in a level-0 tile moved out of the store to the archive (`debar log archive`)."""


class NotReplicated(StoreUnavailable):
    """A write reached the primary but too few replicas confirmed it in time: it must not be acknowledged (a
    failover could lose it), so it counts as storage that did not answer."""


# -- restrictions and checks --------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class RateAsk:
    """One call's checked items to count against its caller's rate, counted by the store in the same call that
    decides them (one round trip). The store sets `tried` before it calls and `count` (the window's count, these
    items included) once counted; past `limit` the call's checks are not decided: the call is refused."""

    key: str  # Grant.rate_key
    window: int
    window_s: int
    cost: int
    limit: int
    fail_closed: bool = False  # DEBAR_RATE_LIMITER_FAILURE=closed: a store that did not count answers nothing
    tried: bool = False
    count: int | None = None

    @property
    def refused(self) -> bool:
        return self.count is not None and self.count > self.limit


DecisionNames = Callable[[str, str, int], list[str]]
"""The ids decisions are known by outside (DecisionIds.of_record): of the first `count` decisions of a log record,
given its stream id and its stream's bucket."""


class Decider(Protocol):
    """Decides checks and logs them, in one store call. `rates`: empty, or one per check (the same RateAsk for the
    checks of one call, None for a call without a rate); the checks of a call its rate refuses are not decided,
    and the decisions returned are those of the others, in order. `names`: what to name the decisions (their
    external ids, made as each is built: one Decision a check); without it, by their place in the log
    (decisions.decision_id)."""

    async def decide(
        self,
        checks: Sequence[LoggedCheck],
        catalogue_version: str,
        rates: Sequence[RateAsk | None] = (),
        names: DecisionNames | None = None,
    ) -> list[Decision]: ...


@dataclass(frozen=True, slots=True)
class Sequenced:
    """A registry write's log entry (domain/log_entries.py), sequenced by the store in the same script call as the
    write: into the stream of `bucket` (the subject's), and into the history of `target` (the record's id). The
    store keeps it compactly (texts by ref); read back, its canonical bytes are the same as `entry.encode()`."""

    bucket: str
    entry: RegistryEntry
    target: str


class RestrictionStore(Protocol):
    async def ping(self) -> None: ...
    async def revision(self) -> int: ...
    async def bump_revision(self) -> int: ...
    async def decide(
        self,
        checks: Sequence[LoggedCheck],
        catalogue_version: str,
        rates: Sequence[RateAsk | None] = (),
        names: DecisionNames | None = None,
    ) -> list[Decision]: ...
    async def index_entries(self, subject: SubjectRef) -> list[IndexEntry]: ...
    async def index_entries_many(self, subjects: Sequence[SubjectRef]) -> list[list[IndexEntry]]: ...
    async def apply_index(self, changes: Sequence[IndexChange]) -> int: ...
    async def get_restrictions(self, ids: Sequence[str]) -> list[Restriction | None]: ...
    async def put_restriction(self, restriction: Restriction) -> None: ...
    async def write_restrictions(
        self,
        restrictions: Sequence[Restriction],
        replacing: Sequence[Restriction | None],
        changes: Sequence[IndexChange],
        log: Sequence[Sequenced] = (),
    ) -> int:
        """Records, their index changes and their log entries together (one script call per node): how many index
        entries changed. Each record is stored only over `replacing`'s (None: none stored), the record it was made
        from: else StaleWrite, and nothing is written on the records' node."""
        ...

    async def write_exemption(
        self,
        exemption: Exemption,
        replacing: Exemption | None,
        changes: Sequence[IndexChange],
        log: Sequence[Sequenced] = (),
    ) -> int:
        """A permit, its index change and its log entry, in one script call (all in the subject's slot), only over
        `replacing` (None: no permit stored under its id): else StaleWrite, and nothing is written."""
        ...

    async def registry_history(self, bucket: str, target: str) -> list[tuple[str, bytes]]:
        """The log entries of the registry writes to `target` (a restriction or exemption id whose subject is in
        `bucket`), oldest first, each with its stream id; those archived out of Redis are not among them."""
        ...

    async def get_exemption(self, subject: SubjectRef, exemption_id: str) -> Exemption | None: ...
    async def put_exemption(self, exemption: Exemption) -> None: ...
    async def add_import_counts(self, counts: Mapping[str, int]) -> None: ...
    async def import_counts(self) -> dict[str, int]: ...


class LoggedTexts(Protocol):
    """What reading a logged decision needs from the restriction store: the texts its entries name by ref (see
    domain/entries.py), and the decision ids replayed spool entries got."""

    async def resolve_texts(self, refs: Sequence[str]) -> dict[str, str]: ...
    async def replayed_decision_id(self, bucket: str, spooled_id: str) -> str | None: ...


class Replayer(Protocol):
    """Moves spooled decisions into the log (idempotent); how many it appended."""

    async def replay(self, spooled: Sequence[SpooledDecision], catalogue_version: str) -> int: ...


class Store(RestrictionStore, LoggedTexts, Replayer, Protocol):
    """The restriction store as the bootstrap is given it; each use case takes the part it needs."""


class RateCounterUnavailable(Exception):
    """The rate counters did not answer: the limiter fails open (counted), since the check that follows fails
    closed on the same Redis anyway."""


class RateCounter(Protocol):
    async def add(self, caller: str, window: int, window_s: int, cost: int) -> int:
        """Adds `cost` to the caller's count in fixed window number `window`; the new count. Raises
        RateCounterUnavailable."""
        ...


class SubjectTally(Protocol):
    """How many distinct subjects each caller checked or read, per hour, across every replica (estimated: a
    HyperLogLog per caller and hour in Redis). Kept two hours."""

    async def add(self, hour: int, seen: Mapping[str, Sequence[str]]) -> None:
        """Adds, for each caller (a rate key), the pseudonyms it touched in `hour`. Raises StoreUnavailable."""
        ...

    async def counts(self, hour: int) -> dict[str, int]:
        """Each caller seen in `hour` -> its estimated distinct subjects. Raises StoreUnavailable."""
        ...


# -- the decision log, its archive, the spool ---------------------------------------------------------------


class DecisionLog(Protocol):
    """The decision log as the readers and the archiver see it: a stream of records per bucket (the Merkle log
    reads the same streams through SequencedLog)."""

    async def get(self, bucket: str, stream_id: str) -> LogEntry | None: ...
    async def ids_for_subject(self, bucket: str, pseudonyms: Sequence[str], offset: int, count: int) -> list[str]: ...
    async def buckets(self) -> list[str]: ...
    async def archived_to(self, bucket: str) -> str:
        """The stream id of the last record archived out of the bucket's stream ("" if none)."""
        ...

    def stream(self, bucket: str) -> str:
        """The bucket's stream, as SequencedLog names it."""
        ...

    async def trim(self, bucket: str, first_id: str, last_id: str) -> int: ...
    async def forget_archived(self, bucket: str, records: Sequence[LogEntry]) -> int:
        """Drops the decisions of `records` (trimmed from the bucket's stream) from their subjects' decision lists
        (ListDecisions lists what Redis holds; the archive keeps the rest); returns how many list items went."""
        ...

    def walk(self, bucket: str, page: int = 1000) -> AsyncIterator[LogEntry]: ...


@runtime_checkable
class ListedDecisions(Protocol):
    """For `debar log verify`: the decisions held in the buckets' streams that are on no decision list of their
    subject (ListDecisions and the console list only what the lists hold)."""

    def unlisted(self) -> AsyncIterator[tuple[str, str, int]]:
        """(stream, record id, index in the record) of each such decision."""
        ...


@runtime_checkable
class StoredRecords(Protocol):
    """The registry's records as held now, for `debar log verify` to hold them to their logged history."""

    def stored_records(self) -> AsyncIterator[Restriction | Exemption]: ...


@dataclass(frozen=True)
class SequencedRecord:
    """One record of a sequencing stream, as the log integrator reads it: its entries' canonical bytes
    (domain/log_entries.py), in order; each becomes one Merkle leaf."""

    stream: str  # the stream's name (a Redis key: SequencedLog.streams)
    record_id: str  # the record's stream id, "<ms>-<seq>", increasing within the stream
    entries: tuple[bytes, ...]
    # Per entry, its writer's signature (tlog/entry_signature.py), "" for none; () when none is signed (decisions).
    # Not under the tree: `debar log verify` checks each against the entry bytes, which are.
    signatures: tuple[str, ...] = ()
    # An import's chunk (one record of many registry entries, field `rs`): its writer's signature over the chunk's
    # entries, in order (tlog/entry_signature.py: sign_chunk), "" for none; None for any other record.
    chunk_signature: str | None = None
    # Why the record could not be read as entries, "" when it could: then `entries` is its one opaque entry
    # (domain/log_entries.py: unreadable_entry), integrated as any other and named by `debar log verify`.
    unreadable: str = ""
    # A decision record's questions and seals (domain/decision_seals.py), None for any other record. Not under the
    # tree: `debar log verify` checks the seals against the questions, which the entries hold.
    sealed: SealedDecisions | None = None


class SequencedLog(Protocol):
    """Every sequencing stream: decisions (one stream per bucket), registry writes, objection steps, rekey runs.
    Each change or reveal of the record is sequenced in one of them in the same script call that makes it; the
    integrator (app/integrator.py) reads them into the Merkle tree."""

    async def streams(self) -> list[str]:
        """Every sequencing stream that exists now, sorted."""
        ...

    async def read_after(self, stream: str, after: str, count: int) -> list[SequencedRecord]:
        """Up to `count` records of `stream` with ids after `after` ("" = from the start), oldest first."""
        ...

    async def read_after_many(self, after: Mapping[str, str], count: int) -> dict[str, list[SequencedRecord]]:
        """read_after for many streams at once (stream -> cursor, "" = from the start), in as few round trips as
        the store allows (Redis: pipelined), so that the integrator's poll of every stream costs one connection,
        not one per stream."""
        ...

    async def read(self, stream: str, record_id: str) -> SequencedRecord | None: ...

    async def locate(self, decision_id: str) -> tuple[str, str, int] | None:
        """Where the decision with this external id is: (stream, record id, entry index); None when no such
        decision (a malformed, guessed or unknown id)."""
        ...


class Archive(Protocol):
    """Decision-log records past their retention, kept outside Redis, per bucket, oldest first."""

    def write(self, bucket: str, records: list[LogEntry]) -> object:
        """Durable before it returns: only then may the log forget the records."""
        ...

    def buckets(self) -> list[str]: ...
    def read(self, bucket: str) -> list[LogEntry]: ...
    def write_tiles(self, tiles: Mapping[int, bytes]) -> object:
        """Full level-0 tiles of the Merkle tree (tile number -> its 256 leaf hashes); durable before it returns."""
        ...

    def read_tiles(self) -> dict[int, bytes]:
        """Every archived level-0 tile by number."""
        ...

    def write_order(self, first: int, records: Sequence[IntegratedRecord]) -> object:
        """Leaf-order items numbered from `first`; durable before it returns (a run repeated after a crash may
        write the same items again)."""
        ...

    def read_order(self) -> list[IntegratedRecord]:
        """Every archived leaf-order item, from item 0, with no gap (raises ValueError otherwise)."""
        ...


class Spool(Protocol):
    """Fail-open decisions made while the log could not be written, kept locally until replayed."""

    def append(self, decisions: list[SpooledDecision]) -> None:
        """Durable before it returns; raises OSError when it cannot be written."""
        ...

    def pending_files(self) -> list[Path]: ...
    def read(self, path: Path) -> list[SpooledDecision]: ...
    def done(self, path: Path) -> None: ...


# -- objections ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Written:
    """What an objection store write did: `done` False means nothing was written and `objection` is the one found
    instead (the decision's existing objection, or the record as changed meanwhile by another request)."""

    done: bool
    objection: Objection | None
    cleared: tuple[str, ...] = ()  # restrictions no open objection disputes any more


class ObjectionStore(Protocol):
    """Objections, their state indexes, the count of open objections disputing each restriction, and the
    log of their transitions (a sequencing stream); each write is atomic."""

    async def file(self, objection: Objection) -> Written: ...
    async def move(self, new: Objection, old: Objection) -> Written: ...
    async def update(self, new: Objection, old: Objection) -> Written: ...
    async def get(self, objection_id: str) -> Objection | None: ...
    async def disputing(self, restriction_ids: Sequence[str]) -> list[int]: ...
    async def counted(self, state: ObjectionState, due_before: int | None) -> int: ...
    async def listed(
        self, states: Sequence[ObjectionState], due_before: int | None, limit: int, after: ListingCursor | None = None
    ) -> list[Listed]: ...


# -- subscriptions (WatchService) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Due:
    """A subject the schedule says to judge now, claimed (`claim`: the score its claim set, handed back to `done`)."""

    subject: SubjectRef
    claim: str


class WriteWatch(Protocol):
    """What a registry write tells the subscriptions (app/watch.py WatchHook): the subjects it touches, before and
    after it is stored."""

    async def before(self, subjects: Sequence[SubjectRef]) -> None: ...
    async def after(self, subjects: Sequence[SubjectRef]) -> None: ...


class WatchStore(Protocol):
    """Subscriptions (each expiring at its `until`), the per-subject sets that find them from a registry write, the
    schedule of subjects to judge (touched by a write, or a validity window opening or closing), and each owner's
    stream of changes told (kept DEBAR_WATCH_RETENTION_DAYS)."""

    async def hold(self, subscriptions: Sequence[Subscription]) -> None:
        """Puts them in their subjects' sets (first: a write from then on finds them)."""
        ...

    async def release(self, subscriptions: Sequence[Subscription]) -> None:
        """Takes them out of their subjects' sets again (not stored after all)."""
        ...

    async def add(self, owner: str, subscriptions: Sequence[Subscription], quota: int, now: int) -> int | None:
        """Stores them all, or none when the owner would hold more than `quota`: then how many it holds."""
        ...

    async def remove(self, owner: str, subscription_id: str, now: int) -> bool: ...
    async def held(self, owner: str, now: int) -> int: ...
    async def subscriptions_of(self, subject: SubjectRef, now: int) -> tuple[list[Subscription], bool]:
        """The subject's live subscriptions, and whether one held in its set is not stored yet (being made)."""
        ...

    async def watched(self, subjects: Sequence[SubjectRef]) -> list[SubjectRef]:
        """Those of `subjects` some live subscription may hold (the rest cost one lookup each, nothing more)."""
        ...

    async def schedule(self, subjects: Sequence[SubjectRef], at: float, *, earlier_only: bool = False) -> None:
        """Judge them at `at` (`earlier_only`: unless already due sooner)."""
        ...

    async def claim(self, now: float, lease_s: float, limit: int) -> list[Due]: ...
    async def done(self, due: Due, next_at: int | None, now: float) -> None:
        """Judged: next at `next_at` (None: not until touched), if the claim still holds; else (touched since, or
        claimed again by another server) judged once more at `now` or sooner."""
        ...

    async def tell(self, subscription: Subscription, measure: str, told: Outcome, now_told: Outcome, change: Told,
                   retention_s: int) -> str | None:  # fmt: skip
        """Appends the change to the owner's stream and records `now_told` as last told, if `told` still is (and
        the subscription still exists): the cursor, else None."""
        ...

    async def changes(self, owner: str, after: str, limit: int) -> list[Told]:
        """The owner's changes after cursor `after` ("": from the oldest kept), oldest first."""
        ...


# -- re-keying ----------------------------------------------------------------------------------------------


@dataclass
class RekeyCounts:
    index_fields: int = 0
    records: int = 0
    exemptions: int = 0
    decision_lists: int = 0
    subscriptions: int = 0  # subjects' subscription sets moved (WatchService)
    raced: int = 0  # records changed by someone else while being re-keyed: the next run takes them


class Rekeyer(Protocol):
    """Moves every stored pseudonym not under the current key to it (`forward`)."""

    async def run(self, is_current: Callable[[str], bool], forward: Callable[[str], str]) -> RekeyCounts: ...
    async def sequence(self, entry: bytes) -> None:
        """Appends a run's log entry (domain/log_entries.py: RekeyEntry) to the operations stream."""
        ...


class WitnessFailureKind(StrEnum):
    """Why a witness gave no cosignature (a label of debar_log_witness_failures_total)."""

    UNREACHABLE = "unreachable"  # no connection: the witness is down, or the address is wrong
    TIMEOUT = "timeout"  # no complete answer within DEBAR_LOG_WITNESS_TIMEOUT_S
    REFUSED = "refused"  # an HTTP error status: 400, 403, 404, 422 (not consistent: a fork?), 5xx, ...
    CONFLICT = "conflict"  # 409 even after retrying from the size the witness named, or a size beyond ours
    BAD_ANSWER = "bad_answer"  # a 200 without a valid cosignature from the witness's key, or an unreadable 409
    NO_PROOF = "no_proof"  # the log could not make the consistency proof the witness needs


@dataclass(frozen=True)
class WitnessFailure:
    witness: str  # the witness's key name
    kind: WitnessFailureKind
    detail: str  # one line for logs and health details
    status: int | None = None  # the HTTP status, when the witness answered


@dataclass(frozen=True)
class Cosigning:
    """The outcome of asking every witness about one checkpoint: the note with each cosignature that verified,
    who cosigned, and one failure for every witness that did not (never left out)."""

    note: Note
    cosigned_by: tuple[str, ...]
    failures: tuple[WitnessFailure, ...]


# The consistency proof from the log's tree of the given size to the checkpoint being cosigned.
ProofFrom = Callable[[int], Awaitable[Sequence[bytes]]]


class Witnesses(Protocol):
    """The witnesses the log asks (DEBAR_LOG_WITNESSES), c2sp.org/tlog-witness."""

    async def cosign(self, note: Note, old_size: int, proof_from: ProofFrom) -> Cosigning:
        """Asks every witness to cosign `note` (the log's signed checkpoint), each from the size it last cosigned:
        the one this client saw it cosign, else `old_size` (the log's previous checkpoint); a witness that answers
        409 with another size is asked once more from that size, with `proof_from(size)`. Never raises for a
        witness's fault: each one that gives no cosignature is a WitnessFailure."""
        ...


# -- the Merkle tree over the sequenced log (integrator, proofs, verification) ------------------------------


class LeaseLost(Exception):
    """The integrator's lease is held by someone else (or expired): it must not write the tree."""


class TreeConflict(Exception):
    """The stored tree is not the size this integrator expected: another one extended it meanwhile."""


@dataclass(frozen=True, slots=True)
class IntegratedRecord:
    """A sequenced record's entries in the tree: leaves first_leaf .. first_leaf + count - 1, in entry order."""

    stream: str
    record_id: str
    first_leaf: int
    count: int


@dataclass(frozen=True)
class TreeState:
    """What the integrator resumes from: the tree's edge (its size and root) and, per stream, the last record id
    it integrated."""

    edge: CompactRange
    cursors: Mapping[str, str]

    @property
    def size(self) -> int:
        return self.edge.size


@dataclass(frozen=True)
class TreeGrowth:
    """One commit: the tree grows from `old_size` to `edge.size` by the leaves of `records` (in order); `nodes`
    are the nodes those leaves completed (the store keeps the levels it keeps); `cursors` the streams moved on."""

    old_size: int
    edge: CompactRange
    nodes: Sequence[tuple[NodeId, bytes]]
    records: Sequence[IntegratedRecord]
    cursors: Mapping[str, str]


class TreeStore(Protocol):
    """The tree's state, its nodes and the leaf order, in the same store as the sequenced log (Redis: one slot,
    `{tlog}`), written only by the integrator that holds the lease, each commit checked against the size it
    expected (so two integrators can never fork the tree or append twice). `levels_kept`: the levels it stores
    are the multiples of it (1: every node); a commit's other nodes need not be given."""

    @property
    def levels_kept(self) -> int: ...

    async def hold_lease(self, owner: str, ttl_ms: int) -> bool:
        """Takes the lease, or renews it if `owner` holds it; False while another owner does."""
        ...

    async def release_lease(self, owner: str) -> None: ...
    async def state(self) -> TreeState: ...
    async def commit(self, owner: str, growth: TreeGrowth) -> None:
        """Atomic; raises LeaseLost or TreeConflict (then nothing was written)."""
        ...

    async def read_nodes(self, nodes: Sequence[NodeId]) -> list[bytes]:
        """The hashes of nodes whose leaves all exist (raises tlog.nodes.MissingNodes for one not stored)."""
        ...

    async def first_leaf(self, stream: str, record_id: str) -> int | None:
        """The leaf index of the record's first entry; None before it is integrated."""
        ...

    async def records(self, start: int, count: int) -> list[IntegratedRecord]:
        """The integrated records in leaf order, from the `start`-th record (numbered in the whole leaf order),
        or from the first still stored (`order_base`) if that is later: those before it are in the archive."""
        ...

    async def order_base(self) -> int:
        """How many leaf-order items were moved to the archive (`forget_order`): the archive run's cursor."""
        ...

    async def unarchived(self) -> list[IntegratedRecord]:
        """The records before `order_base` that were not archived when the archive run passed them, in leaf
        order: what keeps their tiles (and their leaf index) in the store."""
        ...

    async def forget_order(
        self, base: int, moved: int, archived: Sequence[IntegratedRecord], kept: Sequence[IntegratedRecord]
    ) -> int:
        """Atomically: drops the first `moved` leaf-order items (once they are in the archive files) and moves
        `order_base` from `base` past them, forgets the leaf index of the `archived` records (and drops them
        from `unarchived`), and keeps the `kept` ones in `unarchived`. Raises TreeConflict (nothing changed) if
        `order_base` is not `base`. Returns `moved`."""
        ...

    async def leaf_hashes(self, start: int, end: int) -> list[bytes | None]:
        """The leaf hashes [start, end), None for each not stored (beyond the tree, lost, or archived)."""
        ...

    async def tiles(self, tiles: Sequence[int]) -> list[bytes | None]:
        """Level-0 tiles (up to 256 leaf hashes of 32 bytes each, concatenated), None for each not stored."""
        ...

    async def archived_tiles(self) -> set[int]:
        """The level-0 tiles moved to the archive (`forget_tiles`)."""
        ...

    async def forget_tiles(self, tiles: Sequence[int]) -> int:
        """Marks the full level-0 tiles archived and removes them, atomically (only once they are in the archive
        files); raises TreeConflict (nothing changed) if one is not full. Returns how many were removed."""
        ...

    async def latest_checkpoint(self) -> bytes | None: ...
    async def put_checkpoint(self, owner: str, size: int, note: bytes) -> None:
        """Keeps `note` as the latest signed checkpoint (unless one of a larger size is kept); raises LeaseLost."""
        ...


class CheckpointStore(Protocol):
    """Every signed checkpoint, kept outside the store the tree lives in (a local directory, meant to be backed by
    write-once storage): an insider who rewrites Redis cannot rewrite these."""

    def append(self, note: bytes) -> None:
        """Durable before it returns; never replaces a stored checkpoint."""
        ...

    def latest(self) -> bytes | None:
        """The stored checkpoint of the largest size (the last stored of those)."""
        ...

    def all(self) -> list[bytes]:
        """Every stored checkpoint, smallest size first."""
        ...


# -- the set the bootstrap wires ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Adapters:
    """Every port the sanction core is built from, sharing one backend: Redis and files in the service and the
    CLI (adapters/redis_wiring.py), memory in unit tests. `close` releases the backend's connections."""

    store: Store
    decision_log: DecisionLog
    objection_store: ObjectionStore
    rate_counter: RateCounter
    subject_tally: SubjectTally
    rekeyer: Rekeyer
    spool: Spool
    archive: Archive
    close: Callable[[], Awaitable[None]]
    # The Merkle log: the sequencing streams, the tree over them, the signed checkpoints kept outside the store.
    sequenced_log: SequencedLog
    tree: TreeStore
    checkpoints: CheckpointStore
    # Raises StoreUnavailable (NotReplicated) unless a write now reaches the replicas acknowledged writes need
    # (health); None: no replicas to wait for.
    replicas_confirm: Callable[[], Awaitable[None]] | None = None
    # How many writes so far were refused because too few replicas confirmed them (DEBAR_REDIS_MIN_REPLICAS; the
    # metric debar_writes_unreplicated); None: not counted (memory).
    writes_unreplicated: Callable[[], int] | None = None
    watch_store: WatchStore | None = None  # None: no WatchService (e.g. a CLI command)
