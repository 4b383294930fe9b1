"""Redis killed mid-run: fail-closed measures answer UNAVAILABLE, fail-open measures allow and spool, and once
Redis is back the spool is replayed: every decision id a caller was given is in the log, and the chains verify."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from debar.common.embedded_redis import EmbeddedRedis
from debar.v1 import decision_pb2, decision_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.support.requests import check_request
from tests.support.servers import health_status, start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:test-secret-one"
OPEN, CLOSED = "RAIL_TICKET_BAN", "RAIL_G_TRAIN"  # failure policies from the catalogue


def _verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "log", "verify"],
        capture_output=True, text=True, timeout=60, env={"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_no_decision_is_lost_across_a_redis_outage(tmp_path, logs_dir):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    restarted = EmbeddedRedis(redis.data_dir, redis.port)
    env = {
        "DEBAR_REDIS_URL": redis.url,
        "DEBAR_PSEUDONYM_KEYS": KEYS,
        "DEBAR_DATA_DIR": str(tmp_path / "data"),
        "DEBAR_PLAINTEXT": "true",
    }
    service = start_service("sanction", env, logs_dir)
    people = [new_ric() for _ in range(10)]
    given: list[str] = []  # every decision id handed to a caller
    try:
        with grpc.insecure_channel(service.address) as channel:
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)
            given += [checks.Check(check_request(p, OPEN)).decision_id for p in people]

            redis.stop(kill=True)
            spooled, refused = [], 0
            for person in people:
                answer = checks.Check(check_request(person, OPEN), timeout=5)
                assert answer.outcome == 1  # OUTCOME_ALLOW: fails open
                assert answer.degradation == sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
                assert answer.decision_id.startswith("S")
                spooled.append(answer.decision_id)
                with pytest.raises(grpc.RpcError) as raised:
                    checks.Check(check_request(person, CLOSED), timeout=5)
                assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
                refused += 1
            batch = checks.BatchCheck(
                sanction_pb2.BatchCheckRequest(items=[check_request(people[0], OPEN), check_request(people[0], CLOSED)])
            )
            assert batch.results[0].response.degradation == sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
            assert batch.results[1].error.code == grpc.StatusCode.UNAVAILABLE.value[0]
            spooled.append(batch.results[0].response.decision_id)
            given += spooled
            assert refused == 10

            restarted.start()
            assert wait_for(lambda: health_status(service.address) == "SERVING", timeout_s=15)

            def replayed() -> bool:
                try:
                    decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=spooled[-1]))
                except grpc.RpcError:
                    return False
                return True

            assert wait_for(replayed, timeout_s=15)
            for decision_id in given:  # count them: every id a caller was given is in the log
                logged = decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=decision_id))
                assert logged.measure == OPEN
                assert logged.spooled == decision_id.startswith("S")
            assert len(set(given)) == 21
    finally:
        service.stop()
        restarted.stop()
        redis.stop(kill=True)

    with EmbeddedRedis(redis.data_dir, redis.port) as again:  # AOF kept everything across the restarts
        result = _verify(again.url)
    assert result.returncode == 0, result.stderr
    assert "holding 21 decisions verified, 0 broken" in result.stdout
    assert not list((tmp_path / "data" / "spool").glob("*.jsonl"))  # nothing left waiting
