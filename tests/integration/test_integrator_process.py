"""The log integrator in a child process of the sanction server (DEBAR_LOG_INTEGRATOR=on): killed, it is started
again and integrates on, health saying `unavailable` meanwhile; the server stopping stops it."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis as redis_client

from debar.local.embedded_redis import free_port
from debar.sanction.adapters.keys import TreeKeys
from tests.conftest import ON_CLUSTER
from tests.integration.test_tlog import fetch_receipt, private_env, refuse
from tests.support.metrics import scrape, total
from tests.support.servers import start_service, wait_for


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def integrator_child(pid: int) -> int | None:
    for child in children(pid):
        if "debar.sanction.integrator_process" in Path(f"/proc/{child}/cmdline").read_text():
            return child
    return None


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_integrator_process_is_started_again_and_goes_on_and_stops_with_the_server(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path
):
    metrics = free_port()
    env = private_env(service_env, tmp_path, DEBAR_METRICS_PORT=str(metrics))
    keys = TreeKeys(env["DEBAR_REDIS_PREFIX"])
    redis = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(env["DEBAR_REDIS_URL"])
    service = start_service("sanction", env, logs_dir)
    try:
        fetch_receipt(env, service, refuse(service))
        # The child reports its figures to the server every half second: what it counted before its last report is
        # what survives its SIGKILL, so it is killed once the server has its first leaf.
        leaves = "debar_log_integrated_leaves_total"
        assert wait_for(lambda: total(scrape(metrics), leaves) >= 1)
        first = integrator_child(service.process.pid)
        assert first is not None, "the integrator runs in a child process of the server"
        owner = redis.get(keys.lease)
        assert owner is not None and owner.decode().split("/")[1] == str(service.process.pid)  # named after it
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: "the integrator process exited (code -9)" in service.log(), timeout_s=10)
        assert wait_for(lambda: (c := integrator_child(service.process.pid)) is not None and c != first, timeout_s=20)
        fetch_receipt(env, service, refuse(service))  # integrated by the new one (it takes the lease over)
        assert wait_for(lambda: total(scrape(metrics), leaves) >= 2)  # counted across the restart
        second = integrator_child(service.process.pid)
        assert second is not None
    finally:
        service.stop()
    deadline = time.monotonic() + 10
    while alive(second) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(second), "the integrator process stops with the server"


def test_the_integrator_process_does_not_outlive_a_server_killed_with_sigkill(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path
):
    """No server, no integrator: an orphan would go on signing checkpoints nobody's health reports (CI once left
    one running for minutes after its server and its Redis were gone, busy at a tenth of a core)."""
    env = private_env(service_env, tmp_path)
    service = start_service("sanction", env, logs_dir)
    try:
        for _ in range(3):  # a few steps in, witness and all
            fetch_receipt(env, service, refuse(service))
        child = integrator_child(service.process.pid)
        assert child is not None
        os.kill(service.process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # its grace to release the lease, and then some
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child), "the integrator process outlived its server"
    finally:
        service.stop()
