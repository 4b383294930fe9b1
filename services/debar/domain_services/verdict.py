"""Sanction answers to the verdict a domain service gives its caller. Pure: no I/O, no clock of its own.

A verdict carries masked identifiers only: the refusal names the subject by `mask_identifier`, and grounds come
from the sanction service, which names organisations by masked display names."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.timestamp_pb2 import Timestamp

from debar.common.identifiers import mask_identifier
from debar.domain_services.checks import SubjectCheck
from debar.v1 import common_pb2, sanction_pb2, verdict_pb2


def build_verdict(
    checks: Sequence[SubjectCheck], responses: Sequence[sanction_pb2.CheckResponse], checked_at: Timestamp
) -> verdict_pb2.Verdict:
    """Allowed when no answer denies; one refusal per denied check, in request order."""
    verdict = verdict_pb2.Verdict(allowed=True, checked_at=checked_at)
    for check, response in zip(checks, responses, strict=True):
        verdict.decision_ids.append(response.decision_id)
        verdict.revision = max(verdict.revision, response.revision)
        if response.outcome != common_pb2.OUTCOME_ALLOW:
            verdict.allowed = False
            verdict.refusals.append(refusal(check, response))
        elif response.HasField("exemption"):
            verdict.permits.append(permit(check, response))
        if response.degradation == sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED:
            verdict.spooled_decision_ids.append(response.decision_id)
    return verdict


def permit(check: SubjectCheck, response: sanction_pb2.CheckResponse) -> verdict_pb2.Permit:
    return verdict_pb2.Permit(
        subject=mask_identifier(check.subject.number),
        subject_index=check.subject_index,
        measure=response.measure or check.measure,
        decision_id=response.decision_id,
        exemption=response.exemption,
    )


def refusal(check: SubjectCheck, response: sanction_pb2.CheckResponse) -> verdict_pb2.Refusal:
    found = verdict_pb2.Refusal(
        subject=mask_identifier(check.subject.number),
        subject_index=check.subject_index,
        measure=response.measure or check.measure,
        decision_id=response.decision_id,
        grounds=list(response.grounds),
    )
    if response.HasField("objection"):
        found.objection.CopyFrom(response.objection)
    return found


def build_verdicts(
    groups: int,
    checks: Sequence[SubjectCheck],
    responses: Sequence[sanction_pb2.CheckResponse],
    checked_at: Timestamp,
) -> list[verdict_pb2.Verdict]:
    """One verdict per group (e.g. per ticket of an order), each judged on its own checks alone."""
    paired: list[tuple[list[SubjectCheck], list[sanction_pb2.CheckResponse]]] = [([], []) for _ in range(groups)]
    for check, response in zip(checks, responses, strict=True):
        paired[check.group][0].append(check)
        paired[check.group][1].append(response)
    return [build_verdict(group_checks, group_responses, checked_at) for group_checks, group_responses in paired]
