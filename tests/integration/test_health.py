"""Health follows its dependencies: NOT_SERVING until Redis answers, while it is down, and on SIGTERM, after
which calls in flight finish and new ones are refused."""

from __future__ import annotations

import signal
import time
from concurrent.futures import Future, ThreadPoolExecutor

import grpc
import pytest
import redis as redis_client
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import common_pb2, sanction_pb2, sanction_pb2_grpc
from tests.support.requests import check_request
from tests.support.servers import health_status, start_service, wait_for
from tests.support.subjects import new_ric

KEYS = "t1:x-test-secret-of-at-least-32-bytes"


def test_health_tracks_redis(tmp_path, logs_dir):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    restarted = EmbeddedRedis(redis.data_dir, redis.port)
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
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
            with pytest.raises(grpc.RpcError) as raised:
                stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=10)
            # A dead Redis costs a failure (UNAVAILABLE), not a hang until the caller's deadline (10 s: 20 times the
            # Redis timeout).
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE

            restarted.start()
            assert wait_for(lambda: health_status(service.address) == "SERVING", timeout_s=10)
            assert stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=2).decision_id

    finally:
        service.stop(signal.SIGKILL)
        restarted.stop()
        redis.stop(kill=True)


def test_sigterm_reports_not_serving_lets_calls_in_flight_finish_and_refuses_new_ones(tmp_path, logs_dir):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    admin = redis_client.Redis.from_url(redis.url)
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true",
           "DEBAR_REDIS_TIMEOUT_S": "30",  # a held call waits for Redis instead of failing
           "DEBAR_GRACE_S": "20"}  # fmt: skip  # the calls in flight outlive the checks below, however slow the machine
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = sanction_pb2_grpc.SanctionServiceStub(channel)
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

            # Redis holds every write until released (reads, e.g. the readiness check, still go through); each check
            # writes its decision to the log, so these calls stay in flight inside the service until then.
            admin.execute_command("CLIENT", "PAUSE", 60_000, "WRITE")
            batches = [stub.BatchCheck.future(_batch(1000), timeout=60) for _ in range(3)]
            singles = [stub.Check.future(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=60) for _ in range(3)]
            in_flight: list[Future] = [*batches, *singles]  # type: ignore[type-arg]
            # Each batch holds a connection of its own; the singles share the check path's one store call at a time
            # (the coalescer): one is held in Redis, the others wait behind it in the service. (The log integrator's
            # next write, its lease or a commit, may be held too: one more blocked client.)
            held = len(batches) + 1
            assert wait_for(lambda: admin.info("clients")["blocked_clients"] >= held), admin.info("clients")
            assert health_status(service.address) == "SERVING"

            service.process.send_signal(signal.SIGTERM)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            watch.cancel()  # (an open Watch is a call in flight too)
            # Draining: a new call is refused while the ones in flight are still waiting for Redis.
            assert wait_for(lambda: _refused(lambda: stub.ListMeasures(sanction_pb2.ListMeasuresRequest(), timeout=5)))
            assert _refused(lambda: stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=5))
            assert not [call for call in in_flight if call.done()]
            assert service.process.poll() is None

            admin.execute_command("CLIENT", "UNPAUSE")
            for batch in batches:
                results = batch.result().results
                assert len(results) == 1000
                assert all(r.WhichOneof("result") == "response" and r.response.decision_id for r in results)
            for single in singles:
                assert single.result().outcome == common_pb2.OUTCOME_ALLOW
                assert single.result().decision_id
        assert service.process.wait(timeout=30) == 0, service.log()
    finally:
        service.stop(signal.SIGKILL)
        admin.close()
        redis.stop(kill=True)


def _batch(size: int) -> sanction_pb2.BatchCheckRequest:
    return sanction_pb2.BatchCheckRequest(items=[check_request(new_ric(), "RAIL_G_TRAIN") for _ in range(size)])


def _refused(call) -> bool:  # type: ignore[no-untyped-def]
    try:
        call()
    except grpc.RpcError as error:
        return error.code() == grpc.StatusCode.UNAVAILABLE
    return False


def test_not_serving_until_redis_answers(tmp_path, logs_dir):
    from debar.local.embedded_redis import free_port

    port = free_port()
    env = {
        "DEBAR_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "DEBAR_PSEUDONYM_KEYS": KEYS,
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

    redis = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    assert redis.process is not None
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = sanction_pb2_grpc.SanctionServiceStub(channel)
            os.kill(redis.process.pid, signal.SIGSTOP)  # hung, not dead: connections stay open, nothing answers

            def code_of_check(timeout_s: float) -> grpc.StatusCode:
                try:
                    stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=timeout_s)
                except grpc.RpcError as error:
                    return error.code()
                return grpc.StatusCode.OK

            # Concurrent calls each get UNAVAILABLE, none waits in a queue until its deadline (10 s: 20 times the
            # Redis timeout).
            with ThreadPoolExecutor(8) as pool:
                first = list(pool.map(lambda _: code_of_check(10), range(8)))
            assert set(first) == {grpc.StatusCode.UNAVAILABLE}
            # Then the breaker is open: 40 calls one after the other fit in 10 s together, which costs ~nothing
            # each; asking the hung Redis every time would cost 40 Redis timeouts (20 s) and run out of time.
            deadline = time.monotonic() + 10
            later = [code_of_check(max(deadline - time.monotonic(), 0.001)) for _ in range(40)]
            assert set(later) == {grpc.StatusCode.UNAVAILABLE}
            assert wait_for(lambda: health_status(service.address) == "NOT_SERVING", timeout_s=10)

            os.kill(redis.process.pid, signal.SIGCONT)
            assert wait_for(lambda: health_status(service.address) == "SERVING", timeout_s=15)
            assert stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=2).decision_id
    finally:
        if redis.process is not None and redis.process.poll() is None:
            os.kill(redis.process.pid, signal.SIGCONT)
        service.stop(signal.SIGKILL)
        redis.stop(kill=True)


_HELD_EXIT = """
import asyncio, contextlib
from debar.rpc.server import GrpcServer, Readiness, exit_deadline

exit_deadline(1.0)


async def ready() -> bool:
    return True


async def main() -> None:
    server = GrpcServer("127.0.0.1", 0, [], grace_s=0.5)
    try:
        await server.run(Readiness({"ready": ready}), on_ready=lambda port: print("ready", flush=True))
    finally:
        while True:  # shutdown work that never ends and swallows every cancellation
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(10)


asyncio.run(main())
"""


def test_a_stop_ends_the_process_within_the_grace_plus_the_margin_whatever_holds_it(tmp_path):
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-c", _HELD_EXIT], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 1
        # grace 0.5 s + margin 1 s, and a little for a busy machine
        assert time.monotonic() - started < 6
        assert "did not stop within 1.5s" in process.stderr.read()
    finally:
        process.kill()
        process.wait()
