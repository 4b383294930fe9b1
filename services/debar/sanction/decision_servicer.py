"""gRPC servicer of the decision log (the person's right to know). Objections are not served yet: their
methods answer UNIMPLEMENTED from the generated base class."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from debar.common.grpc_errors import abort_with
from debar.sanction import convert
from debar.sanction.decision_reader import DecisionReader, LoggedDecision
from debar.sanction.domain.errors import DomainError
from debar.v1 import decision_pb2, decision_pb2_grpc


def decision_message(d: LoggedDecision) -> decision_pb2.Decision:
    message = decision_pb2.Decision(
        decision_id=d.decision_id,
        decided_at=Timestamp(seconds=d.decided_at_ms // 1000, nanos=(d.decided_at_ms % 1000) * 10**6),
        at=Timestamp(seconds=d.at),
        caller=d.caller,
        id_type=convert.id_type(d.id_kind),
        subject_pseudonym=d.subject_pseudonym,
        measure=d.measure,
        outcome=convert.outcome(d.outcome),
        grounds=[convert.ground(g, d.measure) for g in d.grounds],
        revision=d.revision,
        catalogue_version=d.catalogue_version,
        spooled=d.spooled,
    )
    if d.exemption is not None:
        message.exemption.CopyFrom(convert.exemption_applied(d.exemption))
    return message


class DecisionServicer(decision_pb2_grpc.DecisionServiceServicer):
    def __init__(self, reader: DecisionReader) -> None:
        self._reader = reader

    async def GetDecision(self, request, context):  # type: ignore[no-untyped-def]
        try:
            return decision_message(await self._reader.get(request.decision_id))
        except DomainError as error:
            await abort_with(context, error)

    async def ListDecisions(self, request, context):  # type: ignore[no-untyped-def]
        try:
            found, token = await self._reader.for_subject(
                convert.id_kind(request.subject.id_type), request.subject.id, request.page_size, request.page_token
            )
        except DomainError as error:
            await abort_with(context, error)
        return decision_pb2.ListDecisionsResponse(decisions=[decision_message(d) for d in found], next_page_token=token)
