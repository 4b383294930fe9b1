"""Prometheus metrics of a running sanction service, scraped over HTTP: checks by measure and outcome, the
per-method latency histogram, Redis errors once Redis is killed, and fail-open decisions spooled meanwhile."""

from __future__ import annotations

import grpc
import pytest

from debar.local.embedded_redis import EmbeddedRedis, free_port
from debar.v1 import registry_pb2_grpc, sanction_pb2_grpc
from tests.support.metrics import scrape, total
from tests.support.requests import check_request, impose_request
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:test-secret-one-at-least-32-bytes"
OPEN, CLOSED = "RAIL_TICKET_BAN", "RAIL_G_TRAIN"  # failure policies from the catalogue
CHECK = "/debar.v1.SanctionService/Check"


def test_counters_move_with_checks_and_a_redis_outage(tmp_path, logs_dir):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    restarted = EmbeddedRedis(redis.data_dir, redis.port)
    metrics_port = free_port()
    env = {
        "DEBAR_REDIS_URL": redis.url,
        "DEBAR_PSEUDONYM_KEYS": KEYS,
        "DEBAR_DATA_DIR": str(tmp_path / "data"),
        "DEBAR_PLAINTEXT": "true",
        "DEBAR_METRICS_PORT": str(metrics_port),
        "DEBAR_LOG_FORMAT": "json",
    }
    service = start_service("sanction", env, logs_dir)
    try:
        before = scrape(metrics_port)
        refused, allowed = new_ric(), new_ric()
        with grpc.insecure_channel(service.address) as channel:
            registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(refused, measures=[CLOSED]))
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            assert checks.Check(check_request(refused, CLOSED)).outcome == 2  # OUTCOME_DENY
            for _ in range(3):
                assert checks.Check(check_request(allowed, CLOSED)).outcome == 1  # OUTCOME_ALLOW
            after = scrape(metrics_port)
            deny = {"measure": CLOSED, "outcome": "DENY", "degradation": "none"}
            allow = {**deny, "outcome": "ALLOW"}
            assert total(after, "debar_checks_total", **deny) - total(before, "debar_checks_total", **deny) == 1
            assert total(after, "debar_checks_total", **allow) - total(before, "debar_checks_total", **allow) == 3
            count = "debar_grpc_server_handling_seconds_count"
            assert total(after, count, method=CHECK) - total(before, count, method=CHECK) == 4
            assert total(after, "debar_grpc_server_handled_total", method=CHECK, code="OK") >= 4

            redis.stop(kill=True)
            with pytest.raises(grpc.RpcError) as raised:
                checks.Check(check_request(allowed, CLOSED), timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert checks.Check(check_request(allowed, OPEN), timeout=5).outcome == 1  # fails open, spooled
            outage = scrape(metrics_port)
            assert total(outage, "debar_redis_errors_total") >= 2
            assert total(outage, "debar_spooled_decisions_total") == 1
            spooled = {"measure": OPEN, "outcome": "ALLOW", "degradation": "failed_open_spooled"}
            assert total(outage, "debar_checks_total", **spooled) == 1
            assert total(outage, "debar_grpc_server_handled_total", method=CHECK, code="UNAVAILABLE") == 1

            restarted.start()  # the same data: the spool is replayed
            assert wait_for(lambda: total(scrape(metrics_port), "debar_replayed_decisions_total") == 1)
    finally:
        service.stop()
        restarted.stop()
        redis.stop(kill=True)


def test_import_counts_and_objections_are_exported_by_the_sanction_service(tmp_path, logs_dir):
    """`debar import` is a short command with no metrics port: it adds its counts to Redis, and the sanction
    service exports them with the objections by state when scraped."""
    import json
    import subprocess
    import sys

    from debar.v1 import decision_pb2, decision_pb2_grpc

    redis = EmbeddedRedis(tmp_path / "redis").start()
    metrics_port = free_port()
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"),
           "DEBAR_PLAINTEXT": "true", "DEBAR_METRICS_PORT": str(metrics_port)}  # fmt: skip
    listed, other = new_ric(), new_ric()
    feed = tmp_path / "feed.jsonl"
    line = {"source": "court_consumption_order", "subject": {"id_type": "RIC", "id": listed}, "legal_basis": "Art. 3",
            "authority": "Court", "case_number": "C-1", "effective_from": "2025-03-01"}  # fmt: skip
    feed.write_text(
        "\n".join(
            [
                json.dumps({**line, "source_id": "M-1"}),
                json.dumps({**line, "source_id": "M-2", "subject": {"id_type": "RIC", "id": other}}),
                json.dumps({**line, "source_id": "M-3", "subject": {"id_type": "RIC", "id": "123"}}),  # rejected
            ]
        )
        + "\n"
    )
    imported = subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", redis.url, "import", "--quiet", str(feed)],
        capture_output=True, text=True, timeout=60, env={"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert imported.returncode == 1 and "added 2" in imported.stdout, imported.stderr
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            refused = sanction_pb2_grpc.SanctionServiceStub(channel).Check(check_request(listed, CLOSED))
            decision_pb2_grpc.DecisionServiceStub(channel).FileObjection(
                decision_pb2.FileObjectionRequest(decision_id=refused.decision_id, statement="not me", contact="c")
            )
        samples = scrape(metrics_port)  # the first scrape reads Redis afresh
        assert total(samples, "debar_import_lines_total", result="added") == 2
        assert total(samples, "debar_import_lines_total", result="rejected") == 1
        assert total(samples, "debar_objections", state="filed") == 1
        assert total(samples, "debar_objections_overdue") == 0
    finally:
        service.stop()
        redis.stop()


def test_writes_refused_for_too_few_replicas_are_counted(tmp_path, logs_dir):
    """DEBAR_REDIS_MIN_REPLICAS=1 on a Redis with no replica: a registry write is refused (UNAVAILABLE, never
    acknowledged) and debar_writes_unreplicated_total counts the refusals (the log integrator's writes too; health's
    probes are not: tests/integration/test_replication.py), while health says NOT_SERVING."""
    from tests.support.servers import health_status

    redis = EmbeddedRedis(tmp_path / "redis").start()
    metrics_port = free_port()
    env = {
        "DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"),
        "DEBAR_PLAINTEXT": "true", "DEBAR_METRICS_PORT": str(metrics_port), "DEBAR_REDIS_MIN_REPLICAS": "1",
    }  # fmt: skip
    service = start_service("sanction", env, logs_dir, wait_serving=False)
    try:
        assert wait_for(lambda: health_status(service.address) == "NOT_SERVING"), service.log()
        with grpc.insecure_channel(service.address) as channel, pytest.raises(grpc.RpcError) as raised:
            registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(new_ric()), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE, raised.value.details()
        assert total(scrape(metrics_port), "debar_writes_unreplicated_total") >= 1
    finally:
        service.stop()
        redis.stop(kill=True)
