"""Redis killed mid-run: fail-closed measures answer UNAVAILABLE, fail-open measures allow and spool, and once
Redis is back the spool is replayed: every decision id a caller was given is in the log, and the chains verify."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import decision_pb2, decision_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.support.keys import TEST_BUCKET_KEY, log_verify_env
from tests.support.requests import LIFT_DOCUMENT, PERMIT_DOCUMENT, check_request, impose_request, subject
from tests.support.servers import health_status, start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:test-secret-one-at-least-32-bytes"
OPEN, CLOSED = "RAIL_TICKET_BAN", "RAIL_G_TRAIN"  # failure policies from the catalogue


def _verify(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin", **log_verify_env(data_dir, TEST_BUCKET_KEY)}
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "log", "verify"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_no_decision_is_lost_across_a_redis_outage(tmp_path, logs_dir):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    restarted = EmbeddedRedis(redis.data_dir, redis.port)
    env = {
        "DEBAR_REDIS_URL": redis.url,
        "DEBAR_PSEUDONYM_KEYS": KEYS,
        "DEBAR_BUCKET_KEY": TEST_BUCKET_KEY,  # spooled under the keyed bucket, replayed and found under it
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
                assert len(answer.decision_id) == 26 and answer.decision_id not in given  # an id like any other
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
                assert logged.spooled == (decision_id in spooled)
            assert len(set(given)) == 21
            # The person's own listing finds the replayed decision beside the one logged before the outage.
            mine = decisions.ListDecisions(decision_pb2.ListDecisionsRequest(subject=subject(people[1])))
            assert len(mine.decisions) == 2 and {d.spooled for d in mine.decisions} == {False, True}
    finally:
        service.stop()
        restarted.stop()
        redis.stop(kill=True)

    with EmbeddedRedis(redis.data_dir, redis.port) as again:  # AOF kept everything across the restarts
        result = _verify(again.url, tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert ", 0 broken" in result.stdout, result.stdout
    assert not list((tmp_path / "data" / "spool").rglob("*.jsonl"))  # nothing left waiting


def test_every_call_answers_unavailable_while_redis_is_frozen(tmp_path, logs_dir):
    """A Redis that stops answering (SIGSTOP: connections stay open, replies never come) is UNAVAILABLE on every
    method that needs it, with a plain message (no Redis address, no client class names), and, once the breaker
    has opened, at once rather than after each call's Redis timeout."""
    import signal
    import time

    from google.protobuf.timestamp_pb2 import Timestamp

    from debar.v1 import registry_pb2, registry_pb2_grpc

    redis = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    person = new_ric()
    try:
        with grpc.insecure_channel(service.address) as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)
            rid = registry.Impose(impose_request(person)).restriction.id
            refused = sanction_pb2_grpc.SanctionServiceStub(channel).Check(check_request(person, CLOSED))
            objection = decisions.FileObjection(
                decision_pb2.FileObjectionRequest(decision_id=refused.decision_id, statement="not me", contact="x@y.z")
            )
            since, until = Timestamp(seconds=int(time.time())), Timestamp(seconds=int(time.time()) + 3600)
            calls = {
                "Impose": lambda: registry.Impose(impose_request(new_ric()), timeout=5),
                "Lift": lambda: registry.Lift(
                    registry_pb2.LiftRequest(restriction_id=rid, reason="r", document_number=LIFT_DOCUMENT), timeout=5
                ),
                "GetRestriction": lambda: registry.GetRestriction(
                    registry_pb2.GetRestrictionRequest(restriction_id=rid), timeout=5
                ),
                "ListRestrictions": lambda: registry.ListRestrictions(
                    registry_pb2.ListRestrictionsRequest(subject=subject(person)), timeout=5
                ),
                "GrantExemption": lambda: registry.GrantExemption(
                    registry_pb2.GrantExemptionRequest(
                        subject=subject(person),
                        measure=CLOSED,
                        effective_from=since,
                        effective_until=until,
                        authority="court",
                        reason="funeral",
                        document_number=PERMIT_DOCUMENT,
                    ),
                    timeout=5,
                ),
                "GetDecision": lambda: decisions.GetDecision(
                    decision_pb2.GetDecisionRequest(decision_id=refused.decision_id), timeout=5
                ),
                "ListDecisions": lambda: decisions.ListDecisions(
                    decision_pb2.ListDecisionsRequest(subject=subject(person)), timeout=5
                ),
                "FileObjection": lambda: decisions.FileObjection(
                    decision_pb2.FileObjectionRequest(decision_id=refused.decision_id, statement="s", contact="c"),
                    timeout=5,
                ),
                "GetObjection": lambda: decisions.GetObjection(
                    decision_pb2.GetObjectionRequest(objection_id=objection.objection_id), timeout=5
                ),
                "ListObjections": lambda: decisions.ListObjections(decision_pb2.ListObjectionsRequest(), timeout=5),
                "ReviewObjection": lambda: decisions.ReviewObjection(
                    decision_pb2.ReviewObjectionRequest(objection_id=objection.objection_id),
                    timeout=5,
                ),
                "ConfirmResolution": lambda: decisions.ConfirmResolution(
                    decision_pb2.ConfirmResolutionRequest(objection_id=objection.objection_id), timeout=5
                ),
                "ConfirmLift": lambda: registry.ConfirmLift(
                    registry_pb2.ConfirmLiftRequest(restriction_id=rid, document_number=LIFT_DOCUMENT), timeout=5
                ),
            }
            assert redis.process is not None
            redis.process.send_signal(signal.SIGSTOP)
            try:
                for _ in range(2):  # the second round meets an open breaker
                    for name, call in calls.items():
                        started = time.monotonic()
                        with pytest.raises(grpc.RpcError) as raised:
                            call()
                        error = raised.value
                        assert error.code() == grpc.StatusCode.UNAVAILABLE, (name, error.code(), error.details())
                        assert "unreachable" in error.details() and "127.0.0.1" not in error.details(), name
                        assert time.monotonic() - started < 3, name
                durations = []
                for _ in range(5):  # the breaker is open: no wait for Redis's 0.5 s timeout, but for the one
                    started = time.monotonic()  # trial call it lets through each second
                    with pytest.raises(grpc.RpcError):
                        calls["GetDecision"]()
                    durations.append(time.monotonic() - started)
                assert sorted(durations)[2] < 0.3, durations
                # The health probe (once a second, through the same breaker) has seen the freeze too. Without
                # this wait the SERVING below could be the stale one from before the freeze (the probe still in
                # flight), and the call after it met the breaker still open: the flake, 1 run in 4.
                assert wait_for(lambda: health_status(service.address) == "NOT_SERVING", timeout_s=10)
            finally:
                redis.process.send_signal(signal.SIGCONT)
            # SERVING again means a probe went through the breaker and Redis answered it: the breaker is closed.
            assert wait_for(lambda: health_status(service.address) == "SERVING", timeout_s=15)

            def answered() -> bool:  # the breaker closes on its next trial call (a background flush may take one)
                try:
                    return registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid)).id == rid
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                    return False

            assert wait_for(answered, timeout_s=5)
    finally:
        service.stop()
        redis.stop()


