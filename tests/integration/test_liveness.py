"""The health port serves grpc.health.v1 alone, in plaintext; `liveness` stays SERVING while a dependency is
down (readiness NOT_SERVING), so a kubelet liveness probe does not restart pods during a Redis outage, and turns
NOT_SERVING on the graceful stop."""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.rpc.server import LIVENESS_SERVICE, GrpcServer, Readiness
from debar.v1 import sanction_pb2, sanction_pb2_grpc

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


async def _status(stub: health_pb2_grpc.HealthStub, service: str) -> int:
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
    return int(answer.status)


async def test_liveness_holds_while_a_dependency_is_down_and_ends_on_stop() -> None:
    dependency_up = False

    async def redis() -> bool:
        return dependency_up

    server = GrpcServer("127.0.0.1", 0, ["debar.v1.SanctionService"], grace_s=0.5, health_port=0)
    assert server.health_port not in (0, server.port)
    running = asyncio.create_task(server.run(Readiness({"redis": redis}, interval_s=0.1)))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.health_port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            await asyncio.sleep(0.3)
            assert await _status(health, LIVENESS_SERVICE) == SERVING
            assert await _status(health, "") == NOT_SERVING
            assert await _status(health, "debar.v1.SanctionService") == NOT_SERVING

            dependency_up = True
            for _ in range(50):
                if await _status(health, "") == SERVING:
                    break
                await asyncio.sleep(0.05)
            assert await _status(health, "debar.v1.SanctionService") == SERVING

            dependency_up = False  # an outage: out of the Service, but alive
            await asyncio.sleep(0.4)
            assert await _status(health, "") == NOT_SERVING
            assert await _status(health, LIVENESS_SERVICE) == SERVING

            try:  # the health port serves nothing but health
                await sanction_pb2_grpc.SanctionServiceStub(channel).ListMeasures(
                    sanction_pb2.ListMeasuresRequest(), timeout=2
                )
                raise AssertionError("the health port answered a non-health method")
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNIMPLEMENTED

            watch = health.Watch(health_pb2.HealthCheckRequest(service=LIVENESS_SERVICE))
            assert (await watch.read()).status == SERVING
            server.request_stop()
            assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
            watch.cancel()
    finally:
        server.request_stop()
        await asyncio.wait_for(running, 10)


async def test_without_a_health_port_only_the_serving_port_listens() -> None:
    server = GrpcServer("127.0.0.1", 0, [], grace_s=0.1)
    assert server.health_server is None and server.health_port == 0
