"""Shared fixtures: every test talks to real servers that the tests start on free ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.cluster import LocalCluster
from tests.support.keys import TEST_BUCKET_KEY, TEST_OBJECTION_KEYS, log_signing_key_file_for_tests
from tests.support.servers import ServiceProcess, start_service

TEST_KEYS = "t1:test-secret-one-at-least-32-bytes"


# DEBAR_TEST_REDIS=cluster runs the suite's shared servers against a 3-master Redis Cluster (CI does both).
ON_CLUSTER = os.environ.get("DEBAR_TEST_REDIS") == "cluster"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis | LocalCluster]:
    server = (
        LocalCluster(tmp_path_factory.mktemp("cluster"))
        if ON_CLUSTER
        else EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_env(redis_server: EmbeddedRedis | LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return {
        "DEBAR_REDIS_CLUSTER": "true" if ON_CLUSTER else "false",
        "DEBAR_REDIS_URL": redis_server.url,
        "DEBAR_PSEUDONYM_KEYS": TEST_KEYS,
        "DEBAR_BUCKET_KEY": TEST_BUCKET_KEY,
        "DEBAR_OBJECTION_KEYS": TEST_OBJECTION_KEYS,
        "DEBAR_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "DEBAR_LOG_SIGNING_KEY": log_signing_key_file_for_tests(),
        "DEBAR_PLAINTEXT": "true",  # local mode: x-debar-caller names the caller (mTLS: integration/test_access.py)
    }


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def sanction(service_env: dict[str, str], logs_dir: Path) -> Iterator[ServiceProcess]:
    service = start_service("sanction", service_env, logs_dir)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def channel(sanction: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(sanction.address) as chan:
        yield chan


@pytest.fixture(scope="session")
def checks(channel: grpc.Channel) -> sanction_pb2_grpc.SanctionServiceStub:
    return sanction_pb2_grpc.SanctionServiceStub(channel)


@pytest.fixture(scope="session")
def registry(channel: grpc.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture(scope="session")
def decisions(channel: grpc.Channel) -> decision_pb2_grpc.DecisionServiceStub:
    return decision_pb2_grpc.DecisionServiceStub(channel)
