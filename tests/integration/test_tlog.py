"""The Merkle log on real processes: a refusal's receipt verifies offline with only the public keys and fails,
naming why, with any one byte changed; the API's errors and scopes; a witness down is counted and shown in health
while checkpoints are still stored; the service refuses to start without its signing key; an integrator killed
mid-way (kill -9 under load, again and again) resumes without forking: the witness keeps cosigning and the log
verifies; a replica with DEBAR_LOG_INTEGRATOR=off takes no lease and integrates nothing, while one that is on
does (and the off one serves its receipts). Each test on its own key prefix of the suite's Redis (single, or the
cluster pass)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis as redis_client

from debar.local.embedded_redis import free_port
from debar.sanction.adapters.keys import TreeKeys
from debar.sanction.domain.receipts import InvalidReceipt, verify_receipt
from debar.tlog.checkpoint import open_checkpoint
from debar.tlog.keys import parse_signer_key, parse_verifier_key
from debar.v1 import decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.support.keys import TEST_LOG_SIGNER_KEY, TEST_LOG_VERIFIER_KEY
from tests.support.metrics import scrape, total
from tests.support.requests import check_request, impose_request, subject
from tests.support.servers import ServiceProcess, health_status, start_service, wait_for
from tests.support.subjects import new_ric
from tests.support.witness import WitnessProcess

TIMEOUT = 30
LOG_KEY = parse_verifier_key(TEST_LOG_VERIFIER_KEY)
READER = [("x-debar-caller", "reviewer:li")]  # decisions:read and objections:review: any decision by its id
PORTAL = [("x-debar-caller", "portal")]  # decisions:read only: names the subject


def private_env(service_env: dict[str, str], folder: Path, **extra: str) -> dict[str, str]:
    return {
        **service_env, "DEBAR_REDIS_PREFIX": f"tl{uuid.uuid4().hex[:8]}", "DEBAR_DATA_DIR": str(folder / "data"),
        **extra,
    }  # fmt: skip


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[WitnessProcess]:
    process = WitnessProcess(tmp_path / "witness", [parse_signer_key(TEST_LOG_SIGNER_KEY)]).start()
    yield process
    process.stop()


def witnessed(witness: WitnessProcess) -> str:
    return f"{witness.verifier.verifier_key()} {witness.url}"


def refuse(service: ServiceProcess, person: str | None = None) -> str:
    person = person or new_ric()
    with grpc.insecure_channel(service.address) as channel:
        registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(person), timeout=TIMEOUT)
        answer = sanction_pb2_grpc.SanctionServiceStub(channel).Check(
            check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT
        )
    return answer.decision_id


def debar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", *args], capture_output=True, timeout=120, env={**os.environ, **env}
    )


def fetch_receipt(env: dict[str, str], service: ServiceProcess, decision_id: str) -> bytes:
    got: list[bytes] = []

    def fetched() -> bool:
        done = debar(env, "receipt", "get", decision_id, "--address", service.address, "--caller", "reviewer:li")
        if done.returncode == 0:
            got.append(done.stdout)
            return True
        assert b"UNAVAILABLE" in done.stderr, done.stderr
        return False

    assert wait_for(fetched, timeout_s=30, interval_s=0.2), service.log()
    return got[0]


def test_a_refusals_receipt_verifies_offline_and_any_byte_changed_fails(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path, witness: WitnessProcess
):
    env = private_env(service_env, tmp_path, DEBAR_LOG_WITNESSES=witnessed(witness))
    service = start_service("sanction", env, logs_dir)
    try:
        decision_id = refuse(service)
        receipt = fetch_receipt(env, service, decision_id)
    finally:
        service.stop()
    path = tmp_path / "receipt.json"
    path.write_bytes(receipt)
    offline = {"PATH": "/usr/bin:/bin", "DEBAR_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing it could reach
    keys = ["--log-key", TEST_LOG_VERIFIER_KEY, "--witness-key", witness.verifier.verifier_key()]
    done = debar(offline, "receipt", "verify", str(path), *keys)
    assert done.returncode == 0, done.stderr
    shown = done.stdout.decode()
    assert f"decision {decision_id}" in shown and "DENY RAIL_G_TRAIN" in shown
    assert f"cosigned by {witness.name}" in shown

    verified = verify_receipt(receipt, LOG_KEY, [witness.verifier])
    assert verified.decision.outcome == "DENY" and verified.decision.decision_id == decision_id
    # One byte changed anywhere: refused, and the reason given.
    reasons = set()
    for offset in range(len(receipt)):
        for flip in (0x01, 0x20):
            changed = bytearray(receipt)
            changed[offset] ^= flip
            with pytest.raises(InvalidReceipt) as refused:
                verify_receipt(bytes(changed), LOG_KEY, [witness.verifier])
            reasons.add(str(refused.value).split(":")[0])
    assert {"checkpoint", "inclusion proof", "entry"} <= reasons, reasons
    # And from the command line: exit 1 naming it.
    entry_at = receipt.index(b'"entry": "') + 12
    changed = bytearray(receipt)
    changed[entry_at] = ord("A") if changed[entry_at] != ord("A") else ord("B")
    path.write_bytes(bytes(changed))
    broken = debar(offline, "receipt", "verify", str(path), *keys)
    assert broken.returncode == 1
    assert broken.stderr.decode().startswith("debar receipt verify: INVALID: ")
    # A witness's cosignature is there; without its key it is a signature from no key given.
    path.write_bytes(receipt)
    unknown = debar(offline, "receipt", "verify", str(path), "--log-key", TEST_LOG_VERIFIER_KEY)
    assert unknown.returncode == 1 and witness.name.encode() in unknown.stderr


def test_the_api_errors_and_scopes(service_env: dict[str, str], logs_dir: Path, tmp_path: Path):
    env = private_env(service_env, tmp_path)
    service = start_service("sanction", env, logs_dir)
    try:
        decision_id = refuse(service)
        fetch_receipt(env, service, decision_id)
        with grpc.insecure_channel(service.address) as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            anyone = [("x-debar-caller", "platform:nobody")]  # authenticated, no scope at all
            head = stub.GetCheckpoint(decision_pb2.GetCheckpointRequest(), metadata=anyone, timeout=TIMEOUT)
            opened = open_checkpoint(head.note, LOG_KEY)
            assert (opened.checkpoint.size, opened.checkpoint.root_hash) == (head.size, head.root_hash)
            proof = stub.GetConsistencyProof(
                decision_pb2.GetConsistencyProofRequest(from_size=1, to_size=head.size), metadata=anyone,
                timeout=TIMEOUT,
            )  # fmt: skip
            assert proof.to_size == head.size
            for request, field in [((3, 2), "from_size"), ((0, head.size + 1), "to_size")]:
                with pytest.raises(grpc.RpcError) as raised:
                    stub.GetConsistencyProof(
                        decision_pb2.GetConsistencyProofRequest(from_size=request[0], to_size=request[1]),
                        metadata=anyone, timeout=TIMEOUT,
                    )  # fmt: skip
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                assert raised.value.details().startswith(f"{field}:")
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetDecisionProof(
                    decision_pb2.GetDecisionProofRequest(decision_id=decision_id), metadata=anyone, timeout=TIMEOUT
                )
            assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
            guessed = decision_id[:-2] + ("AA" if decision_id[-2:] != "AA" else "BB")
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetDecisionProof(
                    decision_pb2.GetDecisionProofRequest(decision_id=guessed), metadata=READER, timeout=TIMEOUT
                )
            assert raised.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
            # A portal sees the receipt of a decision about the person it names, and no one else's.
            person = new_ric()
            own = refuse(service, person)
            fetch_receipt(env, service, own)
            asked = decision_pb2.GetDecisionProofRequest(decision_id=own)
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetDecisionProof(asked, metadata=PORTAL, timeout=TIMEOUT)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert raised.value.details().startswith("subject:")
            asked.subject.CopyFrom(subject(new_ric()))
            with pytest.raises(grpc.RpcError) as raised:
                stub.GetDecisionProof(asked, metadata=PORTAL, timeout=TIMEOUT)
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
            asked.subject.CopyFrom(subject(person))
            assert stub.GetDecisionProof(asked, metadata=PORTAL, timeout=TIMEOUT).decision_id == own
    finally:
        service.stop()


def test_a_receipt_asked_for_before_integration_is_unavailable_with_a_retry_hint(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path
):
    env = private_env(service_env, tmp_path)
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            hints = []
            for _ in range(20):  # right after the check, most often before its integration
                decision_id = refuse(service)
                try:
                    stub.GetDecisionProof(
                        decision_pb2.GetDecisionProofRequest(decision_id=decision_id), metadata=READER,
                        timeout=TIMEOUT,
                    )  # fmt: skip
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE
                    hints.append(dict(error.trailing_metadata() or ()).get("retry-after"))
                    break
            assert hints == ["1"]
    finally:
        service.stop()


def test_a_witness_down_is_counted_shown_in_health_and_checkpoints_still_stored(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path, witness: WitnessProcess
):
    dead = WitnessProcess(tmp_path / "dead", [parse_signer_key(TEST_LOG_SIGNER_KEY)], name="witness.test/dead")
    metrics_port = free_port()
    env = private_env(
        service_env, tmp_path, DEBAR_LOG_WITNESSES=f"{witnessed(witness)},{witnessed(dead)}",
        DEBAR_METRICS_PORT=str(metrics_port),
    )  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    try:
        decision_id = refuse(service)
        fetch_receipt(env, service, decision_id)
        # The integrator runs in a child process that reports to the server every half second: the server's
        # metrics may name the failure a moment after the checkpoint exists.
        failures = "debar_log_witness_failures_total"
        assert wait_for(lambda: total(scrape(metrics_port), failures, witness=dead.name, kind="unreachable") >= 1)
        assert total(scrape(metrics_port), failures, witness=witness.name) == 0
        assert wait_for(lambda: health_status(service.address, "debar.log.witnesses") == "NOT_SERVING")
        assert health_status(service.address, "debar.log.integrator") == "SERVING"
        assert health_status(service.address) == "SERVING"  # checks go on: the log's health is apart
        assert f"witness {dead.name} gave no cosignature" in service.log()
        stored = sorted((Path(env["DEBAR_DATA_DIR"]) / "checkpoints").glob("*/*.note"))
        assert stored
        newest = open_checkpoint(stored[-1].read_bytes(), LOG_KEY, witnesses=[witness.verifier])
        assert newest.checkpoint.size >= 1
    finally:
        service.stop()


@pytest.mark.parametrize("breakage", ["missing", "unreadable", "not a key", "unset"])
def test_the_service_refuses_to_start_without_its_signing_key(tmp_path: Path, breakage: str, service_env):
    key = tmp_path / "log.key"
    if breakage == "unreadable":
        key.write_text(TEST_LOG_SIGNER_KEY)
        key.chmod(0)
    elif breakage == "not a key":
        key.write_text("nonsense\n")
    env = {**service_env, "DEBAR_DATA_DIR": str(tmp_path), "DEBAR_SANCTION_PORT": "0"}
    env["DEBAR_LOG_SIGNING_KEY"] = "" if breakage == "unset" else str(key)
    if os.geteuid() == 0 and breakage == "unreadable":
        pytest.skip("root reads any file")
    done = debar(env, "serve", "sanction")
    assert done.returncode == 2
    lines = done.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "DEBAR_LOG_SIGNING_KEY" in lines[0], lines
    assert "AQAB" not in lines[0]  # never the key


def test_an_integrator_killed_midway_resumes_without_forking(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path, witness: WitnessProcess
):
    env = private_env(
        service_env, tmp_path, DEBAR_LOG_WITNESSES=witnessed(witness), DEBAR_LOG_WITNESS_TIMEOUT_S="5"
    )  # a busy machine
    port = free_port()
    service = start_service("sanction", env, logs_dir, port=port)
    stop = threading.Event()
    decided: list[str] = []

    def load() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            while not stop.is_set():
                try:
                    decided.append(checks.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=2).decision_id)
                except grpc.RpcError:
                    time.sleep(0.05)  # the service is down for a moment

    loader = threading.Thread(target=load)
    loader.start()
    rng = random.Random(10)
    try:
        for _ in range(4):
            time.sleep(rng.uniform(0.3, 1.5))
            service.stop(signal.SIGKILL)
            service = start_service("sanction", env, logs_dir, port=port)
        time.sleep(1)
    finally:
        stop.set()
        loader.join()
    try:
        assert len(decided) > 20
        fetch_receipt(env, service, decided[-1])

        def cosigned() -> bool:
            # The witness cosigned the newest checkpoint: it only does from a consistency proof, so no fork.
            with grpc.insecure_channel(service.address) as channel:
                head = decision_pb2_grpc.DecisionServiceStub(channel).GetCheckpoint(
                    decision_pb2.GetCheckpointRequest(), metadata=PORTAL, timeout=TIMEOUT
                )
            try:
                open_checkpoint(head.note, LOG_KEY, witnesses=[witness.verifier])
            except ValueError:
                return False
            return True

        assert wait_for(cosigned, timeout_s=20, interval_s=0.5), service.log()
        assert "conflict" not in service.log() and "refused" not in service.log().lower().replace("refuses", "")
    finally:
        service.stop()
    done = debar(env, "log", "verify")
    assert done.returncode == 0, done.stderr
    assert b"0 broken" in done.stdout


def test_an_integrator_off_replica_takes_no_lease_and_integrates_nothing_while_an_on_one_does(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path
):
    env = private_env(service_env, tmp_path)
    keys = TreeKeys(env["DEBAR_REDIS_PREFIX"])
    redis = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(env["DEBAR_REDIS_URL"])
    off_metrics, on_metrics = free_port(), free_port()
    off_data, on_data = tmp_path / "off", tmp_path / "on"
    off = start_service(
        "sanction", {**env, "DEBAR_LOG_INTEGRATOR": "off", "DEBAR_METRICS_PORT": str(off_metrics),
                     "DEBAR_DATA_DIR": str(off_data)}, logs_dir,
    )  # fmt: skip
    try:
        decision_id = refuse(off)
        time.sleep(2)  # eight steps of an integrator that is on (one every 0.25 s while idle)
        assert redis.get(keys.lease) is None, off.log()
        assert not redis.exists(keys.state) and not redis.exists(keys.checkpoint)
        sequenced = list(redis.scan_iter(match=f"{env['DEBAR_REDIS_PREFIX']}:log:*", count=1000))  # every primary
        assert sequenced, "the off replica still sequences its entries"
        with grpc.insecure_channel(off.address) as channel:
            with pytest.raises(grpc.RpcError) as raised:
                decision_pb2_grpc.DecisionServiceStub(channel).GetDecisionProof(
                    decision_pb2.GetDecisionProofRequest(decision_id=decision_id), metadata=READER, timeout=TIMEOUT
                )
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # sequenced, not yet integrated
        assert total(scrape(off_metrics), "debar_log_integrated_leaves_total") == 0
        assert "'state': 'off'" in off.log()
        assert health_status(off.address, "debar.log.integrator") == "SERVING"  # off is not a fault
        assert not list(off_data.glob("checkpoints/*/*.note"))

        on = start_service(
            "sanction", {**env, "DEBAR_METRICS_PORT": str(on_metrics), "DEBAR_DATA_DIR": str(on_data)}, logs_dir
        )
        try:
            fetch_receipt(env, off, decision_id)  # integrated by the on replica, served by the off one
            later = refuse(off)
            fetch_receipt(env, off, later)
            owner = redis.get(keys.lease)
            assert owner is not None and owner.decode().split("/")[1] == str(on.process.pid)
            # reported by the on replica's integrator child every half second, so waited for
            assert wait_for(lambda: total(scrape(on_metrics), "debar_log_integrated_leaves_total") >= 2)
            assert total(scrape(off_metrics), "debar_log_integrated_leaves_total") == 0
            assert list(on_data.glob("checkpoints/*/*.note")) and not list(off_data.glob("checkpoints/*/*.note"))
        finally:
            on.stop()
    finally:
        off.stop()
