"""A private system for the console's browser tests: its own Redis, a sanction service and the console, so that
the queue shows only what these tests put there; and two browsers, the refused person's and a reviewer's."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.console import chromium, close, start_console, write_accounts
from tests.support.servers import ServiceProcess, start_service

TEST_KEYS = "t1:test-secret-one"


@dataclass
class ConsoleSystem:
    url: str
    console: ServiceProcess
    sanction: ServiceProcess
    redis_url: str
    registry: registry_pb2_grpc.RegistryServiceStub
    checks: sanction_pb2_grpc.SanctionServiceStub
    decisions: decision_pb2_grpc.DecisionServiceStub
    env: dict[str, str]
    logs: Path


@pytest.fixture(scope="session")
def console_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleSystem]:
    root = tmp_path_factory.mktemp("console")
    redis = EmbeddedRedis(root / "redis")
    redis.start()
    env = {
        "DEBAR_REDIS_URL": redis.url,
        "DEBAR_PSEUDONYM_KEYS": TEST_KEYS,
        "DEBAR_DATA_DIR": str(root / "data"),
        "DEBAR_PLAINTEXT": "true",
    }
    logs = root / "logs"
    logs.mkdir()
    sanction = start_service("sanction", env, logs)
    console_env = {
        **env,
        "DEBAR_SANCTION_ADDRESS": sanction.address,
        "DEBAR_CONSOLE_ACCOUNTS_FILE": str(write_accounts(root / "accounts.json")),
        "DEBAR_CONSOLE_LOOKUP_RATE": "1000",
    }
    console, url = start_console(console_env, logs)
    channel = grpc.insecure_channel(sanction.address)
    try:
        yield ConsoleSystem(
            url,
            console,
            sanction,
            redis.url,
            registry_pb2_grpc.RegistryServiceStub(channel),
            sanction_pb2_grpc.SanctionServiceStub(channel),
            decision_pb2_grpc.DecisionServiceStub(channel),
            console_env,
            logs,
        )
    finally:
        channel.close()
        console.stop()
        sanction.stop()
        redis.stop()


@pytest.fixture(scope="session")
def person_browser() -> Iterator[object]:
    driver = chromium()
    yield driver
    close(driver)


@pytest.fixture(scope="session")
def reviewer_browser() -> Iterator[object]:
    driver = chromium()
    yield driver
    close(driver)


@pytest.fixture
def person(person_browser, console_system):  # type: ignore[no-untyped-def]
    """The refused person's browser, with no session left from another test."""
    person_browser.get(f"{console_system.url}/")
    person_browser.delete_all_cookies()
    return person_browser


@pytest.fixture
def reviewer(reviewer_browser, console_system):  # type: ignore[no-untyped-def]
    reviewer_browser.get(f"{console_system.url}/")
    reviewer_browser.delete_all_cookies()
    return reviewer_browser