def test_a_railway_verdict_says_which_decisions_were_spooled_while_redis_was_away(tmp_path, logs_dir):
    """A K-train hard seat asks only RAIL_TICKET_BAN, which fails open: with Redis killed the ticket is allowed,
    and the verdict names the spooled decision; a G-train ticket also needs RAIL_G_TRAIN (fails closed) and gets
    UNAVAILABLE, never an allow."""
    from debar.v1 import railway_pb2, railway_pb2_grpc

    redis = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    sanction = start_service("sanction", env, logs_dir)
    railway = start_service("railway", {**env, "DEBAR_SANCTION_ADDRESS": sanction.address}, logs_dir)
    try:
        with grpc.insecure_channel(railway.address) as channel:
            stub = railway_pb2_grpc.RailwayServiceStub(channel)

            def ticket(train: str, seat: int) -> railway_pb2.CheckTicketRequest:
                return railway_pb2.CheckTicketRequest(passenger=subject(new_ric()), train_number=train, seat_class=seat)

            steady = stub.CheckTicket(ticket("K1", railway_pb2.SEAT_CLASS_HARD_SEAT), timeout=5)
            assert steady.allowed and not steady.spooled_decision_ids
            redis.stop(kill=True)
            degraded = stub.CheckTicket(ticket("K1", railway_pb2.SEAT_CLASS_HARD_SEAT), timeout=5)
            assert degraded.allowed
            assert list(degraded.spooled_decision_ids) == list(degraded.decision_ids)
            assert len(degraded.decision_ids[0]) == 26
            with pytest.raises(grpc.RpcError) as raised:
                stub.CheckTicket(ticket("G123", railway_pb2.SEAT_CLASS_SECOND), timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        railway.stop()
        sanction.stop()
        redis.stop()


@pytest.mark.parametrize("policy", ["open", "closed"])
def test_the_rate_limiters_failure_policy_is_a_setting(tmp_path, logs_dir, policy):
    """Before: the limiter let every call through on any Redis error, so a caller past its rate got unmetered
    checks whenever the counters were away. Closed (deploy/'s prod): UNAVAILABLE, even for a fail-open measure."""
    redis = EmbeddedRedis(tmp_path / "redis").start()
    scopes = tmp_path / "scopes.json"
    scopes.write_text(json.dumps({"callers": {"limited": {"scopes": ["check:*"], "rate": {"checks": 1000}}}}))
    env = {
        "DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_BUCKET_KEY": TEST_BUCKET_KEY,
        "DEBAR_DATA_DIR": str(tmp_path / "data"), "DEBAR_PLAINTEXT": "true", "DEBAR_SCOPES_FILE": str(scopes),
        "DEBAR_RATE_LIMITER_FAILURE": policy,
    }  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    limited = [("x-debar-caller", "limited")]
    try:
        with grpc.insecure_channel(service.address) as channel:
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            assert checks.Check(check_request(new_ric(), OPEN), metadata=limited, timeout=5).outcome == 1
            redis.stop(kill=True)
            if policy == "open":
                answer = checks.Check(check_request(new_ric(), OPEN), metadata=limited, timeout=5)
                assert answer.degradation == sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
            else:
                with pytest.raises(grpc.RpcError) as raised:
                    checks.Check(check_request(new_ric(), OPEN), metadata=limited, timeout=5)
                assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
                assert "rate counters are unreachable" in raised.value.details()
        assert f"rate limiter unavailable, {'letting' if policy == 'open' else 'refusing'} 'limited'" in service.log()
    finally:
        service.stop()
        redis.stop(kill=True)
