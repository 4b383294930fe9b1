"""gRPC servicers of the sanction service: proto in, domain call, proto out. No rules live here."""

from __future__ import annotations

import time

from google.rpc import status_pb2

from debar.common.errors import DomainError, InvalidField
from debar.rpc import wire
from debar.rpc.status import abort_with, status_code_of
from debar.sanction.api import convert
from debar.sanction.api.access import CheckGate, ReadGate, current_grant
from debar.sanction.api.actors import actor_of
from debar.sanction.app.checker import Checker
from debar.sanction.app.registry import ExemptionInput, ImposeInput, PrincipalInput, Registry
from debar.sanction.domain.access import Grant
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.decisions import Decision
from debar.sanction.domain.model import Restriction
from debar.v1 import registry_pb2, registry_pb2_grpc, sanction_pb2_grpc

_EFFECTS = {
    "created": registry_pb2.WRITE_EFFECT_CREATED,
    "updated": registry_pb2.WRITE_EFFECT_UPDATED,
    "unchanged": registry_pb2.WRITE_EFFECT_UNCHANGED,
}


class SanctionServicer(sanction_pb2_grpc.SanctionServiceServicer):
    """Checks as the caller the AccessInterceptor identified: its rate first, then the measures it may check."""

    def __init__(self, checker: Checker, catalogue: Catalogue, max_batch_items: int, gate: CheckGate) -> None:
        self._checker = checker
        self._catalogue = catalogue
        self._max_batch = max_batch_items
        self._gate = gate

    async def Check(self, request, context):  # type: ignore[no-untyped-def]
        grant = current_grant()
        try:
            rate = await self._gate.ask(grant, 1)
        except DomainError as error:
            await abort_with(context, error)
        if not self._gate.may_check(grant, request.measure):
            await abort_with(context, self._gate.denial(grant, request.measure, "measure"))
        [result] = await self._checker.check(
            [convert.check_input(request)], grant.caller, on_behalf_of=grant.on_behalf_of, rate=rate
        )
        try:
            self._gate.settle(grant, rate)
        except DomainError as error:
            await abort_with(context, error)
        if isinstance(result, DomainError):
            await abort_with(context, result)
        self._gate.saw(grant, [result.query.subject.pseudonym])  # type: ignore[union-attr]
        # Its wire bytes, sent as they are (rpc/interceptors.passing_bytes): no message built, none serialized.
        return convert.check_answer(result, self._catalogue)  # type: ignore[arg-type]

    async def BatchCheck(self, request, context):  # type: ignore[no-untyped-def]
        if len(request.items) > self._max_batch:
            too_many = InvalidField("items", f"at most {self._max_batch} per batch, got {len(request.items)}")
            await abort_with(context, too_many)
        grant = current_grant()
        try:
            rate = await self._gate.ask(grant, len(request.items))
        except DomainError as error:
            await abort_with(context, error)
        # An item outside the caller's scopes is refused alone, and never reaches the checker (nor the log).
        items = list(request.items)
        may: set[str] = set()  # measures this call may check: asked once each (a refusal is counted per item)
        allowed = []
        for i, item in enumerate(items):
            measure = item.measure
            if measure in may or self._gate.may_check(grant, measure):
                may.add(measure)
                allowed.append(i)
        inputs = [convert.check_input(items[i]) for i in allowed]
        checked = await self._checker.check(
            inputs, grant.caller, field="items[{i}]", positions=allowed, on_behalf_of=grant.on_behalf_of, rate=rate
        )
        try:
            self._gate.settle(grant, rate)
        except DomainError as error:
            await abort_with(context, error)
        self._gate.saw(grant, [r.query.subject.pseudonym for r in checked if isinstance(r, Decision)])
        results: list[Decision | DomainError | None] = [None] * len(items)
        for i, checked_one in zip(allowed, checked, strict=True):
            results[i] = checked_one
        answers = convert.BatchAnswers(self._catalogue)  # a plain allow's answer is copied from prebuilt bytes
        add = answers.add
        for i, found in enumerate(results):
            result = self._gate.denial(grant, items[i].measure, f"items[{i}].measure") if found is None else found
            if isinstance(result, DomainError):
                answers.error(status_pb2.Status(code=status_code_of(result).value[0], message=result.message))
            else:
                add(result)
        return answers.response()

    async def ListMeasures(self, request, context):  # type: ignore[no-untyped-def]
        return convert.measures_response(self._catalogue)


