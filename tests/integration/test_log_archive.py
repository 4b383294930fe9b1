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
from debar.local.local_cluster import LocalCluster
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.support.keys import log_verify_env, where
from tests.support.requests import check_request, impose_request, subject
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:test-secret-one-at-least-32-bytes"
DENY, ALLOW = common_pb2.OUTCOME_DENY, common_pb2.OUTCOME_ALLOW


def _at(day: str) -> float:
    return datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp()


def _cli(url: str, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin", **log_verify_env(data_dir), **(env or {})}
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
    # The archived decision records kept their seals (field q), and verify checked them.
    assert " 0 decisions sealed" not in both.stdout and "decisions sealed by the service" in both.stdout, both.stdout
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


def _ds_family(client: redis_client.Redis | redis_client.RedisCluster) -> tuple[int, int, int]:
    """Keys of the `ds` family (subjects' decision lists), their items (LLEN) and their Redis memory (MEMORY
    USAGE)."""
    keys = list(client.scan_iter(match="debar:ds:*", count=1000))
    items = sum(client.llen(k) for k in keys)
    return len(keys), items, sum(client.memory_usage(k, samples=0) or 0 for k in keys)


def test_archived_decisions_leave_their_subjects_decision_lists(tmp_path, logs_dir):
    """After `debar log archive`, a subject's decision list (ListDecisions) holds only what Redis still holds: the
    archived decisions leave it, a batch's too (its subjects sit in other buckets than its record's stream), while a
    refusal kept for its open-ended restriction and decisions made after stay listed."""
    server = (LocalCluster(tmp_path / "cluster") if ON_CLUSTER else EmbeddedRedis(tmp_path / "redis")).start()
    cluster = {"DEBAR_REDIS_CLUSTER": "true"} if ON_CLUSTER else {}
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true", **cluster}  # fmt: skip
    client = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(server.url)
    service = start_service("sanction", env, logs_dir)
    restricted, people = new_ric(), [new_ric() for _ in range(40)]
    try:
        with grpc.insecure_channel(service.address) as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)

            def listed(number: str) -> list[str]:
                request = decision_pb2.ListDecisionsRequest(subject=subject(number), page_size=100)
                return [d.decision_id for d in decisions.ListDecisions(request).decisions]

            registry.Impose(impose_request(restricted, measures=["HOTEL_STAR_RATED"]))  # no end: until lifted
            kept = checks.Check(check_request(restricted, "HOTEL_STAR_RATED"))
            assert kept.outcome == DENY
            batch = sanction_pb2.BatchCheckRequest(
                items=[check_request(p, m) for p in people for m in ("RAIL_G_TRAIN", "AIR_TRAVEL")]
            )
            batched = [r.response.decision_id for r in checks.BatchCheck(batch).results]
            singles = [checks.Check(check_request(p, "RAIL_G_TRAIN")).decision_id for p in people]
            assert len(batched) == 80 and all(batched)
            assert all(wait_for(lambda d=d: _integrated(decisions, d), timeout_s=30) for d in batched + singles)
            assert all(len(listed(p)) == 3 for p in people) and listed(restricted) == [kept.decision_id]
            lists_before, items_before, bytes_before = _ds_family(client)
            assert (lists_before, items_before) == (len(people) + 1, len(batched + singles) + 1)

            done = _cli(server.url, tmp_path, "archive", "--dir", str(tmp_path / "archive"), "--keep-days", "0",
                        env=cluster)  # fmt: skip
            assert done.returncode == 0, done.stderr
            archived = [gzip.decompress(f.read_bytes()).decode() for f in (tmp_path / "archive").rglob("*.jsonl.gz")]
            assert any('"sb"' in text for text in archived)  # a record with subjects of other buckets went too
            lists_after, items_after, bytes_after = _ds_family(client)

            after = checks.Check(check_request(people[0], "AIR_TRAVEL")).decision_id
            # Every allow went (the archive keeps them); the refusal its open restriction keeps stays listed, and
            # so do decisions made since. Some allows of a stream after a kept refusal's record stay in Redis:
            # exactly those stay listed.
            still = {p: listed(p) for p in people}
            for ids in still.values():
                for decision_id in ids:
                    decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=decision_id))  # in Redis
            assert listed(restricted) == [kept.decision_id]
            assert after in still[people[0]]
            left = sum(len(ids) for ids in still.values()) - 1  # not `after`
            assert left < len(batched + singles) // 4, still
            assert items_after == left + 1  # the lists hold nothing GetDecision would not find
            assert lists_after < lists_before and bytes_after < bytes_before / 2, (bytes_before, bytes_after)
            print(f"ds family: {lists_before} lists, {items_before} items, {bytes_before} B -> {lists_after} lists, "
                  f"{items_after} items, {bytes_after} B")  # fmt: skip
    finally:
        service.stop()
        client.close()
        server.stop()


def test_archived_decisions_leave_lists_re_keyed_since(tmp_path, logs_dir):
    """A decision logged under the previous pseudonymisation key, whose list `debar rekey` has moved to the current
    key's pseudonym, leaves that list when it is archived."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    rotated = {"DEBAR_PSEUDONYM_KEYS": f"t2:second-test-secret-at-least-32-bytes,{KEYS}"}
    service = start_service("sanction", env, logs_dir)
    person = new_ric()
    try:
        with grpc.insecure_channel(service.address) as channel:
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)
            allowed = checks.Check(check_request(person, "RAIL_G_TRAIN")).decision_id
            assert wait_for(lambda: _integrated(decisions, allowed), timeout_s=30)
    finally:
        service.stop()
    client = redis_client.Redis.from_url(server.url)
    rekeyed = subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", server.url, "rekey"],
        capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", **log_verify_env(tmp_path), **rotated},
    )  # fmt: skip
    assert rekeyed.returncode == 0, rekeyed.stderr
    [moved] = [k.decode() for k in client.scan_iter(match="debar:ds:*")]
    assert ":t2." in moved and client.llen(moved) == 1

    done = _cli(server.url, tmp_path, "archive", "--dir", str(tmp_path / "archive"), "--keep-days", "0", env=rotated)
    assert done.returncode == 0, done.stderr
    assert "holding 1 decisions" in done.stdout
    assert client.llen(moved) == 0
    client.close()
    server.stop()
