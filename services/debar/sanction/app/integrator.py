"""The log integrator: extends the Merkle tree with the newly sequenced records, signs a checkpoint, asks the
witnesses to cosign it and stores it outside Redis. Runs as a task in every sanction server; a lease in the tree
store lets one work at a time, and each commit is checked against the size it read, so a second one (or one that
lost its lease while paused) can never fork the tree or append a record twice.

One step: read every stream's records after its cursor (streams in name order, records in stream order: the
order is deterministic and stored, leaf i -> stream, record, entry), hash the entries as leaves, commit the new
nodes, leaf order, cursors and edge in one call; then, when the tree grew past the last signed checkpoint, sign
one (origin: the signing key's name), ask the witnesses, append the cosigned note to the checkpoint store, and
keep it as the latest in the tree store for GetCheckpoint. A witness that gives no cosignature is counted and
shown in `health`, never silently skipped; the checkpoint is stored regardless.

On taking the lease it resumes from the stored tree, but only if that tree extends the newest checkpoint in the
checkpoint store (same root at that size, or a valid consistency proof from it): a tree in Redis older than a
checkpoint signed before, or not consistent with it, is refused (health `refused`, logged) and never extended;
the lease is kept, so no other replica extends that tree either."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from debar.sanction.app.log_proofs import consistency_proof
from debar.sanction.app.ports import (
    CheckpointStore,
    IntegratedRecord,
    LeaseLost,
    SequencedLog,
    SequencedRecord,
    StoreUnavailable,
    TreeConflict,
    TreeGrowth,
    TreeState,
    TreeStore,
    Witnesses,
    WitnessFailure,
    WitnessFailureKind,
)
from debar.tlog.checkpoint import Checkpoint, parse_checkpoint, sign_checkpoint
from debar.tlog.merkle import NodeId, leaf_hash
from debar.tlog.nodes import MissingNodes
from debar.tlog.note import Signer, parse_note
from debar.tlog.proofs import InvalidProof, verify_consistency

log = logging.getLogger("debar.integrator")

LEASE_MS = 5000
INTERVAL_S = 0.25  # between steps while nothing is pending: a decision is in a checkpoint well within a second
RECORDS_PER_STREAM = 1000  # per read; a stream with more is read on in the next step, right away
LEAVES_PER_STEP = 20000
STREAMS_PER_READ = 64  # streams read together (pipelined) until a step's worth of leaves is in hand
RETRY_COSIGN_S = 5.0
# How often the list of streams is asked for again (a keyspace scan on Redis): a stream that did not exist at the
# last look (a bucket's first record ever) waits up to this long; every known stream is read every step.
STREAMS_EVERY_S = 2.0
# How often the integrator holding the lease renews it (a write script, fsync'd and replicated, 4 times a second
# before): well inside LEASE_MS. Skipping a renewal is safe: every commit and checkpoint script checks the lease
# itself (LeaseLost), and a step after a pause longer than this renews first.
RENEW_EVERY_S = 1.0


class IntegratorState:
    STARTING = "starting"
    INTEGRATING = "integrating"  # holds the lease, the tree is sound
    STANDBY = "standby"  # another replica holds the lease
    UNAVAILABLE = "unavailable"  # the store does not answer
    REFUSED = "refused"  # the stored tree does not extend the newest stored checkpoint: never extended
    OFF = "off"  # DEBAR_LOG_INTEGRATOR=off: this replica never takes the lease; another one integrates


@dataclass
class IntegratorHealth:
    state: str = IntegratorState.STARTING
    detail: str = ""
    tree_size: int = 0
    checkpoint_size: int | None = None
    checkpoint_at: float | None = None
    cosigned_by: tuple[str, ...] = ()
    witness_failures: tuple[WitnessFailure, ...] = ()  # of the latest checkpoint
    failures: Counter[tuple[str, WitnessFailureKind]] = field(default_factory=Counter)  # since start
    leaves: int = 0  # integrated by this process
    unreadable: int = 0  # records integrated by this process as one opaque entry (SequencedRecord.unreadable)
    cpu_s: float = 0.0  # process CPU time spent in steps that integrated something

    @property
    def healthy(self) -> bool:
        return self.state not in (IntegratorState.REFUSED, IntegratorState.UNAVAILABLE)

    def details(self) -> dict[str, object]:
        """For health details and logs: plain values."""
        return {
            "state": self.state,
            "detail": self.detail,
            "tree_size": self.tree_size,
            "checkpoint_size": self.checkpoint_size,
            "cosigned_by": list(self.cosigned_by),
            "witness_failures": [f"{f.witness}: {f.kind.value}: {f.detail}" for f in self.witness_failures],
        }


def default_owner(pid: int | None = None) -> str:
    """host/pid/random: `pid` the server's (the integrator's own process may be a child of it), default this one."""
    return f"{socket.gethostname()}/{os.getpid() if pid is None else pid}/{secrets.token_hex(6)}"


class Integrator:
    def __init__(
        self,
        log: SequencedLog,
        tree: TreeStore,
        checkpoints: CheckpointStore,
        signer: Signer,
        witnesses: Witnesses,
        *,
        owner: str | None = None,
        lease_ms: int = LEASE_MS,
        records_per_stream: int = RECORDS_PER_STREAM,
        leaves_per_step: int = LEAVES_PER_STEP,
        streams_every_s: float = STREAMS_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._log = log
        self._tree = tree
        self._checkpoints = checkpoints
        self._signer = signer
        self._witnesses = witnesses
        self.owner = owner or default_owner()
        self._lease_ms = lease_ms
        self._per_stream = records_per_stream
        self._per_step = leaves_per_step
        self._streams_every_s = streams_every_s
        self._clock = clock
        self._state: TreeState | None = None  # as committed by this owner; None: read it again
        self._cursors: dict[str, str] = {}
        self._carry: dict[str, list[SequencedRecord]] = {}  # records read, not yet integrated (see _read_all)
        self._streams: list[str] | None = None
        self._streams_at = 0.0
        self._signed_size: int | None = None
        self._renewed_at: float | None = None  # when this owner last renewed the lease (None: not known to hold it)
        self.health = IntegratorHealth()
        self.more_pending = False
        self._unread = False  # streams left unread by the last read (a step's leaves were in hand)

    @property
    def origin(self) -> str:
        return self._signer.name

    # -- resuming ------------------------------------------------------------------------------------------

    def _refuse(self, reason: str) -> None:
        if self.health.state != IntegratorState.REFUSED:
            log.error("log integrator refuses to integrate: %s", reason)
        self.health.state = IntegratorState.REFUSED
        self.health.detail = reason

    async def _resume(self) -> bool:
        state = await self._tree.state()
        self.health.tree_size = state.size
        stored = await asyncio.to_thread(self._checkpoints.latest)
        if stored is not None:
            newest = parse_checkpoint(parse_note(stored).text)
            where = f"the newest stored checkpoint (size {newest.size})"
            if state.size < newest.size:
                self._refuse(f"the tree in Redis (size {state.size}) is older than {where}: never forking it")
                return False
            try:
                proof = await consistency_proof(self._tree, newest.size, state.size)
                verify_consistency(newest.size, state.size, newest.root_hash, state.edge.root(), proof)
            except (InvalidProof, MissingNodes, ValueError) as error:
                self._refuse(f"the tree in Redis (size {state.size}) is not consistent with {where}: {error}")
                return False
            self._signed_size = newest.size
            self.health.checkpoint_size = newest.size
        else:
            self._signed_size = None
        self._state = state
        self._cursors = dict(state.cursors)
        self._carry = {}
        return True

    # -- one step ------------------------------------------------------------------------------------------

    async def step(self) -> int:
        """One integration step; how many leaves it added. Raises StoreUnavailable when the store is down."""
        if self.health.state == IntegratorState.REFUSED:
            await self._tree.hold_lease(self.owner, self._lease_ms)  # keep it: nobody extends that tree
            return 0
        if not await self._holds_lease():
            self._state = None
            self.health.state, self.health.detail = IntegratorState.STANDBY, "another replica holds the lease"
            return 0
        if self._state is None and not await self._resume():
            return 0
        self.health.state, self.health.detail = IntegratorState.INTEGRATING, ""
        started = time.process_time()
        added = await self._grow()
        if self._state is None:  # the commit was refused: read the tree again next step
            return 0
        if self._signed_size is None or self._signed_size < self._state.size or self._cosign_again():
            await self._sign()
        if added:
            self.health.leaves += added
            self.health.cpu_s += time.process_time() - started
        return added

    async def _holds_lease(self) -> bool:
        """Renews the lease, unless this owner did so less than RENEW_EVERY_S ago (and has lost no commit since)."""
        now = self._clock()
        if self._renewed_at is not None and self._state is not None and 0 <= now - self._renewed_at < RENEW_EVERY_S:
            return True
        held = await self._tree.hold_lease(self.owner, self._lease_ms)
        self._renewed_at = now if held else None
        return held

    async def _read_all(self) -> list[list[SequencedRecord]]:
        """Per stream (in name order): the records read last step but left for this one, then those after them."""
        now = self._clock()
        if self._streams is None or not 0 <= now - self._streams_at < self._streams_every_s:
            self._streams, self._streams_at = sorted(await self._log.streams()), now
        streams = sorted({*self._streams, *self._cursors})
        carried, self._carry = self._carry, {}
        ask = {
            s: carried[s][-1].record_id if carried.get(s) else self._cursors.get(s, "")
            for s in streams
            if len(carried.get(s, ())) < self._per_stream
        }
        # Streams are read a group at a time, in name order, until a step's worth of leaves is in hand: the rest wait
        # for the next step. Reading every stream's backlog at once (a million imported records) took longer than
        # the lease, so every commit was refused and the integrator read the same backlog again, for ever.
        leaves = sum(len(r.entries) for rs in carried.values() for r in rs)
        found: dict[str, list[SequencedRecord]] = {}
        asked = list(ask.items())
        self._unread = False
        for start in range(0, len(asked), STREAMS_PER_READ):
            if leaves >= self._per_step:
                self._unread = True
                break
            group = dict(asked[start : start + STREAMS_PER_READ])
            for stream, records in (await self._log.read_after_many(group, self._per_stream)).items():
                found[stream] = records
                leaves += sum(len(r.entries) for r in records)
        return [carried.get(s, []) + found.get(s, []) for s in streams]

    async def _grow(self) -> int:
        assert self._state is not None
        batches = await self._read_all()
        edge = self._state.edge.copy()
        old_size = edge.size
        nodes: list[tuple[NodeId, bytes]] = []
        records: list[IntegratedRecord] = []
        cursors: dict[str, str] = {}
        left: dict[str, list[SequencedRecord]] = {}  # read, but beyond this step's size: the next step's
        unreadable: dict[tuple[str, str], str] = {}  # (record id, stream) -> why
        self.more_pending = self._unread
        full, kept = False, self._tree.levels_kept
        for batch in batches:
            if len(batch) >= self._per_stream:
                self.more_pending = True
            for i, record in enumerate(batch):
                if full or (records and edge.size - old_size + len(record.entries) > self._per_step):
                    full = self.more_pending = True
                    left[record.stream] = batch[i:]
                    break
                records.append(IntegratedRecord(record.stream, record.record_id, edge.size, len(record.entries)))
                if record.unreadable:
                    unreadable[record.record_id, record.stream] = record.unreadable
                nodes += edge.extend([leaf_hash(entry) for entry in record.entries], kept)
                cursors[record.stream] = record.record_id
        if not records:
            return 0
        growth = TreeGrowth(old_size, edge, nodes, records, cursors)
        # Renewed again right before the commit when the step's reads took long enough to be due (taken again if it
        # lapsed and nobody took it): a step starved of CPU (a loaded machine, a big backlog) outlived the lease and
        # every commit was refused. Safe: the commit is a compare-and-set on the size read, so a tree another
        # replica grew meanwhile is never overwritten.
        if not await self._holds_lease():
            self._state = None
            return 0
        try:
            await self._tree.commit(self.owner, growth)
        except (LeaseLost, TreeConflict) as error:
            log.warning("log integrator: commit refused (%s); reading the tree again", error)
            self._state = None
            return 0
        for done in records:
            why = unreadable.get((done.record_id, done.stream))
            if why is not None:
                self.health.unreadable += 1
                log.error(
                    "log integrator: record %s of %s is unreadable as log entries (%s): integrated as one opaque "
                    "entry of its raw fields, leaf %d (written behind the service's back; debar log verify names it)",
                    done.record_id, done.stream, why, done.first_leaf,
                )  # fmt: skip
        self._carry = left
        self._cursors.update(cursors)
        self._state = TreeState(edge, self._cursors)
        self.health.tree_size = edge.size
        return edge.size - old_size

    def _cosign_again(self) -> bool:
        """A checkpoint that missed a witness's cosignature is signed and offered again, at the same size, every
        RETRY_COSIGN_S while the tree does not grow (a witness back up cosigns the log as it stands)."""
        at = self.health.checkpoint_at
        return bool(self.health.witness_failures) and at is not None and self._clock() - at >= RETRY_COSIGN_S

    async def _sign(self) -> None:
        assert self._state is not None
        size, root_hash = self._state.size, self._state.edge.root()
        note = sign_checkpoint(Checkpoint(self.origin, size, root_hash), self._signer)

        async def proof_from(old: int) -> list[bytes]:
            return await consistency_proof(self._tree, old, size)

        cosigning = await self._witnesses.cosign(note, self._signed_size or 0, proof_from)
        for failure in cosigning.failures:
            self.health.failures[(failure.witness, failure.kind)] += 1
            log.warning(
                "witness %s gave no cosignature for size %d: %s: %s",
                failure.witness, size, failure.kind.value, failure.detail,
            )  # fmt: skip
        data = cosigning.note.to_bytes()
        # Into Redis first: the store answers once enough replicas hold the checkpoint, and with it everything
        # written before it (the tree and its entries; replication keeps one order). Only then is it kept outside
        # Redis, where nothing is ever taken back: a checkpoint over entries a failover lost would stand there
        # against the surviving log forever.
        try:
            await self._tree.put_checkpoint(self.owner, size, data)
        except LeaseLost:
            self._state = None
            return
        await asyncio.to_thread(self._checkpoints.append, data)
        self._signed_size = size
        self.health.checkpoint_size = size
        self.health.checkpoint_at = self._clock()
        self.health.cosigned_by = cosigning.cosigned_by
        self.health.witness_failures = cosigning.failures

    # -- the task ------------------------------------------------------------------------------------------

    async def run(self, interval_s: float = INTERVAL_S) -> None:
        """Steps until cancelled; a store outage is waited out (health `unavailable`)."""
        try:
            while True:
                try:
                    await self.step()
                except StoreUnavailable as error:
                    # Nothing is known to be pending after a failure: pause, or a store that fails at once (an
                    # open circuit breaker) makes a busy loop that starves the event loop and its cancellation.
                    self._state, self.more_pending = None, False
                    if self.health.state != IntegratorState.UNAVAILABLE:
                        log.warning("log integrator: the store is unavailable (%s)", error)
                    self.health.state, self.health.detail = IntegratorState.UNAVAILABLE, str(error)
                except Exception:
                    self._state, self.more_pending = None, False
                    log.exception("log integrator: step failed; trying again")
                    self.health.state, self.health.detail = IntegratorState.UNAVAILABLE, "step failed (see log)"
                if not self.more_pending:
                    await asyncio.sleep(interval_s)
        finally:
            with contextlib.suppress(Exception):  # else the lease expires by itself
                await self._tree.release_lease(self.owner)