def restriction_subjects(restriction: Restriction) -> list[str]:
    """The pseudonyms a restriction shows: its subject's and each principal's."""
    return [restriction.subject.pseudonym, *(p.subject.pseudonym for p in restriction.principals)]


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    """Reads (GetRestriction, ListRestrictions) go through the ReadGate: rate-counted and audited."""

    def __init__(self, registry: Registry, reads: ReadGate) -> None:
        self._registry = registry
        self._reads = reads

    async def Impose(self, request, context):  # type: ignore[no-untyped-def]
        try:
            item = ImposeInput(
                source=request.source,
                source_id=request.source_id,
                subject_kind=wire.id_kind(request.subject.id_type),
                subject_id=request.subject.id,
                name=request.name,
                list_version=request.list_version,
                legal_basis=request.legal_basis,
                authority=request.authority,
                case_number=request.case_number,
                document_number=request.document_number,
                decided_on=request.decided_on,
                measures=list(request.measures),
                effective_from=wire.seconds(
                    request.effective_from, request.HasField("effective_from"), "effective_from"
                ),
                effective_until=wire.seconds(
                    request.effective_until, request.HasField("effective_until"), "effective_until"
                ),
                principals=[
                    PrincipalInput(
                        wire.id_kind(p.subject.id_type),
                        p.subject.id,
                        convert.role_of(p.role, f"principals[{i}].role"),
                        p.name,
                    )
                    for i, p in enumerate(request.principals)
                ],
            )
            restriction, revision, effect = await self._registry.impose(item, actor_of(request, context))
        except DomainError as error:
            await abort_with(context, error)
        return registry_pb2.ImposeResponse(
            restriction=convert.restriction(restriction, int(time.time())),
            revision=revision,
            effect=_EFFECTS[effect.value],
        )

    async def Lift(self, request, context):  # type: ignore[no-untyped-def]
        try:
            restriction, revision = await self._registry.lift(
                request.restriction_id, request.reason, request.document_number, actor_of(request, context)
            )
        except DomainError as error:
            await abort_with(context, error)
        return registry_pb2.LiftResponse(
            restriction=convert.restriction(restriction, int(time.time())), revision=revision
        )

    async def ConfirmLift(self, request, context):  # type: ignore[no-untyped-def]
        try:
            restriction, revision = await self._registry.confirm_lift(
                request.restriction_id, request.document_number, actor_of(request, context)
            )
        except DomainError as error:
            await abort_with(context, error)
        return registry_pb2.LiftResponse(
            restriction=convert.restriction(restriction, int(time.time())), revision=revision
        )

    async def GetRestriction(self, request, context):  # type: ignore[no-untyped-def]
        async def read(grant: Grant) -> tuple[registry_pb2.Restriction, list[str]]:
            restriction = await self._registry.get(request.restriction_id)
            history = await self._registry.history(restriction)
            message = convert.restriction(restriction, int(time.time()))
            message.history.extend(convert.registry_change(record_id, e) for record_id, e in history)
            permits = await self._registry.permits_meeting(restriction)
            message.exemptions.extend(convert.exemption(x, awaiting) for x, awaiting in permits)
            return message, restriction_subjects(restriction)

        return await self._reads.serve(context, "GetRestriction", read)

    async def ListRestrictions(self, request, context):  # type: ignore[no-untyped-def]
        async def read(grant: Grant) -> tuple[registry_pb2.ListRestrictionsResponse, list[str]]:
            kind = wire.id_kind(request.subject.id_type)
            found = await self._registry.reaching(kind, request.subject.id, request.include_inactive)
            permits = await self._registry.permits(kind, request.subject.id)
            asked = self._reads.asked_pseudonym(kind, request.subject.id)
            now = int(time.time())
            answer = registry_pb2.ListRestrictionsResponse(
                restrictions=[
                    registry_pb2.RestrictionReach(restriction=convert.restriction(r, now), role=int(role), via=via)  # type: ignore[arg-type]
                    for r, role, via in found
                ],
                exemptions=[convert.exemption(x, awaiting) for x, awaiting in permits],
                revision=self._registry.revision,
            )
            return answer, [asked, *(p for r, _, _ in found for p in restriction_subjects(r))]

        return await self._reads.serve(context, "ListRestrictions", read)

    async def GrantExemption(self, request, context):  # type: ignore[no-untyped-def]
        try:
            if not request.HasField("effective_until"):
                raise InvalidField("effective_until", "is required: a permit is for a window")
            exemption, revision = await self._registry.grant_exemption(
                ExemptionInput(
                    subject_kind=wire.id_kind(request.subject.id_type),
                    subject_id=request.subject.id,
                    measure=request.measure,
                    effective_from=wire.seconds(
                        request.effective_from, request.HasField("effective_from"), "effective_from"
                    ),
                    effective_until=wire.seconds(request.effective_until, True, "effective_until"),
                    authority=request.authority,
                    reason=request.reason,
                    document_number=request.document_number,
                ),
                actor_of(request, context),
            )
            awaiting = await self._registry.awaits(exemption)
        except DomainError as error:
            await abort_with(context, error)
        return registry_pb2.GrantExemptionResponse(exemption=convert.exemption(exemption, awaiting), revision=revision)

    async def ConfirmExemption(self, request, context):  # type: ignore[no-untyped-def]
        try:
            exemption, revision = await self._registry.confirm_exemption(
                wire.id_kind(request.subject.id_type), request.subject.id, request.exemption_id,
                request.document_number, actor_of(request, context), request.measure,
                wire.seconds(request.effective_from, request.HasField("effective_from"), "effective_from"),
                wire.seconds(request.effective_until, request.HasField("effective_until"), "effective_until"),
            )  # fmt: skip
            awaiting = await self._registry.awaits(exemption)
        except DomainError as error:
            await abort_with(context, error)
        return registry_pb2.GrantExemptionResponse(exemption=convert.exemption(exemption, awaiting), revision=revision)
