"""What a person writes in an objection (the statement, the contact, a reconsideration's statement) is sealed at rest:
whoever reads Redis (a backup, a replica, MONITOR, an operator's redis-cli) finds none of it, in the records or in
the transition log; the sanction service opens it for those who may read objections, and a service holding the
wrong key refuses to answer rather than answer wrongly."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator

import grpc
import pytest
import redis as redis_client

from debar.sanction.adapters.keys import ObjectionKeys
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.support.keys import TEST_OBJECTION_KEYS
from tests.support.requests import check_request, impose_request
from tests.support.servers import start_service
from tests.support.subjects import new_ric

UPHELD = decision_pb2.OBJECTION_OUTCOME_UPHELD
# Its own key prefix on the session's Redis: a record sealed under a key the suite's other servers do not hold
# (the rotation below) would, rightly, make their objection listings fail closed.
PREFIX = "sealing"


@pytest.fixture(scope="module")
def sealing_env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "DEBAR_REDIS_PREFIX": PREFIX}


@pytest.fixture(scope="module")
def sealing_service(sealing_env, logs_dir):  # type: ignore[no-untyped-def]
    service = start_service("sanction", sealing_env, logs_dir)
    yield service
    service.stop()


@pytest.fixture(scope="module")
def channel(sealing_service) -> Iterator[grpc.Channel]:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(sealing_service.address) as chan:
        yield chan


def stored_values(url: str) -> Iterator[bytes]:
    """Every value of every key in Redis, read by type (DUMP may compress, and would hide a clear text)."""
    client = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(url)
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            yield key
            if kind == "string":
                yield client.get(key) or b""
            elif kind == "hash":
                for field, value in client.hgetall(key).items():
                    yield field
                    yield value
            elif kind == "list":
                yield from client.lrange(key, 0, -1)
            elif kind == "set":
                yield from client.smembers(key)
            elif kind == "zset":
                yield from client.zrange(key, 0, -1)
            elif kind == "stream":
                for _, fields in client.xrange(key):
                    for field, value in fields.items():
                        yield field
                        yield value
    finally:
        client.close()


def _objection_with_every_text(channel: grpc.Channel) -> tuple[str, dict[str, str]]:
    """An objection filed, upheld and asked to be reconsidered, with texts found nowhere else."""
    mark = secrets.token_hex(6)
    texts = {
        "statement": f"I repaid the loan on 2026-10-02, receipt {mark}-A; the court was told.",
        "contact": f"+86 139 {mark[:4]} {mark[4:8]}",
        "reconsideration": f"New evidence: the bank's letter {mark}-B.",
    }
    person = new_ric()
    registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(person))
    refusal = sanction_pb2_grpc.SanctionServiceStub(channel).Check(check_request(person, "HOTEL_STAR_RATED"))
    assert refusal.outcome == common_pb2.OUTCOME_DENY
    decisions = decision_pb2_grpc.DecisionServiceStub(channel)
    filed = decisions.FileObjection(
        decision_pb2.FileObjectionRequest(
            decision_id=refusal.decision_id, statement=texts["statement"], contact=texts["contact"]
        )
    )
    oid = filed.objection_id
    decisions.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=oid))
    decisions.ResolveObjection(decision_pb2.ResolveObjectionRequest(objection_id=oid, outcome=UPHELD, reason="no"))
    decisions.RequestReconsideration(
        decision_pb2.RequestReconsiderationRequest(objection_id=oid, statement=texts["reconsideration"])
    )
    return oid, texts


def _get(channel: grpc.Channel, oid: str) -> decision_pb2.Objection:
    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    return stub.GetObjection(decision_pb2.GetObjectionRequest(objection_id=oid), timeout=5)  # type: ignore[no-any-return]


def test_no_statement_or_contact_is_stored_in_clear(channel, redis_server, sealing_service):
    oid, texts = _objection_with_every_text(channel)
    # Those allowed to read objections read them as written.
    read = _get(channel, oid)
    assert (read.statement, read.contact) == (texts["statement"], texts["contact"])
    assert texts["reconsideration"] in [t.reason for t in read.history]
    # The attack: read Redis itself. Not a word of it, anywhere: not in the record, not in the transition log.
    everything = b"\n".join(stored_values(redis_server.url))
    for name, text in texts.items():
        for piece in (text, text[:24], text[-16:]):
            assert piece.encode() not in everything, f"the {name} is stored in clear"
    # The log proves what was asked for without saying it: the reconsideration statement's SHA-256.
    digest = hashlib.sha256(texts["reconsideration"].encode()).hexdigest()
    assert digest.encode() in everything
    # Nor in the service's own log.
    assert not [name for name, text in texts.items() if text in sealing_service.log()]


def test_the_record_is_sealed_under_the_current_key_id(channel, redis_server):
    oid, texts = _objection_with_every_text(channel)
    client = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(redis_server.url)
    try:
        raw = client.hget(ObjectionKeys(PREFIX).records(oid), oid).decode()
    finally:
        client.close()
    key_id = TEST_OBJECTION_KEYS.partition(":")[0]
    assert f'"statement":"{key_id}:' in raw and f'"contact":"{key_id}:' in raw
    assert texts["statement"] not in raw


@pytest.fixture
def another_service(sealing_env, logs_dir):  # type: ignore[no-untyped-def]
    """Starts a sanction service on the same Redis with other objection keys."""
    started = []

    def start(objection_keys: str) -> grpc.Channel:
        service = start_service("sanction", {**sealing_env, "DEBAR_OBJECTION_KEYS": objection_keys}, logs_dir)
        started.append(service)
        return grpc.insecure_channel(service.address)

    yield start
    for service in started:
        service.stop()


@pytest.mark.parametrize(
    ("ring", "message"),
    [
        # The same key id, another secret (a Secret replaced by mistake): the record does not open.
        (f"{TEST_OBJECTION_KEYS.partition(':')[0]}:another-secret-of-32-bytes-or-more", "cannot be opened"),
        # The key that sealed it left out of the ring (rotated away too early).
        ("ob9:yet-another-secret-of-32-bytes-or-more", "which DEBAR_OBJECTION_KEYS does not hold"),
    ],
)
def test_a_wrong_key_fails_closed_with_a_clear_error(channel, another_service, ring, message):
    oid, texts = _objection_with_every_text(channel)
    with another_service(ring) as other:
        with pytest.raises(grpc.RpcError) as raised:
            _get(other, oid)
        assert raised.value.code() == grpc.StatusCode.INTERNAL
        assert message in raised.value.details() and oid in raised.value.details()
        assert texts["statement"] not in raised.value.details()
        # Nothing was written in its place: the right key still reads the record as it was.
        with pytest.raises(grpc.RpcError) as review:
            decision_pb2_grpc.DecisionServiceStub(other).ResolveObjection(
                decision_pb2.ResolveObjectionRequest(objection_id=oid, outcome=UPHELD, reason="again")
            )
        assert review.value.code() == grpc.StatusCode.INTERNAL
    assert _get(channel, oid).statement == texts["statement"]


def test_a_new_key_reads_the_old_records_and_seals_what_it_writes(channel, another_service, redis_server):
    oid, texts = _objection_with_every_text(channel)
    with another_service(f"ob2:the-next-objection-key-of-32-bytes,{TEST_OBJECTION_KEYS}") as rotated:
        assert _get(rotated, oid).contact == texts["contact"]
        decision_pb2_grpc.DecisionServiceStub(rotated).ResolveObjection(
            decision_pb2.ResolveObjectionRequest(objection_id=oid, outcome=UPHELD, reason="still no")
        )
        assert _get(rotated, oid).statement == texts["statement"]
    client = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(redis_server.url)
    try:
        raw = client.hget(ObjectionKeys(PREFIX).records(oid), oid).decode()
    finally:
        client.close()
    assert '"statement":"ob2:' in raw  # written again, sealed again under the current key
