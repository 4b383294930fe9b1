"""Health follows its dependencies: NOT_SERVING until Redis answers, while it is down, and on SIGTERM."""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from debar.common.embedded_redis import EmbeddedRedis
from debar.v1 import sanction_pb2_grpc
from tests.support.requests import check_request
from tests.support.servers import health_status, start_service, wait_for
from tests.support.subjects import new_ric


def test_health_tracks_redis_and_sigterm_drains(tmp_path, logs_dir):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    restarted = EmbeddedRedis(redis.data_dir, redis.port)
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": "t1:x", "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    try:
        assert health_status(service.address) == "SERVING"
        assert health_status(service.address, "debar.v1.SanctionService") == "SERVING"
        with grpc.insecure_channel(service.address) as channel:
            stub = sanction_pb2_grpc.SanctionServiceStub(channel)
            assert stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=2).decision_id

            redis.stop(kill=True)
            assert wait_for(lambda: health_status(service.address) == "NOT_SERVING", timeout_s=10)
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as raised:
                stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=5)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert time.monotonic() - started < 2  # a dead Redis costs a fast failure, not a hang

            restarted.start()
            assert wait_for(lambda: health_status(service.address) == "SERVING", timeout_s=10)
            assert stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=2).decision_id

        assert service.stop(signal.SIGTERM) == 0
        assert "NOT_SERVING" in service.log() or "stopping" in service.log()
    finally:
        service.stop(signal.SIGKILL)
        restarted.stop()
        redis.stop(kill=True)


def test_not_serving_until_redis_answers(tmp_path, logs_dir):
    from debar.common.embedded_redis import free_port

    port = free_port()
    env = {
        "DEBAR_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "DEBAR_PSEUDONYM_KEYS": "t1:x",
        "DEBAR_DATA_DIR": str(tmp_path),
        "DEBAR_PLAINTEXT": "true",
    }
    service = start_service("sanction", env, logs_dir, wait_serving=False)
    redis = EmbeddedRedis(tmp_path / "redis", port)
    try:
        assert wait_for(lambda: health_status(service.address) == "NOT_SERVING", timeout_s=15)
        time.sleep(1.5)
        assert health_status(service.address) == "NOT_SERVING"
        redis.start()
        assert wait_for(lambda: health_status(service.address) == "SERVING", timeout_s=10)
    finally:
        service.stop(signal.SIGKILL)
        redis.stop()


def test_a_hung_redis_costs_fast_failures_not_a_queue_and_recovery_is_automatic(tmp_path, logs_dir):
    import os
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    redis = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": "t1:x", "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    assert redis.process is not None
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = sanction_pb2_grpc.SanctionServiceStub(channel)
            os.kill(redis.process.pid, signal.SIGSTOP)  # hung, not dead: connections stay open, nothing answers

            def timed_check(_: int) -> tuple[float, grpc.StatusCode]:
                started = time.monotonic()
                try:
                    stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=5)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
                return time.monotonic() - started, code

            with ThreadPoolExecutor(8) as pool:
                first = list(pool.map(timed_check, range(8)))
                later = list(pool.map(timed_check, range(40)))
            assert {code for _, code in first + later} == {grpc.StatusCode.UNAVAILABLE}
            # Nobody waits much past the Redis timeout (0.5 s), plus one queued call ahead of it.
            assert max(t for t, _ in first + later) < 1.5
            assert statistics.median(t for t, _ in later) < 0.1  # the breaker is open: failing costs ~nothing
            assert wait_for(lambda: health_status(service.address) == "NOT_SERVING", timeout_s=10)

            os.kill(redis.process.pid, signal.SIGCONT)
            assert wait_for(lambda: health_status(service.address) == "SERVING", timeout_s=15)
            assert stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=2).decision_id
    finally:
        if redis.process is not None and redis.process.poll() is None:
            os.kill(redis.process.pid, signal.SIGCONT)
        service.stop(signal.SIGKILL)
        redis.stop(kill=True)
