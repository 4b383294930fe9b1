"""A registry write that reached only some of a Redis Cluster's nodes, on a private cluster: the node holding the
subject's index (and its log) stops answering writes in the middle of an Impose, and its connections are lost, so
that the write's call on it never runs; the record's own node answered. The caller sees UNAVAILABLE and sends the
Impose again once the node is back: the retry must leave the subject denied. (It answered UNCHANGED, from the record
stored on the other node, and the subject's index entry was never written: checks allowed, the court order stood in
the registry and was not enforced.) A write spanning nodes stores its record last (adapters/redis_store.py,
_write_ops), so a stored record always has its index entries: a Lift cut off on the record's node has ended the
index entry (the lift, asked with the court's document, is in force for checks) and not yet the record, and a Lift
sent again completes it (a Lift of a record already lifted changes nothing, so the record must be what is missing)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import redis
from redis.cluster import RedisCluster

from debar.common.identifiers import IdKind, Placement, validate_identifier
from debar.common.settings import DEV_BUCKET_KEY
from debar.local.local_cluster import LocalCluster
from debar.sanction.adapters.keys import Keys
from debar.sanction.domain.model import restriction_id
from debar.v1 import common_pb2, registry_pb2, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.requests import LIFT_DOCUMENT, check_request, impose_request
from tests.support.servers import ServiceProcess, start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:test-secret-one-at-least-32-bytes"
SOURCE = "court_consumption_order"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster") as started:
        yield started


@pytest.fixture
def sanction(cluster: LocalCluster, tmp_path: Path, logs_dir: Path) -> Iterator[ServiceProcess]:
    env = {"DEBAR_REDIS_URL": cluster.url, "DEBAR_REDIS_CLUSTER": "true", "DEBAR_PSEUDONYM_KEYS": KEYS,
           "DEBAR_DATA_DIR": str(tmp_path / "data"), "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    yield service
    service.stop()


def _port_of(client: RedisCluster, key: str) -> int:
    return int(client.get_node_from_key(key).port)


def _subject_port(client: RedisCluster, number: str) -> int:
    bucket = Placement(DEV_BUCKET_KEY.encode()).bucket(validate_identifier(IdKind.RIC, number))  # as the server does
    return _port_of(client, Keys().log(bucket))  # the subject's index and log share its bucket's slot


def _cut_off(node: redis.Redis, write: Callable[[], object]) -> None:
    """`write` while `node` stops answering writes and then loses its connections: its calls there never run."""
    node.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
    try:
        with pytest.raises(grpc.RpcError) as refused:
            write()
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        node.execute_command("CLIENT", "KILL", "TYPE", "normal")
    finally:
        node.execute_command("CLIENT", "UNPAUSE")


def _sent_again(write: Callable[[], object]) -> bool:
    """`write` answered within a few seconds, each refusal before it UNAVAILABLE (the circuit breaker, open for a
    moment after the failures)."""

    def answered() -> bool:
        try:
            write()
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
            return False
        return True

    return wait_for(answered, timeout_s=15, interval_s=0.3)


def test_an_impose_cut_off_on_the_subjects_node_denies_once_sent_again(cluster, sanction):
    keys = Keys()
    with RedisCluster.from_url(cluster.url) as mapped:
        texts_port = _port_of(mapped, keys.texts)
        person = next(p for p in (new_ric() for _ in range(200)) if _subject_port(mapped, p) != texts_port)
        index_port = _subject_port(mapped, person)
        source_id = next(
            s for s in (f"HW-{i}" for i in range(200))
            if _port_of(mapped, keys.restrictions(restriction_id(SOURCE, s))) != index_port
        )  # fmt: skip
    cut = redis.Redis(port=index_port)
    with grpc.insecure_channel(sanction.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        order = impose_request(person, source_id=source_id)
        registry.Impose(impose_request(new_ric()), timeout=10)  # the texts are stored and known: no call for them
        assert checks.Check(check_request(person, "RAIL_G_TRAIN"), timeout=10).outcome == common_pb2.OUTCOME_ALLOW

        _cut_off(cut, lambda: registry.Impose(order, timeout=10))
        assert _sent_again(lambda: registry.Impose(order, timeout=10))
        assert checks.Check(check_request(person, "RAIL_G_TRAIN"), timeout=10).outcome == common_pb2.OUTCOME_DENY
    cut.close()


def test_a_lift_cut_off_on_the_records_node_is_completed_when_sent_again(cluster, sanction):
    keys = Keys()
    source = "railway_passenger_credit"  # lifted by one identity
    with RedisCluster.from_url(cluster.url) as mapped:
        texts_port = _port_of(mapped, keys.texts)
        person = new_ric()
        index_port = _subject_port(mapped, person)
        source_id = next(
            s for s in (f"HW-{i}" for i in range(200))
            if _port_of(mapped, keys.restrictions(restriction_id(source, s))) not in (index_port, texts_port)
        )  # fmt: skip
        cut = redis.Redis(port=_port_of(mapped, keys.restrictions(restriction_id(source, source_id))))
    with grpc.insecure_channel(sanction.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)

        def outcome() -> int:
            return int(checks.Check(check_request(person, "RAIL_TICKET_BAN"), timeout=10).outcome)

        rid = registry.Impose(impose_request(person, source=source, source_id=source_id), timeout=10).restriction.id
        lift = registry_pb2.LiftRequest(restriction_id=rid, reason="paid", document_number=LIFT_DOCUMENT)
        registry.Lift(registry_pb2.LiftRequest(
            restriction_id=registry.Impose(impose_request(new_ric(), source=source), timeout=10).restriction.id,
            reason="paid", document_number=LIFT_DOCUMENT,
        ), timeout=10)  # fmt: skip  # the lift's texts are stored and known: no call for them
        assert outcome() == common_pb2.OUTCOME_DENY

        _cut_off(cut, lambda: registry.Lift(lift, timeout=10))
        stored = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid), timeout=10)
        assert stored.status == registry_pb2.RESTRICTION_STATUS_ACTIVE  # the record not yet...
        assert _sent_again(lambda: registry.Lift(lift, timeout=10))
        stored = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid), timeout=10)
        assert stored.status == registry_pb2.RESTRICTION_STATUS_LIFTED  # ...completed by the retry
        assert stored.lift_document_number == LIFT_DOCUMENT
        assert outcome() == common_pb2.OUTCOME_ALLOW
    cut.close()
