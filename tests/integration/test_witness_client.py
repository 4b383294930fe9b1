"""The witness client the integrator uses (HttpWitnesses), against `debar witness` as a real process, a witness
that is down (connection refused) and one that hangs (accepts, never answers): every cosignature it adds verifies
with the witness's key, a stale old size is recovered from, and every witness that gives none is a typed failure,
fast, never an exception and never silently left out."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debar.common.witnesses import WitnessEndpoint
from debar.local.embedded_redis import free_port
from debar.sanction.adapters.witness_client import HttpWitnesses
from debar.sanction.app.ports import WitnessFailureKind
from debar.tlog.checkpoint import open_checkpoint
from debar.tlog.cosignature import CosignatureSigner
from tests.conftest import ON_CLUSTER
from tests.support.witness import TestLog, WitnessProcess, log_signer

# No Redis here: the suite runs once, not again on the cluster pass.
pytestmark = pytest.mark.skipif(ON_CLUSTER, reason="the witness involves no Redis")

SIGNER = log_signer()
TIMEOUT_S = 0.3
# For a witness that answers: generous, since the machine running the suite may be busy.
ANSWERING_S = 20.0


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[WitnessProcess]:
    process = WitnessProcess(tmp_path / "witness", [SIGNER]).start()
    yield process
    process.stop()


class Proofs:
    """The integrator's proof_from callback over a test log, recording which sizes it was asked for."""

    def __init__(self, log: TestLog) -> None:
        self.log = log
        self.asked: list[int] = []

    async def __call__(self, size: int) -> tuple[bytes, ...]:
        self.asked.append(size)
        return self.log.proof(size)


def endpoint(witness: WitnessProcess) -> WitnessEndpoint:
    return WitnessEndpoint(witness.verifier, witness.url)


async def test_cosigns_and_every_added_cosignature_verifies(witness: WitnessProcess):
    log = TestLog(SIGNER, 10)
    async with HttpWitnesses([endpoint(witness)], ANSWERING_S) as witnesses:
        proofs = Proofs(log)
        result = await witnesses.cosign(log.note(), 0, proofs)
        assert (result.cosigned_by, result.failures) == ((witness.name,), ())
        assert proofs.asked == []  # from size 0 no proof is needed
        open_checkpoint(result.note.to_bytes(), SIGNER.verifier(), witnesses=[witness.verifier])
        # Next time it starts from the size the witness cosigned, without being told.
        log.append(7)
        proofs = Proofs(log)
        result = await witnesses.cosign(log.note(), 0, proofs)
        assert result.failures == () and proofs.asked == [10]
        opened = open_checkpoint(result.note.to_bytes(), SIGNER.verifier(), witnesses=[witness.verifier])
        assert opened.checkpoint.size == 17


async def test_recovers_from_a_stale_old_size_through_409(witness: WitnessProcess):
    log = TestLog(SIGNER, 12)
    assert witness.add_checkpoint(log.request(0)).status_code == 200
    log.append(3)
    # A client that just started knows nothing and guesses the log's previous checkpoint, 5: the witness says 12.
    async with HttpWitnesses([endpoint(witness)], ANSWERING_S) as witnesses:
        proofs = Proofs(log)
        result = await witnesses.cosign(log.note(), 5, proofs)
    assert result.failures == ()
    assert proofs.asked == [5, 12]
    open_checkpoint(result.note.to_bytes(), SIGNER.verifier(), witnesses=[witness.verifier])


async def test_a_witness_that_has_seen_a_bigger_tree_is_a_conflict(witness: WitnessProcess):
    log = TestLog(SIGNER, 30)
    assert witness.add_checkpoint(log.request(0)).status_code == 200
    rolled_back = TestLog(SIGNER, 20)
    async with HttpWitnesses([endpoint(witness)], ANSWERING_S) as witnesses:
        result = await witnesses.cosign(rolled_back.note(), 0, Proofs(rolled_back))
    [failure] = result.failures
    assert (failure.witness, failure.kind, failure.status) == (witness.name, WitnessFailureKind.CONFLICT, 409)
    assert "30" in failure.detail and "rollback or a fork" in failure.detail
    assert result.note == rolled_back.note() and result.cosigned_by == ()


