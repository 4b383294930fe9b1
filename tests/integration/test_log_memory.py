"""Redis bytes per decision before and after `debar log archive`, on a private server (or the private 3-master
cluster with DEBAR_TEST_REDIS=cluster): 4,000 Checks one at a time, of 40 subjects asked 100 times each and of
4,000 fresh subjects, every one integrated and signed; then archived with --keep-days 0. `used_memory` (summed over
the nodes) less the server's before the first Check, per decision, and MEMORY USAGE by key family. The figures
printed are README's ("Sizing a national deployment"); the test holds what the archive promises: the stream
records, the decision lists, the full tiles, the leaf order and the leaf index of archived records leave."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis as redis_client

from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_cluster import LocalCluster
from debar.sanction.adapters.keys import TreeKeys
from debar.v1 import decision_pb2, decision_pb2_grpc, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.integration.test_log_tiles import _debar
from tests.support.keys import log_verify_env
from tests.support.requests import check_request
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric

DECISIONS = int(os.environ.get("DEBAR_TEST_DECISIONS", "4000"))  # README's figures: 4,000 and 20,000
KEYS = "t1:test-secret-one-at-least-32-bytes"


def _clients(server: Any) -> list[redis_client.Redis]:
    nodes = server.nodes if ON_CLUSTER else [server]
    return [redis_client.Redis.from_url(n.url) for n in nodes]


def _used(clients: list[redis_client.Redis]) -> int:
    return sum(int(c.info("memory")["used_memory"]) for c in clients)


def _families(clients: list[redis_client.Redis]) -> Counter[str]:
    """MEMORY USAGE by key family: `debar:<family>`, and the tree's keys as `{tlog}:<name>` (tiles as `{tlog}:t`)."""
    sizes: Counter[str] = Counter()
    for c in clients:
        for key in c.scan_iter(count=1000):
            parts = key.decode().split(":")
            family = f"{parts[1]}:{parts[2]}" if parts[1] == "{tlog}" else parts[1]
            sizes[family] += int(c.memory_usage(key, samples=0) or 0)
    return sizes


@pytest.mark.timeout(600)  # 20,000 decisions one at a time take a while on a shared machine
@pytest.mark.parametrize("subjects", ["repeated", "fresh"])
def test_redis_bytes_per_decision_before_and_after_archiving(subjects: str, tmp_path: Path, logs_dir: Path):
    server = (LocalCluster(tmp_path / "cluster") if ON_CLUSTER else EmbeddedRedis(tmp_path / "redis")).start()
    clients = _clients(server)
    env = {**log_verify_env(tmp_path), "DEBAR_REDIS_URL": server.url, "DEBAR_PSEUDONYM_KEYS": KEYS,
           "DEBAR_DATA_DIR": str(tmp_path), "DEBAR_PLAINTEXT": "true",
           "DEBAR_REDIS_CLUSTER": "true" if ON_CLUSTER else "false"}  # fmt: skip
    people = [new_ric() for _ in range(40)] if subjects == "repeated" else [new_ric() for _ in range(DECISIONS)]
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)
            empty = _used(clients)
            ids = [
                checks.Check(check_request(people[i % len(people)], "RAIL_G_TRAIN")).decision_id
                for i in range(DECISIONS)
            ]

            def signed() -> bool:
                try:
                    proof = decisions.GetDecisionProof(decision_pb2.GetDecisionProofRequest(decision_id=ids[-1]))
                except grpc.RpcError:
                    return False
                return proof.checkpoint.size >= DECISIONS

            assert wait_for(signed, timeout_s=120, interval_s=0.2)
    finally:
        service.stop()
    before, families_before = _used(clients) - empty, _families(clients)
    done = _debar(env, "archive", "--dir", str(tmp_path / "archive"), "--keep-days", "0")
    assert done.returncode == 0, done.stderr
    after, families_after = _used(clients) - empty, _families(clients)
    tree = TreeKeys()
    print(
        f"\n{subjects} subjects, {DECISIONS} decisions{' (cluster)' if ON_CLUSTER else ''}: used_memory "
        f"{before / DECISIONS:.0f} -> {after / DECISIONS:.0f} B a decision; {done.stdout.strip()}\n"
        f"  MEMORY USAGE by family before: {dict(families_before.most_common())}\n"
        f"  after: {dict(families_after.most_common())}"
    )
    client = redis_client.RedisCluster.from_url(server.url) if ON_CLUSTER else clients[0]
    assert client.llen(tree.records) < 2 * 256 and client.hlen(tree.leaf) < 2 * 256  # the last tiles' records
    assert client.hlen(tree.unarchived) == 0
    # By the keys themselves (used_memory of a 3-node cluster moves with much besides them).
    assert sum(families_after.values()) < sum(families_before.values()) / 10, (families_before, families_after)
    verified = _debar(env, "verify", "--archive", str(tmp_path / "archive"))
    assert verified.returncode == 0 and ", 0 broken" in verified.stdout, (verified.stdout, verified.stderr)
    for c in clients:
        c.close()
    server.stop()
