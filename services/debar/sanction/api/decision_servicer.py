"""gRPC servicer of the decision log (the person's right to know) and of the objections that can correct the
record. Proto in, domain call, proto out."""

from __future__ import annotations

from typing import Any

import grpc

from debar.common.errors import DomainError, InvalidField, NotFound
from debar.common.identifiers import SubjectId
from debar.rpc import wire
from debar.rpc.status import abort_with
from debar.sanction.api import convert
from debar.sanction.api.access import ReadGate
from debar.sanction.api.actors import actor_of
from debar.sanction.app.decision_reader import DecisionReader, LoggedDecision
from debar.sanction.app.log_proofs import LogProofs, NotYetIntegrated, SignedTreeHead
from debar.sanction.app.objections import Objections
from debar.sanction.domain.access import Grant
from debar.sanction.domain.objections import Objection, ObjectionOutcome, ObjectionState
from debar.v1 import decision_pb2, decision_pb2_grpc


def decision_message(d: LoggedDecision) -> decision_pb2.Decision:
    message = decision_pb2.Decision(
        decision_id=d.decision_id,
        decided_at=wire.timestamp_of_ms(d.decided_at_ms),
        at=wire.timestamp(d.at),
        caller=d.caller,
        on_behalf_of=d.on_behalf_of,
        id_type=wire.id_type(d.id_kind),
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


_STATES = {
    ObjectionState.FILED: decision_pb2.OBJECTION_STATE_FILED,
    ObjectionState.UNDER_REVIEW: decision_pb2.OBJECTION_STATE_UNDER_REVIEW,
    ObjectionState.UPHELD: decision_pb2.OBJECTION_STATE_UPHELD,
    ObjectionState.OVERTURNED: decision_pb2.OBJECTION_STATE_OVERTURNED,
    ObjectionState.RECONSIDERATION: decision_pb2.OBJECTION_STATE_RECONSIDERATION,
    ObjectionState.AWAITING_CONFIRMATION: decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION,
}
_STATES_BACK = {v: k for k, v in _STATES.items()}
_OUTCOMES = {
    decision_pb2.OBJECTION_OUTCOME_UPHELD: ObjectionOutcome.UPHELD,
    decision_pb2.OBJECTION_OUTCOME_OVERTURNED: ObjectionOutcome.OVERTURNED,
}


def objection_message(o: Objection, now: int) -> decision_pb2.Objection:
    return decision_pb2.Objection(
        objection_id=o.id,
        decision_id=o.decision_id,
        state=_STATES[o.state],
        statement=o.statement,
        contact=o.contact,
        restriction_ids=list(o.restriction_ids),
        filed_at=wire.timestamp(o.filed_at),
        review_due=wire.timestamp(o.review_due),
        correction_due=wire.timestamp(o.correction_due),
        reconsideration_request_due=wire.timestamp(o.reconsideration_request_due),
        overdue=o.overdue(now),
        history=[
            decision_pb2.ObjectionTransition(
                from_state=_STATES[t.from_state] if t.from_state else decision_pb2.OBJECTION_STATE_UNSPECIFIED,
                to_state=_STATES[t.to_state],
                actor=t.actor,
                reason=t.reason,
                at=wire.timestamp(t.at),
            )
            for t in o.history
        ],
        resolved_by=o.resolved_by,
        confirmation_awaited=o.state is ObjectionState.AWAITING_CONFIRMATION,
        confirmed_by=o.confirmed_by,
    )


def _state_filter(value: int) -> ObjectionState | None:
    if value == decision_pb2.OBJECTION_STATE_UNSPECIFIED:
        return None
    found = _STATES_BACK.get(value)  # type: ignore[call-overload]
    if found is None:
        raise InvalidField("state", f"unknown objection state {value}")
    return found  # type: ignore[no-any-return]


def checkpoint_message(head: SignedTreeHead) -> decision_pb2.Checkpoint:
    return decision_pb2.Checkpoint(note=head.note, size=head.size, root_hash=head.root_hash)


async def _abort_log(context: grpc.aio.ServicerContext, error: DomainError) -> None:
    if isinstance(error, NotYetIntegrated):
        context.set_trailing_metadata((("retry-after", str(error.retry_after_s)),))
    await abort_with(context, error)


class DecisionServicer(decision_pb2_grpc.DecisionServiceServicer):
    """Reads go through the ReadGate (rate-counted, audited). A caller without objections:review names the
    subject (`subject`) to see or act on one decision or objection, and one about anyone else answers as an unknown
    id does: the NOT_FOUND of the same message."""

    def __init__(self, reader: DecisionReader, objections: Objections, reads: ReadGate, proofs: LogProofs) -> None:
        self._reader = reader
        self._objections = objections
        self._reads = reads
        self._proofs = proofs

    def _claimed(self, grant: Grant, request: Any) -> SubjectId | None:
        given = request.HasField("subject")
        kind = wire.id_kind(request.subject.id_type) if given else None
        return self._reads.claimed_subject(grant, kind, request.subject.id, given)

    async def _decision(self, grant: Grant, request: Any) -> LoggedDecision:
        """The decision `request.decision_id` names, if the caller may see it (see the class)."""
        claimed = self._claimed(grant, request)  # judged before the id is looked up: the answer cannot tell
        found = await self._reader.get(request.decision_id)
        if not self._reads.is_subject(claimed, found.id_kind, found.subject_pseudonym):
            raise NotFound(f"no decision {request.decision_id.strip()}")
        return found

    async def _objection(self, grant: Grant, request: Any) -> Objection:
        claimed = self._claimed(grant, request)
        found = await self._objections.get(request.objection_id)
        if not self._reads.is_subject(claimed, found.subject.kind, found.subject.pseudonym):
            raise NotFound(f"no objection {request.objection_id.strip()}")
        return found

    async def _owner_of_decision(self, grant: Grant, request: Any) -> None:
        """Before an act on a decision: a caller who must name the subject named the right one."""
        if self._claimed(grant, request) is not None:
            await self._decision(grant, request)

    async def _owner_of_objection(self, grant: Grant, request: Any) -> None:
        if self._claimed(grant, request) is not None:
            await self._objection(grant, request)

    # -- the log: checkpoints, receipts, consistency ----------------------------------------------------------

    async def GetCheckpoint(self, request, context):  # type: ignore[no-untyped-def]
        try:
            return checkpoint_message(await self._proofs.checkpoint())
        except DomainError as error:
            await _abort_log(context, error)

    async def GetDecisionProof(self, request, context):  # type: ignore[no-untyped-def]
        async def read(grant: Grant) -> tuple[decision_pb2.DecisionProof, list[str]]:
            found = await self._decision(grant, request)  # whose it is, as GetDecision judges it
            try:
                proof = await self._proofs.decision_proof(request.decision_id)
            except NotYetIntegrated as error:
                context.set_trailing_metadata((("retry-after", str(error.retry_after_s)),))
                raise
            answer = decision_pb2.DecisionProof(
                decision_id=proof.decision_id,
                entry=proof.entry,
                leaf_index=proof.leaf_index,
                inclusion_proof=list(proof.inclusion_proof),
                checkpoint=checkpoint_message(proof.head),
                receipt=proof.receipt().to_bytes(),
            )
            return answer, [found.subject_pseudonym]

        return await self._reads.serve(context, "GetDecisionProof", read)

    async def GetConsistencyProof(self, request, context):  # type: ignore[no-untyped-def]
        try:
            hashes = await self._proofs.consistency(request.from_size, request.to_size)
        except DomainError as error:
            await _abort_log(context, error)
        return decision_pb2.ConsistencyProof(from_size=request.from_size, to_size=request.to_size, hashes=list(hashes))

    async def GetDecision(self, request, context):  # type: ignore[no-untyped-def]
        async def read(grant: Grant) -> tuple[decision_pb2.Decision, list[str]]:
            found = await self._decision(grant, request)
            return decision_message(found), [found.subject_pseudonym]

        return await self._reads.serve(context, "GetDecision", read)

    async def ListDecisions(self, request, context):  # type: ignore[no-untyped-def]
        async def read(grant: Grant) -> tuple[decision_pb2.ListDecisionsResponse, list[str]]:
            kind = wire.id_kind(request.subject.id_type)
            found, token = await self._reader.for_subject(
                kind, request.subject.id, request.page_size, request.page_token
            )
            asked = self._reads.asked_pseudonym(kind, request.subject.id)
            answer = decision_pb2.ListDecisionsResponse(
                decisions=[decision_message(d) for d in found], next_page_token=token
            )
            return answer, [asked]

        return await self._reads.serve(context, "ListDecisions", read)

    # -- objections ----------------------------------------------------------------------------------------

    async def FileObjection(self, request, context):  # type: ignore[no-untyped-def]
        # Through the ReadGate: its answers tell whose decision it is (NOT_FOUND for a wrong `subject`), so it counts
        # against the rate and is audited like GetDecision, or it would be an unmetered, unseen ownership oracle.
        async def act(grant: Grant) -> tuple[decision_pb2.Objection, list[str]]:
            await self._owner_of_decision(grant, request)
            found = await self._objections.file(request.decision_id, request.statement, request.contact)
            return objection_message(found, self._objections.now()), [found.subject.pseudonym]

        return await self._reads.serve(context, "FileObjection", act)

    async def ReviewObjection(self, request, context):  # type: ignore[no-untyped-def]
        try:
            found = await self._objections.review(request.objection_id, actor_of(request, context))
        except DomainError as error:
            await abort_with(context, error)
        return objection_message(found, self._objections.now())

    async def ResolveObjection(self, request, context):  # type: ignore[no-untyped-def]
        try:
            outcome = _OUTCOMES.get(request.outcome)
            found = await self._objections.resolve(
                request.objection_id, outcome, actor_of(request, context), request.reason
            )
        except DomainError as error:
            await abort_with(context, error)
        return objection_message(found, self._objections.now())

    async def ConfirmResolution(self, request, context):  # type: ignore[no-untyped-def]
        try:
            found = await self._objections.confirm(request.objection_id, actor_of(request, context))
        except DomainError as error:
            await abort_with(context, error)
        return objection_message(found, self._objections.now())

    async def RequestReconsideration(self, request, context):  # type: ignore[no-untyped-def]
        async def act(grant: Grant) -> tuple[decision_pb2.Objection, list[str]]:  # the ReadGate: see FileObjection
            await self._owner_of_objection(grant, request)
            found = await self._objections.request_reconsideration(request.objection_id, request.statement)
            return objection_message(found, self._objections.now()), [found.subject.pseudonym]

        return await self._reads.serve(context, "RequestReconsideration", act)

    async def GetObjection(self, request, context):  # type: ignore[no-untyped-def]
        async def read(grant: Grant) -> tuple[decision_pb2.Objection, list[str]]:
            found = await self._objection(grant, request)
            return objection_message(found, self._objections.now()), [found.subject.pseudonym]

        return await self._reads.serve(context, "GetObjection", read)

    async def ListObjections(self, request, context):  # type: ignore[no-untyped-def]
        async def read(grant: Grant) -> tuple[decision_pb2.ListObjectionsResponse, list[str]]:
            found, token = await self._objections.find(
                _state_filter(request.state), request.overdue_only, request.page_size, request.page_token
            )
            now = self._objections.now()
            answer = decision_pb2.ListObjectionsResponse(
                objections=[objection_message(o, now) for o in found], next_page_token=token
            )
            return answer, [o.subject.pseudonym for o in found]

        return await self._reads.serve(context, "ListObjections", read)