async def test_a_forked_log_is_refused_with_the_witness_status(witness: WitnessProcess):
    honest = TestLog(SIGNER, 8)
    assert witness.add_checkpoint(honest.request(0)).status_code == 200
    forked = TestLog(SIGNER, 12, tag=b" rewritten")
    async with HttpWitnesses([endpoint(witness)], ANSWERING_S) as witnesses:
        result = await witnesses.cosign(forked.note(), 8, Proofs(forked))
    [failure] = result.failures
    assert (failure.kind, failure.status) == (WitnessFailureKind.REFUSED, 422)
    assert "not consistent" in failure.detail


async def test_an_answer_not_from_the_configured_key_is_not_added(witness: WitnessProcess):
    """A witness answering with another key (or a man in the middle) gives no cosignature."""
    log = TestLog(SIGNER, 4)
    expected = CosignatureSigner.generate(witness.name).verifier()
    async with HttpWitnesses([WitnessEndpoint(expected, witness.url)], ANSWERING_S) as witnesses:
        result = await witnesses.cosign(log.note(), 0, Proofs(log))
    [failure] = result.failures
    assert (failure.kind, failure.status) == (WitnessFailureKind.BAD_ANSWER, 200)
    assert result.note == log.note()


async def test_a_proof_the_log_cannot_make_is_a_failure_not_an_exception(witness: WitnessProcess):
    log = TestLog(SIGNER, 6)
    assert witness.add_checkpoint(log.request(0)).status_code == 200
    log.append(1)

    async def broken(size: int) -> tuple[bytes, ...]:
        raise LookupError("tile missing")

    async with HttpWitnesses([endpoint(witness)], ANSWERING_S) as witnesses:
        result = await witnesses.cosign(log.note(), 6, broken)
    [failure] = result.failures
    assert failure.kind == WitnessFailureKind.NO_PROOF and "tile missing" in failure.detail


async def test_a_witness_that_is_down_fails_fast_and_the_others_still_cosign(witness: WitnessProcess):
    down = WitnessEndpoint(
        CosignatureSigner.generate("witness.test/down").verifier(), f"http://127.0.0.1:{free_port()}"
    )
    log = TestLog(SIGNER, 3)
    async with HttpWitnesses([down], ANSWERING_S) as alone:
        started = time.monotonic()
        result = await alone.cosign(log.note(), 0, Proofs(log))
        elapsed = time.monotonic() - started
    [failure] = result.failures
    assert (failure.witness, failure.kind, failure.status) == (
        "witness.test/down",
        WitnessFailureKind.UNREACHABLE,
        None,
    )
    assert elapsed < 2.0  # a refused connection, not the 20 s timeout
    async with HttpWitnesses([down, endpoint(witness)], ANSWERING_S) as witnesses:
        result = await witnesses.cosign(log.note(), 0, Proofs(log))
    assert result.cosigned_by == (witness.name,)
    assert [(f.witness, f.kind) for f in result.failures] == [("witness.test/down", WitnessFailureKind.UNREACHABLE)]
    open_checkpoint(result.note.to_bytes(), SIGNER.verifier(), witnesses=[witness.verifier])


async def test_a_witness_that_hangs_times_out_after_the_timeout():
    # Listens (the kernel completes the handshake) but never accepts, so nothing is ever answered.
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}"
        hanging = WitnessEndpoint(CosignatureSigner.generate("witness.test/hung").verifier(), url)
        log = TestLog(SIGNER, 3)
        async with HttpWitnesses([hanging], TIMEOUT_S) as witnesses:
            started = time.monotonic()
            result = await witnesses.cosign(log.note(), 0, Proofs(log))
            elapsed = time.monotonic() - started
    [failure] = result.failures
    assert (failure.witness, failure.kind) == ("witness.test/hung", WitnessFailureKind.TIMEOUT)
    assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + 1.5
    assert result.note == log.note()


async def test_a_witness_that_restarts_is_asked_again_from_what_it_kept(witness: WitnessProcess):
    log = TestLog(SIGNER, 5)
    async with HttpWitnesses([endpoint(witness)], ANSWERING_S) as witnesses:
        assert (await witnesses.cosign(log.note(), 0, Proofs(log))).failures == ()
        witness.kill()
        log.append(2)
        result = await witnesses.cosign(log.note(), 5, Proofs(log))
        assert [f.kind for f in result.failures] == [WitnessFailureKind.UNREACHABLE]
        witness.start()
        log.append(2)
        proofs = Proofs(log)
        result = await witnesses.cosign(log.note(), 7, proofs)
    assert result.failures == () and proofs.asked == [5]
