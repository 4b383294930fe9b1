"""Retention: `debar log archive` moves records past their retention to compressed JSON Lines and trims them from
Redis; refusals stay while their restriction (plus the objection window) lasts; `debar log verify --archive`
checks the chain through the files and on into Redis, and sees a tampered archive."""

from __future__ import annotations

import gzip
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import grpc
import redis as redis_client

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.keys import test_log_signing_key_file, where
from tests.support.requests import check_request, impose_request
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:test-secret-one-at-least-32-bytes"
DENY, ALLOW = common_pb2.OUTCOME_DENY, common_pb2.OUTCOME_ALLOW


def _at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def _cli(url: str, *args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin", "DEBAR_LOG_SIGNING_KEY": test_log_signing_key_file()}
    if data_dir is not None:
        env["DEBAR_DATA_DIR"] = str(data_dir)  # where the service kept its checkpoints
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "log", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_archive_trims_only_what_retention_allows_and_verify_spans_files_and_redis(tmp_path, logs_dir):
    server = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    person = new_ric()
    try:
        with grpc.insecure_channel(service.address) as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)
            registry.Impose(impose_request(person, start=_at("2020-01-01"), end=_at("2020-12-31")))
            old_refusal = checks.Check(check_request(person, "RAIL_G_TRAIN", at=_at("2020-06-01")))
            allowed = checks.Check(check_request(person, "RAIL_G_TRAIN"))
            registry.Impose(impose_request(person, measures=["HOTEL_STAR_RATED"]))  # no end: until lifted
            open_refusal = checks.Check(check_request(person, "HOTEL_STAR_RATED"))
            later_old_refusal = checks.Check(check_request(person, "AIR_TRAVEL", at=_at("2020-06-01")))
            assert [old_refusal.outcome, allowed.outcome, open_refusal.outcome, later_old_refusal.outcome] == [
                DENY, ALLOW, DENY, DENY,
            ]  # fmt: skip
            archive = tmp_path / "archive"
            # Only what the Merkle tree holds may be archived: wait for the integrator.
            proof = decision_pb2.GetDecisionProofRequest(decision_id=later_old_refusal.decision_id)
            assert wait_for(lambda: _proven(decisions, proof), timeout_s=30)

            _assert_no_archive_folder(_cli(server.url, "verify", "--archive", str(archive)), archive)  # none yet
            kept = _cli(server.url, "archive", "--dir", str(archive))  # default: keep a year
            assert kept.returncode == 0, kept.stderr
            assert "archived 0 records" in kept.stdout

            done = _cli(server.url, "archive", "--dir", str(archive), "--keep-days", "0")
            assert done.returncode == 0, done.stderr
            # The ended refusal and the allow go; the open-ended refusal stops the chain's archived prefix there.
            # (with the two registry writes sequenced before them in the same stream)
            assert "archived 4 records holding 2 decisions from 1 chains" in done.stdout
            bucket = where(old_refusal.decision_id).bucket
            assert redis_client.Redis.from_url(server.url).xlen(f"debar:log:{{{bucket}}}") == 2

            for gone in (old_refusal, allowed):
                try:
                    decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=gone.decision_id))
                    raise AssertionError("an archived decision is no longer in Redis")
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.NOT_FOUND
                    assert "archived" in error.details()
            for live in (open_refusal, later_old_refusal):
                decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=live.decision_id))
    finally:
        service.stop()

    again = _cli(server.url, "archive", "--dir", str(archive), "--keep-days", "0")
    assert "archived 0 records" in again.stdout
    # Without the archive, the trimmed records are missing under signed checkpoints; with it, all verifies.
    redis_only = _cli(server.url, "verify", data_dir=tmp_path)
    assert redis_only.returncode == 1, redis_only.stderr
    assert "is missing from Redis and the archive" in redis_only.stderr
    both = _cli(server.url, "verify", "--archive", str(archive), data_dir=tmp_path)
    assert both.returncode == 0, both.stderr
    assert "(4 records from the archive)" in both.stdout and " 0 broken" in both.stdout
    mistyped = tmp_path / "archvie"
    _assert_no_archive_folder(_cli(server.url, "verify", "--archive", str(mistyped)), mistyped)

    [archived_file] = list(archive.rglob("*.jsonl.gz"))
    lines = gzip.decompress(archived_file.read_bytes()).decode().splitlines()
    refusal = next(i for i, line in enumerate(lines) if "DENY" in line)
    lines[refusal] = lines[refusal].replace("DENY", "ALLOW")
    archived_file.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    tampered = _cli(server.url, "verify", "--archive", str(archive), data_dir=tmp_path)
    assert tampered.returncode == 1
    assert "BROKEN" in tampered.stderr
    server.stop()


def _proven(decisions: decision_pb2_grpc.DecisionServiceStub, request: decision_pb2.GetDecisionProofRequest) -> bool:
    try:
        decisions.GetDecisionProof(request, metadata=[("x-debar-caller", "portal")])
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        return False
    return True


def _assert_no_archive_folder(done: subprocess.CompletedProcess[str], folder: Path) -> None:
    """A missing folder is a mistake to name, not an empty archive (nor every chain broken)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"no archive folder: {folder}" in done.stderr
    assert "BROKEN" not in done.stderr
