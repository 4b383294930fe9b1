"""The witness's critical section on a real state folder, without HTTP: a state it cannot write is a 503 with
nothing cosigned and health saying why, and it recovers once the folder is writable again; the metrics count
answers by status."""

from __future__ import annotations

import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry

from debar.tlog.cosignature import CosignatureSigner
from debar.tlog.witness import Witness
from debar.witness.app import WitnessCore
from debar.witness.state_store import STATE_FILE, StateFolder
from tests.support.witness import TestLog, log_signer

SIGNER = log_signer()
COSIGNER = CosignatureSigner.generate("witness.test/core")


def core(folder: StateFolder, registry: CollectorRegistry | None = None) -> WitnessCore:
    return WitnessCore(Witness(COSIGNER, {SIGNER.name: [SIGNER.verifier()]}), folder, registry, clock=lambda: 1000)


def test_a_state_it_cannot_write_is_a_503_then_it_recovers(tmp_path: Path):
    folder = StateFolder.open(tmp_path)
    try:
        witness = core(folder)
        log = TestLog(SIGNER, 3)
        assert witness.add_checkpoint(log.request(0)).status == 200
        # The state file turns into something it cannot read or replace (a folder where the file was).
        saved = (tmp_path / STATE_FILE).read_bytes()
        (tmp_path / STATE_FILE).unlink()
        (tmp_path / STATE_FILE).mkdir()
        log.append(2)
        answer = witness.add_checkpoint(log.request(3))
        assert answer.status == 503 and b"nothing was cosigned" in answer.body
        assert witness.write_failure is not None and STATE_FILE in witness.write_failure
        shutil.rmtree(tmp_path / STATE_FILE)
        (tmp_path / STATE_FILE).write_bytes(saved)
        assert witness.add_checkpoint(log.request(3)).status == 200
        assert witness.write_failure is None
        assert folder.read()[0].latest(SIGNER.name).size == 5  # type: ignore[union-attr]
    finally:
        folder.close()


def test_answers_are_counted_by_status(tmp_path: Path):
    registry = CollectorRegistry()
    folder = StateFolder.open(tmp_path)
    try:
        witness = core(folder, registry)
        log = TestLog(SIGNER, 2)
        assert [witness.add_checkpoint(body).status for body in (b"", log.request(1), log.request(0))] == [
            400,
            409,
            200,
        ]
        for status in ("400", "409", "200"):
            assert registry.get_sample_value("debar_witness_requests_total", {"status": status}) == 1
        assert registry.get_sample_value("debar_witness_cosigned_size", {"origin": SIGNER.name}) == 2
    finally:
        folder.close()
