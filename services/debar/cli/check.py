"""`debar check`: ask a running sanction service and print the decision."""

from __future__ import annotations

import argparse
import sys

import grpc
from google.protobuf import json_format

from debar.common.identifiers import IdKind
from debar.common.settings import Settings
from debar.rpc import tls, wire
from debar.v1 import common_pb2, sanction_pb2, sanction_pb2_grpc


def check(settings: Settings, args: argparse.Namespace) -> int:
    request = sanction_pb2.CheckRequest(
        subject=common_pb2.Subject(id_type=wire.id_type(IdKind(args.id_type)), id=args.id),
        measure=args.measure,
    )
    if args.at:  # a zone-aware datetime (the parser's --at type); a check is to the second
        request.at.CopyFrom(wire.timestamp(int(args.at.timestamp())))
    address = args.address or settings.sanction_address
    with tls.channel(settings, address) as channel:
        try:
            response = sanction_pb2_grpc.SanctionServiceStub(channel).Check(
                request, timeout=settings.sanction_timeout_s
            )
        except grpc.RpcError as error:
            print(f"debar check: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(json_format.MessageToJson(response, indent=2))
    return 0 if response.outcome == common_pb2.OUTCOME_ALLOW else 3
