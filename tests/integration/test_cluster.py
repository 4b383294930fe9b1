"""The sanction service on a real 3-master Redis Cluster: import, role links across slots and nodes, batches
spanning nodes, and the Merkle log over every node's streams verified. (The whole integration suite also runs on a
cluster with DEBAR_TEST_REDIS=cluster; CI does both.)"""

from __future__ import annotations

import json
import subprocess
import sys

import grpc
import pytest
from redis.cluster import RedisCluster

from debar.common.identifiers import IdKind, Placement, validate_identifier
from debar.common.settings import DEV_BUCKET_KEY
from debar.sanction.adapters.keys import Keys
from debar.v1 import common_pb2, decision_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.support.cluster import LocalCluster
from tests.support.keys import log_verify_env, where
from tests.support.log import receipt_when_ready
from tests.support.requests import check_request
from tests.support.servers import start_service
from tests.support.subjects import new_ric, new_uscc

KEYS = "t1:test-secret-one-at-least-32-bytes"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    local = LocalCluster(tmp_path_factory.mktemp("cluster")).start()
    yield local
    local.stop()


def _cli(cluster: LocalCluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {"DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_REDIS_CLUSTER": "true", "PATH": "/usr/bin:/bin", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", cluster.url, *args],
        capture_output=True, text=True, timeout=60, env=full,
    )  # fmt: skip


def _node_of(cluster: LocalCluster, number: str) -> str:
    kind = IdKind.USCC if number.startswith("9") else IdKind.RIC
    bucket = Placement(DEV_BUCKET_KEY.encode()).bucket(validate_identifier(kind, number))  # the CLI's and server's
    client = RedisCluster.from_url(cluster.url)
    try:
        return client.get_node_from_key(Keys().log(bucket)).name
    finally:
        client.close()


def test_import_check_and_verify_on_a_cluster(cluster, tmp_path, logs_dir):
    company = new_uscc()
    person = next(p for p in (new_ric() for _ in range(100)) if _node_of(cluster, p) != _node_of(cluster, company))
    others = [new_ric() for _ in range(30)]
    lines = [
        {
            "source": "court_consumption_order", "source_id": f"C-{i}",
            "subject": {"id_type": "RIC", "id": number}, "legal_basis": "SPC Provisions, Art. 3",
            "authority": "Beijing Chaoyang District People's Court", "case_number": f"(2025) C {i}",
            "effective_from": "2025-01-01",
        }
        for i, number in enumerate(others[:10])
    ]  # fmt: skip
    lines.append(
        {
            "source": "court_consumption_order", "source_id": "C-company", "name": "Acme Trading Co.",
            "subject": {"id_type": "USCC", "id": company}, "legal_basis": "SPC Provisions, Art. 3",
            "authority": "Beijing Chaoyang District People's Court", "case_number": "(2025) C 99",
            "effective_from": "2025-01-01",
            "principals": [{"subject": {"id_type": "RIC", "id": person}, "role": "LEGAL_REPRESENTATIVE"}],
        }
    )  # fmt: skip
    feed = tmp_path / "feed.jsonl"
    feed.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    imported = _cli(cluster, "import", str(feed), "--quiet")
    assert imported.returncode == 0, imported.stderr
    assert "added 11" in imported.stdout

    env = {"DEBAR_REDIS_URL": cluster.url, "DEBAR_REDIS_CLUSTER": "true", "DEBAR_PSEUDONYM_KEYS": KEYS,
           "DEBAR_DATA_DIR": str(tmp_path / "data"), "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = sanction_pb2_grpc.SanctionServiceStub(channel)
            # The person's data and the company's live on different nodes: the role link reaches across.
            refused = stub.Check(check_request(person, "HOTEL_STAR_RATED"))
            assert refused.outcome == common_pb2.OUTCOME_DENY
            assert refused.grounds[0].role == common_pb2.ROLE_LEGAL_REPRESENTATIVE
            assert refused.grounds[0].via == "Ac************o."
            batch = stub.BatchCheck(
                sanction_pb2.BatchCheckRequest(items=[check_request(n, "RAIL_G_TRAIN") for n in others])
            )
            # In a signed checkpoint before the service stops (its integrator is a child process that starts after it).
            receipt_when_ready(decision_pb2_grpc.DecisionServiceStub(channel), batch.results[-1].response.decision_id)
    finally:
        service.stop()
    outcomes = [r.response.outcome for r in batch.results]
    assert outcomes == [common_pb2.OUTCOME_DENY] * 10 + [common_pb2.OUTCOME_ALLOW] * 20
    assert len({_node_of(cluster, n) for n in others}) == 3  # the batch spanned every node
    located = [where(r.response.decision_id) for r in batch.results]
    assert len({(a.bucket, a.stream_id) for a in located}) == 3  # one log record per node

    verified = _cli(cluster, "log", "verify", env=log_verify_env(tmp_path / "data"))
    assert verified.returncode == 0, verified.stderr
    assert ", 0 broken" in verified.stdout, verified.stdout
