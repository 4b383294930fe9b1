"""The log integrator and the proofs on in-memory ports: the tree it builds is RFC 6962's over the entries in
stream-name then record order, each checkpoint verifies, a second integrator never forks or appends twice, a
tree older than the newest stored checkpoint is refused, a witness down is counted and the checkpoint stored."""

from __future__ import annotations

import pytest

from debar.common.errors import InvalidField, NotFound
from debar.sanction.app.integrator import Integrator, IntegratorState
from debar.sanction.app.log_proofs import LogProofs, NotYetIntegrated
from debar.sanction.app.ports import WitnessFailureKind
from debar.tlog.checkpoint import open_checkpoint
from debar.tlog.compact import CompactRange
from debar.tlog.keys import Ed25519Signer
from debar.tlog.merkle import leaf_hash, root
from debar.tlog.proofs import verify_consistency, verify_inclusion
from tests.support.memory import ManualClock
from tests.support.memory_tlog import MemoryCheckpoints, MemorySequencedLog, MemoryTreeStore, NoWitnesses

ORIGIN = "debar.test/log"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000)


@pytest.fixture
def signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


class World:
    def __init__(self, clock: ManualClock, signer: Ed25519Signer) -> None:
        self.clock = clock
        self.signer = signer
        self.log = MemorySequencedLog()
        self.tree = MemoryTreeStore(clock)
        self.checkpoints = MemoryCheckpoints()
        self.witnesses = NoWitnesses()

    def integrator(self, **options: object) -> Integrator:
        options.setdefault("streams_every_s", 0)
        return Integrator(
            self.log,
            self.tree,
            self.checkpoints,
            self.signer,
            self.witnesses,
            clock=self.clock,
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def world(clock: ManualClock, signer: Ed25519Signer) -> World:
    return World(clock, signer)


def expected_leaves(log: MemorySequencedLog) -> list[bytes]:
    return [leaf_hash(e) for s in sorted(log.streams_) for r in log.streams_[s] for e in r.entries]


async def test_the_tree_is_rfc6962_over_the_entries_and_the_checkpoint_verifies(world: World):
    world.log.add("log:{b}", b"one", b"two")
    world.log.add("log:{a}", b"three")
    world.log.add("objlog", b"four")
    integrator = world.integrator()
    assert await integrator.step() == 4
    leaves = expected_leaves(world.log)
    assert world.tree.edge.root() == root(leaves)
    signed = open_checkpoint(world.checkpoints.latest() or b"", world.signer.verifier())
    assert (signed.checkpoint.size, signed.checkpoint.root_hash) == (4, root(leaves))
    assert await world.tree.latest_checkpoint() == world.checkpoints.latest()
    assert integrator.health.state == IntegratorState.INTEGRATING
    assert integrator.health.checkpoint_size == 4
    # Nothing new: no new commit, no new checkpoint.
    assert await integrator.step() == 0
    assert len(world.checkpoints.all()) == 1


async def test_receipts_and_consistency_proofs_verify(world: World):
    record = world.log.add("log:{a}", b"alpha", b"beta", b"gamma")
    proofs = LogProofs(world.log, world.tree)
    with pytest.raises(NotYetIntegrated):
        await proofs.decision_proof(f"log:{{a}}/{record.record_id}/1")
    integrator = world.integrator()
    await integrator.step()
    first = await proofs.checkpoint()
    for _ in range(5):
        world.log.add("log:{c}", b"more")
    await integrator.step()
    receipt = await proofs.decision_proof(f"log:{{a}}/{record.record_id}/1")
    assert receipt.entry == b"beta" and receipt.leaf_index == 1 and receipt.head.size == 8
    verify_inclusion(leaf_hash(b"beta"), 1, 8, receipt.inclusion_proof, receipt.head.root_hash)
    proof = await proofs.consistency(first.size, receipt.head.size)
    verify_consistency(first.size, 8, first.root_hash, receipt.head.root_hash, proof)
    with pytest.raises(NotFound):
        await proofs.decision_proof("log:{a}/999-0/0")
    with pytest.raises(InvalidField, match="from_size"):
        await proofs.consistency(5, 3)
    with pytest.raises(InvalidField, match="to_size"):
        await proofs.consistency(1, 9)


async def test_a_second_integrator_waits_and_never_appends_twice(world: World, clock: ManualClock):
    world.log.add("log:{a}", b"x")
    first, second = world.integrator(), world.integrator()
    assert await first.step() == 1
    world.log.add("log:{a}", b"y")
    assert await second.step() == 0
    assert second.health.state == IntegratorState.STANDBY
    clock.advance(6)  # the first one's lease runs out (paused, or dead)
    assert await second.step() == 1
    # The first wakes up with its old state: its lease is gone, it writes nothing.
    world.log.add("log:{a}", b"z")
    assert await first.step() == 0
    assert world.tree.edge.root() == root(expected_leaves(world.log)[:2])
    clock.advance(6)
    await first.step()  # takes the lease again, reads the stored tree, appends only z
    assert world.tree.edge.root() == root(expected_leaves(world.log))
    assert [r.count for r in world.tree.record_list] == [1, 1, 1]


async def test_a_commit_onto_another_size_is_refused(world: World):
    world.log.add("log:{a}", b"x")
    integrator = world.integrator()
    await integrator.step()
    # Someone else committed meanwhile (as if the lease had changed hands and back).
    world.tree.edge.append(leaf_hash(b"intruder"))
    world.log.add("log:{a}", b"y")
    assert await integrator.step() == 0
    assert world.tree.edge.size == 2  # nothing appended onto the unexpected size


async def test_resumes_after_a_crash_between_commit_and_checkpoint(world: World):
    world.log.add("log:{a}", b"x", b"y")
    integrator = world.integrator()
    await integrator.step()
    world.log.add("log:{a}", b"z")

    async def crash(*_: object) -> None:
        raise RuntimeError("killed")

    integrator._sign = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await integrator.step()
    assert world.tree.edge.size == 3 and len(world.checkpoints.all()) == 1
    await world.tree.release_lease(integrator.owner)
    restarted = world.integrator()
    assert await restarted.step() == 0  # nothing to append again
    assert world.tree.edge.size == 3
    latest = open_checkpoint(world.checkpoints.latest() or b"", world.signer.verifier())
    assert latest.checkpoint.size == 3


async def test_a_tree_older_than_the_newest_stored_checkpoint_is_refused(world: World, clock: ManualClock):
    world.log.add("log:{a}", b"x", b"y", b"z")
    integrator = world.integrator()
    await integrator.step()
    # An insider rolls the tree in Redis back to one leaf.
    rolled = CompactRange()
    rolled.append(leaf_hash(b"x"))
    world.tree.edge = rolled
    world.tree.lease = None
    restarted = world.integrator()
    world.log.add("log:{a}", b"w")
    assert await restarted.step() == 0
    assert restarted.health.state == IntegratorState.REFUSED
    assert "older than the newest stored checkpoint" in restarted.health.detail
    assert world.tree.edge.size == 1
    for _ in range(3):  # while it runs, it keeps the lease: no other replica extends that tree either
        clock.advance(3)
        await restarted.step()
    other = world.integrator()
    assert await other.step() == 0 and other.health.state == IntegratorState.STANDBY  # the lease stays held


async def test_a_tree_not_consistent_with_the_newest_checkpoint_is_refused(world: World):
    world.log.add("log:{a}", b"x", b"y")
    await world.integrator().step()
    forged = CompactRange()
    world.tree.nodes.clear()
    for entry in (b"x", b"Y", b"z"):
        world.tree.nodes.update(forged.append(leaf_hash(entry)))
    world.tree.edge = forged
    world.tree.lease = None
    restarted = world.integrator()
    assert await restarted.step() == 0
    assert restarted.health.state == IntegratorState.REFUSED
    assert "not consistent" in restarted.health.detail


async def test_a_witness_down_is_counted_and_the_checkpoint_still_stored(world: World):
    world.witnesses.down = True
    world.log.add("log:{a}", b"x")
    integrator = world.integrator()
    await integrator.step()
    assert len(world.checkpoints.all()) == 1
    assert integrator.health.failures[("w1", WitnessFailureKind.UNREACHABLE)] == 1
    assert integrator.health.details()["witness_failures"] == ["w1: unreachable: connection refused"]
    world.log.add("log:{a}", b"y")
    await integrator.step()
    assert world.witnesses.asked == [(0, 1), (1, 2)]
    assert integrator.health.failures[("w1", WitnessFailureKind.UNREACHABLE)] == 2
    # While the tree stands still, the checkpoint is offered again every few seconds: a witness back up cosigns.
    await integrator.step()
    assert world.witnesses.asked == [(0, 1), (1, 2)]
    world.clock.advance(5)
    world.witnesses.down = False
    await integrator.step()
    assert world.witnesses.asked == [(0, 1), (1, 2), (2, 2)]
    assert integrator.health.witness_failures == ()
    world.clock.advance(5)
    await integrator.step()
    assert len(world.witnesses.asked) == 3


async def test_large_backlogs_are_integrated_in_bounded_steps_in_order(world: World):
    for i in range(30):
        world.log.add(f"log:{{{i % 3}}}", *(b"%d.%d" % (i, j) for j in range(3)))
    integrator = world.integrator(records_per_stream=4, leaves_per_step=20)
    steps = 0
    while True:
        steps += 1
        await integrator.step()
        if not integrator.more_pending:
            break
    assert steps > 3
    assert world.tree.edge.size == 90
    # Per stream, records stay in order; the tree is the one the stored leaf order gives.
    for stream in world.log.streams_:
        ids = [r.record_id for r in world.tree.record_list if r.stream == stream]
        assert ids == [r.record_id for r in world.log.streams_[stream]]
    by_record = {(r.stream, r.record_id): r for s in world.log.streams_.values() for r in s}
    leaves = [leaf_hash(e) for ir in world.tree.record_list for e in by_record[(ir.stream, ir.record_id)].entries]
    assert world.tree.edge.root() == root(leaves)


async def test_the_list_of_streams_is_asked_for_every_few_seconds_and_known_streams_every_step(world: World):
    world.log.add("log:{a}", b"x")
    integrator = world.integrator(streams_every_s=2)
    assert await integrator.step() == 1
    world.log.add("log:{a}", b"y")
    world.log.add("log:{b}", b"new stream")
    assert await integrator.step() == 1  # the known stream, at once
    world.clock.advance(2)
    assert await integrator.step() == 1  # the new one, once the list is asked for again
    assert world.tree.edge.size == 3


async def test_the_lease_is_renewed_once_a_second_and_a_lost_one_is_noticed(world: World, clock: ManualClock):
    holds = 0
    hold = world.tree.hold_lease

    async def counted(owner: str, ttl_ms: int) -> bool:
        nonlocal holds
        holds += 1
        return await hold(owner, ttl_ms)

    world.tree.hold_lease = counted  # type: ignore[method-assign]
    integrator = world.integrator()
    for _ in range(4):  # steps 0.25 s apart, as the task runs them
        world.log.add("log:{a}", b"x")
        assert await integrator.step() == 1
        clock.advance(0.25)
    assert holds == 1, "one renewal a second, not one a step"
    world.log.add("log:{a}", b"y")
    assert await integrator.step() == 1 and holds == 2
    # Another replica takes the lease between renewals (this one was paused past it): the commit, which checks the
    # lease itself, is refused and nothing is appended; the next step asks for the lease and stands by.
    world.tree.lease = ("other", clock() + 5)
    world.log.add("log:{a}", b"z")
    assert await integrator.step() == 0
    assert world.tree.edge.size == 5
    assert await integrator.step() == 0 and integrator.health.state == IntegratorState.STANDBY


async def test_a_store_that_fails_at_once_after_a_full_step_is_waited_out_and_cancel_still_stops_it(world: World):
    """CI once saw an integrator busy for minutes after its server and Redis were gone: a step had left more
    pending, so the task went straight on to the next step, and every step failed at once (an open circuit breaker
    raises without awaiting anything). It looped as fast as steps failed (666 in 0.3 s here before the fix; with
    the breaker open, without ever suspending, so no cancellation could reach it). A failed step is followed by a
    pause, and cancelling still stops it."""
    import asyncio

    from debar.sanction.app.ports import StoreUnavailable

    for i in range(10):
        world.log.add("log:{a}", b"%d" % i)
    integrator = world.integrator(records_per_stream=2)
    assert await integrator.step() == 2 and integrator.more_pending

    steps = 0

    async def gone(*_: object) -> dict[str, list[object]]:  # a breaker that is open: no await before the failure
        nonlocal steps
        steps += 1
        if steps > 1000:  # it never paused: give the loop a turn, so that the test fails rather than hangs
            await asyncio.sleep(0)
        raise StoreUnavailable("circuit open")

    world.log.read_after_many = gone  # type: ignore[method-assign,assignment]
    world.log.read_after = gone  # type: ignore[method-assign,assignment]
    running = asyncio.create_task(integrator.run(interval_s=0.05))
    await asyncio.sleep(0.3)  # the loop must get turns while the store is down
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 1.0)
    assert 1 <= steps <= 10, f"{steps} failing steps in 0.3 s: a failed step must be followed by a pause"
    assert integrator.health.state == IntegratorState.UNAVAILABLE
