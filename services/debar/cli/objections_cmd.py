"""`debar objections ...`: reviewers list, show, take under review, resolve and confirm objections on a running
sanction service. gRPC is imported when a command runs, so that building the parser stays cheap."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from debar.common.settings import Settings

if TYPE_CHECKING:
    from debar.v1 import decision_pb2, decision_pb2_grpc

STATES = ["filed", "under_review", "awaiting_confirmation", "upheld", "overturned", "reconsideration"]
OUTCOMES = ["upheld", "overturned"]
Handler = Callable[[argparse.Namespace, Settings], int]
Ask = Callable[["decision_pb2_grpc.DecisionServiceStub"], Any]


def _when(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M") if seconds else "-"


def _call(settings: Settings, args: argparse.Namespace, ask: Ask) -> Any:
    import grpc

    from debar.rpc import tls
    from debar.v1 import decision_pb2_grpc

    with tls.channel(settings, args.address or settings.sanction_address) as channel:
        stub: Any = decision_pb2_grpc.DecisionServiceStub(channel)
        reviewer = getattr(args, "reviewer", None)
        if reviewer and not settings.tls:  # local mode: the caller names itself (an mTLS server reads the certificate)
            from debar.rpc.callers import CALLER_HEADER

            stub = _Named(stub, ((CALLER_HEADER, reviewer),))
        try:
            return ask(stub)
        except grpc.RpcError as error:
            print(f"debar objections: {error.code().name}: {error.details()}", file=sys.stderr)
            return None


class _Named:
    """A stub whose every call carries the given metadata."""

    def __init__(self, stub: Any, metadata: tuple[tuple[str, str], ...]) -> None:
        self._stub, self._metadata = stub, metadata

    def __getattr__(self, method: str) -> Callable[..., Any]:
        call = getattr(self._stub, method)
        return lambda request, **kwargs: call(request, metadata=self._metadata, **kwargs)


def _print(objection: decision_pb2.Objection | None) -> int:
    from google.protobuf import json_format

    if objection is None:
        return 1
    print(json_format.MessageToJson(objection, indent=2))
    return 0


def _list_page(
    request: decision_pb2.ListObjectionsRequest, timeout_s: float, stub: decision_pb2_grpc.DecisionServiceStub
) -> Any:
    return stub.ListObjections(request, timeout=timeout_s)


def list_objections(args: argparse.Namespace, settings: Settings) -> int:
    from debar.v1 import decision_pb2

    state = decision_pb2.ObjectionState.Value(f"OBJECTION_STATE_{args.state.upper()}") if args.state else 0
    listed: list[decision_pb2.Objection] = []
    token = ""
    while True:  # every page
        request = decision_pb2.ListObjectionsRequest(
            state=state,  # type: ignore[arg-type]
            overdue_only=args.overdue,
            page_size=500,
            page_token=token,
        )
        response = _call(settings, args, functools.partial(_list_page, request, settings.sanction_timeout_s))
        if response is None:
            return 1
        listed += response.objections
        token = response.next_page_token
        if not token:
            break
    print(f"{'OBJECTION':<18} {'STATE':<22} {'DUE (UTC)':<17} {'OVERDUE':<8} {'RESOLVED BY':<20} DECISION")
    for o in listed:
        state_name = decision_pb2.ObjectionState.Name(o.state).removeprefix("OBJECTION_STATE_").lower()
        due = {
            decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION: o.correction_due,
            decision_pb2.OBJECTION_STATE_OVERTURNED: o.correction_due,
            decision_pb2.OBJECTION_STATE_UPHELD: o.reconsideration_request_due,
        }.get(o.state, o.review_due)
        overdue = "yes" if o.overdue else ""
        by = o.resolved_by or "-"
        print(f"{o.objection_id:<18} {state_name:<22} {_when(due.seconds):<17} {overdue:<8} {by:<20} {o.decision_id}")
    print(f"{len(listed)} objections")
    return 0


def show(args: argparse.Namespace, settings: Settings) -> int:
    from debar.v1 import decision_pb2

    request = decision_pb2.GetObjectionRequest(objection_id=args.id)
    return _print(_call(settings, args, lambda stub: stub.GetObjection(request, timeout=settings.sanction_timeout_s)))


def review(args: argparse.Namespace, settings: Settings) -> int:
    from debar.v1 import decision_pb2

    request = decision_pb2.ReviewObjectionRequest(objection_id=args.id, reviewer=args.reviewer or "")
    return _print(
        _call(settings, args, lambda stub: stub.ReviewObjection(request, timeout=settings.sanction_timeout_s))
    )


def resolve(args: argparse.Namespace, settings: Settings) -> int:
    from debar.v1 import decision_pb2

    request = decision_pb2.ResolveObjectionRequest(
        objection_id=args.id,
        outcome=decision_pb2.ObjectionOutcome.Value(f"OBJECTION_OUTCOME_{args.outcome.upper()}"),
        reviewer=args.reviewer or "",
        reason=args.reason,
    )
    return _print(
        _call(settings, args, lambda stub: stub.ResolveObjection(request, timeout=settings.sanction_timeout_s))
    )


def confirm(args: argparse.Namespace, settings: Settings) -> int:
    from debar.v1 import decision_pb2

    request = decision_pb2.ConfirmResolutionRequest(objection_id=args.id, reviewer=args.reviewer or "")
    return _print(
        _call(settings, args, lambda stub: stub.ConfirmResolution(request, timeout=settings.sanction_timeout_s))
    )


def add_parser(commands: Any) -> None:
    """Adds `objections` and its subcommands to the `debar` command's subparsers."""
    objections = commands.add_parser("objections", help="objections to refusals (for reviewers)")
    sub = objections.add_subparsers(dest="objections_command", required=True)

    def command(name: str, help: str, handler: Handler) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
        parser.add_argument("--address", help="sanction service address (default: $DEBAR_SANCTION_ADDRESS)")
        parser.set_defaults(run=handler)
        return parser

    listing = command("list", "objections, soonest deadline first", list_objections)
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--overdue", action="store_true", help="only those past their deadline")
    command("show", "one objection with its history", show).add_argument("id")
    # The reviewer is whoever calls: the certificate's identity (a different --reviewer is refused), or in local
    # mode the identity --reviewer names (default: DEBAR_CALLER's). Never a free-typed name.
    who = "your identity, e.g. reviewer:li (default: your certificate's; in local mode, local)"
    taking = command("review", "take a filed objection under review", review)
    taking.add_argument("id")
    taking.add_argument("--reviewer", help=who)
    resolving = command("resolve", "decide an objection under review or reconsideration", resolve)
    resolving.add_argument("id")
    resolving.add_argument("--outcome", choices=OUTCOMES, required=True)
    resolving.add_argument("--reviewer", help=who)
    resolving.add_argument("--reason", required=True)
    confirming = command(
        "confirm", "confirm an overturn another reviewer resolved (the record is then corrected)", confirm
    )
    confirming.add_argument("id")
    confirming.add_argument("--reviewer", help=who)
