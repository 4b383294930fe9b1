"""A registry write that reached only some of a Redis Cluster's nodes, on a private cluster: the node holding the
subject's index (and its log) stops answering writes in the middle of an Impose, and its connections are lost, so
that the write's call on it never runs; the record's own node answered. The caller sees UNAVAILABLE and sends the
Impose again once the node is back: the retry must leave the subject denied. (It answered UNCHANGED, from the record
stored on the other node, and the subject's index entry was never written: checks allowed, the court order stood in
the registry and was not enforced.)"""

from __future__ import annotations

from collections.abc import Iterator
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
from debar.v1 import common_pb2, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.requests import check_request, impose_request
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

        cut.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")  # the node stops answering writes...
        try:
            with pytest.raises(grpc.RpcError) as refused:
                registry.Impose(order, timeout=10)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
            cut.execute_command("CLIENT", "KILL", "TYPE", "normal")  # ...and loses its connections, calls unrun
        finally:
            cut.execute_command("CLIENT", "UNPAUSE")

        def sent_again() -> bool:
            try:
                registry.Impose(order, timeout=10)
            except grpc.RpcError as error:  # the circuit breaker, open for a moment after the failures
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
                return False
            return True

        assert wait_for(sent_again, timeout_s=15, interval_s=0.3)
        assert checks.Check(check_request(person, "RAIL_G_TRAIN"), timeout=10).outcome == common_pb2.OUTCOME_DENY
    cut.close()
