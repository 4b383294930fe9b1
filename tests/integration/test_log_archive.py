"""Retention: `debar log archive` moves records past their retention (and integrated into the Merkle tree) to
compressed JSON Lines and trims them from Redis; refusals stay while their restriction (plus the objection window)
lasts; `debar log verify --archive` rebuilds the tree from the files and Redis, and sees a tampered archive."""

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
from tests.support.keys import log_verify_env, where
from tests.support.requests import check_request, impose_request
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:test-secret-one-at-least-32-bytes"
DENY, ALLOW = common_pb2.OUTCOME_DENY, common_pb2.OUTCOME_ALLOW


def _at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def _cli(url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin", **log_verify_env(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "log", *args],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def _integrated(decisions: decision_pb2_grpc.DecisionServiceStub, decision_id: str) -> bool:
    try:
        decisions.GetDecisionProof(decision_pb2.GetDecisionProofRequest(decision_id=decision_id), timeout=5)
        return True
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        return False


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
            assert wait_for(lambda: _integrated(decisions, later_old_refusal.decision_id), timeout_s=30)

            _assert_no_archive_folder(
                _cli(server.url, tmp_path, "verify", "--archive", str(archive)), archive
            )  # none yet
            kept = _cli(server.url, tmp_path, "archive", "--dir", str(archive))  # default: keep a year
            assert kept.returncode == 0, kept.stderr
            assert "archived 0 records" in kept.stdout

            done = _cli(server.url, tmp_path, "archive", "--dir", str(archive), "--keep-days", "0")
            assert done.returncode == 0, done.stderr
            # The first Impose (a registry write, in the same stream), the ended refusal, the allow and the second
            # Impose go; the open-ended refusal stops the stream's archived prefix there.
            assert "archived 4 records holding 2 decisions from 1 buckets" in done.stdout
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

    again = _cli(server.url, tmp_path, "archive", "--dir", str(archive), "--keep-days", "0")
    assert "archived 0 records" in again.stdout
    # The tree commits to the archived entries too: without the archive they are missing.
    redis_only = _cli(server.url, tmp_path, "verify")
    assert redis_only.returncode == 1 and "archive" in redis_only.stderr, redis_only.stderr
    both = _cli(server.url, tmp_path, "verify", "--archive", str(archive))
    assert both.returncode == 0, both.stderr
    assert "(4 records from the archive)" in both.stdout and ", 0 broken" in both.stdout, both.stdout
    mistyped = tmp_path / "archvie"
    _assert_no_archive_folder(_cli(server.url, tmp_path, "verify", "--archive", str(mistyped)), mistyped)

    [archived_file] = list(archive.rglob("*.jsonl.gz"))
    lines = gzip.decompress(archived_file.read_bytes()).decode().splitlines()
    refusal = next(i for i, line in enumerate(lines) if "DENY" in line)  # the archived refusal made an allow
    tampered_lines = [line.replace("DENY", "ALLOW") if i == refusal else line for i, line in enumerate(lines)]
    archived_file.write_bytes(gzip.compress(("\n".join(tampered_lines) + "\n").encode()))
    tampered = _cli(server.url, tmp_path, "verify", "--archive", str(archive))
    assert tampered.returncode == 1, tampered.stdout
    assert "BROKEN" in tampered.stderr
    server.stop()


def _assert_no_archive_folder(done: subprocess.CompletedProcess[str], folder: Path) -> None:
    """A missing folder is a mistake to name, not an empty archive (nor every record broken)."""
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"no archive folder: {folder}" in done.stderr
    assert "BROKEN" not in done.stderr
