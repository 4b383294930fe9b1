"""The baseline: the least a gRPC server on this machine can do for the same messages. A generic handler (no
servicer class, no interceptors, no health service) per method, identity serializers, answering each prebuilt
request with prebuilt response bytes (debar's own answer to that request, captured before the run, so that the
bytes on the wire are the same). Two kinds, because either may be the faster here: grpc.aio, and the sync server
on a thread pool.

Beside them, not a baseline: the floor of a handler that waits on Redis once, as each of debar's checks does. The
same generic aio handler, on uvloop as debar's services run, that awaits one script call (EVALSHA of `return 1`) on
a lane of debar's check path (adapters/redis_client.Lanes) before it answers: what grpc.aio and the Redis client
cost a call before debar decides anything.

`python -m debar.bench.bare_server aio|sync PORT ANSWERS` (ANSWERS: a file written by `write_answers`);
`python -m debar.bench.bare_server scripted PORT ANSWERS REDIS_URL`."""

from __future__ import annotations

import asyncio
import base64
import json
import sys
from collections.abc import Callable, Mapping
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

KINDS = ("aio", "sync")
SCRIPTED = "scripted"  # the floor: aio, awaiting one script call a call
LANES = 16  # as many as the deepest load keeps in flight, as debar's check path has (lane_count of 32 connections)
SYNC_THREADS = 16  # as many as the deepest load keeps in flight

# method ("/debar.v1.SanctionService/Check") -> request bytes -> response bytes
Answers = Mapping[str, Mapping[bytes, bytes]]


def write_answers(path: Path, answers: Answers) -> Path:
    encoded = {
        method: [[base64.b64encode(request).decode(), base64.b64encode(response).decode()]
                 for request, response in table.items()]
        for method, table in answers.items()
    }  # fmt: skip
    path.write_text(json.dumps(encoded))
    return path


def read_answers(path: Path) -> dict[str, dict[bytes, bytes]]:
    encoded = json.loads(path.read_text())
    return {
        method: {base64.b64decode(request): base64.b64decode(response) for request, response in pairs}
        for method, pairs in encoded.items()
    }


def _by_service(answers: Answers) -> dict[str, dict[str, Mapping[bytes, bytes]]]:
    services: dict[str, dict[str, Mapping[bytes, bytes]]] = {}
    for method, table in answers.items():
        service, name = method.strip("/").split("/")
        services.setdefault(service, {})[name] = table
    return services


def _aio_handler(table: Mapping[bytes, bytes]) -> grpc.RpcMethodHandler:
    async def answer(request: bytes, context: Any) -> bytes:
        return table[request]

    return grpc.unary_unary_rpc_method_handler(answer)  # no (de)serializers: bytes in, bytes out


def _sync_handler(table: Mapping[bytes, bytes]) -> grpc.RpcMethodHandler:
    def answer(request: bytes, context: Any) -> bytes:
        return table[request]

    return grpc.unary_unary_rpc_method_handler(answer)


def _handlers(
    answers: Answers, make: Callable[[Mapping[bytes, bytes]], grpc.RpcMethodHandler]
) -> list[grpc.GenericRpcHandler]:
    return [
        grpc.method_handlers_generic_handler(service, {name: make(table) for name, table in methods.items()})
        for service, methods in _by_service(answers).items()
    ]


async def serve_aio(port: int, answers: Answers) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(_handlers(answers, _aio_handler))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def serve_scripted(port: int, answers: Answers, redis_url: str) -> None:
    from debar.sanction.adapters.redis_client import Lanes, make_client  # only this kind talks to Redis

    client = make_client(redis_url, cluster=False, timeout_s=10.0, connections=2 * LANES)
    lanes = Lanes(client, LANES, 10.0)
    script = await client.script_load("return 1")

    def handler(table: Mapping[bytes, bytes]) -> grpc.RpcMethodHandler:
        async def answer(request: bytes, context: Any) -> bytes:
            await lanes.execute("EVALSHA", script, 0)
            return table[request]

        return grpc.unary_unary_rpc_method_handler(answer)

    server = grpc.aio.server()
    server.add_generic_rpc_handlers(_handlers(answers, handler))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def serve_sync(port: int, answers: Answers) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=SYNC_THREADS))
    server.add_generic_rpc_handlers(_handlers(answers, _sync_handler))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def main(argv: list[str]) -> None:
    kind, port, answers = argv[0], int(argv[1]), read_answers(Path(argv[2]))
    if kind not in (*KINDS, SCRIPTED):
        raise SystemExit(f"bare_server: kind must be one of {(*KINDS, SCRIPTED)}, not {kind!r}")
    if kind == SCRIPTED:
        import uvloop

        uvloop.run(serve_scripted(port, answers, argv[3]))
    elif kind == "aio":
        asyncio.run(serve_aio(port, answers))
    else:
        serve_sync(port, answers)


if __name__ == "__main__":
    main(sys.argv[1:])
