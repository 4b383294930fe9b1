"""Small builders for API requests, so tests read as the scenario they check, and the second identities four eyes
need (in local mode, against the packaged scopes: the unnamed caller is `local`, the second one is named by the
x-debar-caller header)."""

from __future__ import annotations

import itertools
import time

from google.protobuf.timestamp_pb2 import Timestamp

from debar.v1 import common_pb2, decision_pb2, registry_pb2, sanction_pb2

DAY = 86400
RIC = common_pb2.ID_TYPE_RIC
USCC = common_pb2.ID_TYPE_USCC
_case = itertools.count(1)
LIFT_DOCUMENT = "(2026) Jing 0105 Zhi 7 decision 2"
PERMIT_DOCUMENT = "(2026) Jing 0105 Zhi 7 permit 1"
SECOND_REGISTRY = (("x-debar-caller", "clerk:zhao"),)  # registry:write (clerk:*), and not `local`
SECOND_REVIEWER = (("x-debar-caller", "reviewer:zhang"),)  # objections:review (reviewer:*), and not `local`


def ts(epoch_s: float) -> Timestamp:
    return Timestamp(seconds=int(epoch_s))


def subject(number: str) -> common_pb2.Subject:
    return common_pb2.Subject(id_type=USCC if number.startswith("9") else RIC, id=number)


def impose_request(
    number: str,
    *,
    source: str = "court_consumption_order",
    source_id: str | None = None,
    measures: list[str] | None = None,
    start: float | None = None,
    end: float | None = None,
    name: str = "",
    principals: list[tuple[str, int]] = (),  # type: ignore[assignment]
) -> registry_pb2.ImposeRequest:
    case = next(_case)
    request = registry_pb2.ImposeRequest(
        source=source,
        source_id=source_id or f"T-{time.time_ns()}-{case}",
        subject=subject(number),
        name=name or ("Example Trading Co." if number.startswith("9") else "Zhang San"),
        legal_basis="SPC Provisions on Restricting High Consumption, Art. 3",
        authority="Beijing Chaoyang District People's Court",
        case_number=f"(2026) Jing 0105 Zhi {case}",
        measures=measures or [],
        principals=[registry_pb2.PrincipalInput(subject=subject(p), role=role, name="Li Si") for p, role in principals],
    )
    request.effective_from.CopyFrom(ts(start if start is not None else time.time() - 30 * DAY))
    if end is not None:
        request.effective_until.CopyFrom(ts(end))
    return request


def check_request(
    number: str, measure: str, at: float | None = None, min_revision: int = 0
) -> sanction_pb2.CheckRequest:
    request = sanction_pb2.CheckRequest(subject=subject(number), measure=measure, min_revision=min_revision)
    if at is not None:
        request.at.CopyFrom(ts(at))
    return request


def lift_confirmed(registry, rid: str, reason: str = "debt paid") -> registry_pb2.LiftResponse:  # type: ignore[no-untyped-def]
    """Lifted by the unnamed caller and, where the source needs it, confirmed by a second registry identity."""
    asked = registry.Lift(registry_pb2.LiftRequest(restriction_id=rid, reason=reason, document_number=LIFT_DOCUMENT))
    if not asked.restriction.HasField("pending_lift"):
        return asked  # type: ignore[no-any-return]
    confirm = registry_pb2.ConfirmLiftRequest(restriction_id=rid, document_number=LIFT_DOCUMENT)
    return registry.ConfirmLift(confirm, metadata=SECOND_REGISTRY)  # type: ignore[no-any-return]


def exemption_confirmed(registry, request: registry_pb2.GrantExemptionRequest) -> registry_pb2.GrantExemptionResponse:  # type: ignore[no-untyped-def]
    """Granted by the unnamed caller and, where it needs it, confirmed by a second registry identity."""
    granted = registry.GrantExemption(request)
    if not granted.exemption.awaiting_confirmation:
        return granted  # type: ignore[no-any-return]
    confirm = permit_confirmation(request.subject, granted.exemption.id, request)
    return registry.ConfirmExemption(confirm, metadata=SECOND_REGISTRY)  # type: ignore[no-any-return]


def permit_confirmation(
    subject: common_pb2.Subject, exemption_id: str,
    read: registry_pb2.GrantExemptionRequest | registry_pb2.Exemption,
) -> registry_pb2.ConfirmExemptionRequest:  # fmt: skip
    """A second identity's confirmation of the permit, naming its document, measure and window as `read` says them
    (the court's permit, as granted)."""
    return registry_pb2.ConfirmExemptionRequest(
        subject=subject, exemption_id=exemption_id, document_number=read.document_number, measure=read.measure,
        effective_from=read.effective_from, effective_until=read.effective_until,
    )  # fmt: skip


def confirm_resolution(decisions, objection_id: str) -> decision_pb2.Objection:  # type: ignore[no-untyped-def]
    """An overturn confirmed by a second reviewer (not the unnamed caller that resolved it)."""
    request = decision_pb2.ConfirmResolutionRequest(objection_id=objection_id)
    return decisions.ConfirmResolution(request, metadata=SECOND_REVIEWER)  # type: ignore[no-any-return]
