"""The baseline: a grpc.aio SanctionService whose handlers do no work. `python -m debar.bench.empty_server PORT`."""

from __future__ import annotations

import asyncio
import sys

import grpc

from debar.v1 import common_pb2, sanction_pb2, sanction_pb2_grpc


class EmptySanction(sanction_pb2_grpc.SanctionServiceServicer):
    async def Check(self, request, context):  # type: ignore[no-untyped-def]
        return sanction_pb2.CheckResponse(decision_id="0-0-000", outcome=common_pb2.OUTCOME_ALLOW)

    async def BatchCheck(self, request, context):  # type: ignore[no-untyped-def]
        response = sanction_pb2.BatchCheckResponse()
        for _ in request.items:
            response.results.add(response=sanction_pb2.CheckResponse(decision_id="0-0-000"))
        return response


async def main(port: int) -> None:
    server = grpc.aio.server()
    sanction_pb2_grpc.add_SanctionServiceServicer_to_server(EmptySanction(), server)  # type: ignore[abstract]
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
