"""Two registry writes to one record at once, on a private Redis that holds every write until both have read the
record: each was made of the record as read, and the second to be stored overwrote the first (a confirmed lift
undone by an Impose restating the record, or the restatement lost to the lift), though both were answered OK. A
write is now stored only over the record it was made of (lua/write.lua compares), and one that another write beat
is made again of the record as that one left it (app/registry.py: _unraced)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis as redis_client

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import common_pb2, registry_pb2, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.requests import LIFT_DOCUMENT, SECOND_REGISTRY, check_request, impose_request
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:x-test-secret-of-at-least-32-bytes"
TIMEOUT = 30


@pytest.fixture
def held(tmp_path: Path, logs_dir: Path) -> Iterator[tuple[grpc.Channel, redis_client.Redis]]:
    """A service whose Redis calls wait for a Redis that holds writes (no integrator: its writes would be held
    too), and an admin connection to that Redis."""
    redis = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true", "DEBAR_LOG_INTEGRATOR": "off", "DEBAR_REDIS_TIMEOUT_S": str(TIMEOUT),
           "DEBAR_REDIS_COMMAND_TIMEOUT_S": str(TIMEOUT)}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    admin = redis_client.Redis.from_url(redis.url)
    try:
        with grpc.insecure_channel(service.address) as channel:
            yield channel, admin
    finally:
        admin.execute_command("CLIENT", "UNPAUSE")
        service.stop()
        redis.stop(kill=True)


def _both_read_first(admin: redis_client.Redis, *calls) -> list[Any]:  # type: ignore[no-untyped-def]
    """Starts each call while Redis holds writes, the next once the one before waits for its write (it has read the
    record), then lets the writes go: every call has read the record as it was before any of them wrote."""
    admin.execute_command("CLIENT", "PAUSE", TIMEOUT * 1000, "WRITE")
    futures: list[Future] = []  # type: ignore[type-arg]
    for call in calls:
        before = admin.info("clients")["blocked_clients"]
        futures.append(call())
        assert wait_for(lambda seen=before: admin.info("clients")["blocked_clients"] > seen), "the call never wrote"
        time.sleep(0.2)
    admin.execute_command("CLIENT", "UNPAUSE")
    return [f.result(timeout=TIMEOUT) for f in futures]


@pytest.mark.parametrize("confirm_first", [True, False], ids=["lift-then-restate", "restate-then-lift"])
def test_a_lift_confirmed_while_the_record_is_restated_keeps_both(held, confirm_first):
    channel, admin = held
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    checks = sanction_pb2_grpc.SanctionServiceStub(channel)
    person = new_ric()
    imposed = registry.Impose(impose_request(person, measures=["RAIL_G_TRAIN"]), timeout=TIMEOUT).restriction
    lift = registry_pb2.LiftRequest(restriction_id=imposed.id, reason="debt paid", document_number=LIFT_DOCUMENT)
    assert registry.Lift(lift, timeout=TIMEOUT).restriction.HasField("pending_lift")  # a court list: two identities
    restated = impose_request(person, measures=["RAIL_G_TRAIN", "AIR_TRAVEL"])
    restated.source_id, restated.case_number = imposed.source_id, imposed.case_number  # the same record, restated

    def confirm() -> Future:  # type: ignore[type-arg]
        request = registry_pb2.ConfirmLiftRequest(restriction_id=imposed.id, document_number=LIFT_DOCUMENT)
        return registry.ConfirmLift.future(request, metadata=SECOND_REGISTRY, timeout=TIMEOUT)  # type: ignore[no-any-return]

    def restate() -> Future:  # type: ignore[type-arg]
        return registry.Impose.future(restated, timeout=TIMEOUT)  # type: ignore[no-any-return]

    answers = _both_read_first(admin, *((confirm, restate) if confirm_first else (restate, confirm)))
    confirmed, imposed_again = answers if confirm_first else answers[::-1]
    assert confirmed.restriction.status == registry_pb2.RESTRICTION_STATUS_LIFTED  # both answered OK
    assert imposed_again.effect == registry_pb2.WRITE_EFFECT_UPDATED
    assert imposed_again.restriction.id == imposed.id

    stored = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=imposed.id), timeout=TIMEOUT)
    assert stored.status == registry_pb2.RESTRICTION_STATUS_LIFTED, "the confirmed lift was lost"
    assert stored.lift_confirmed_by == "clerk:zhao"
    assert list(stored.measures) == ["RAIL_G_TRAIN", "AIR_TRAVEL"], "the restatement was lost"
    for measure in ("RAIL_G_TRAIN", "AIR_TRAVEL"):  # the index says what the record says: lifted, for both
        answer = checks.Check(check_request(person, measure), timeout=TIMEOUT)
        assert answer.outcome == common_pb2.OUTCOME_ALLOW, measure
