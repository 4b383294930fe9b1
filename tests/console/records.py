"""Records the console's tests start from, made over the sanction service's own API."""

from __future__ import annotations

from debar.v1 import common_pb2, decision_pb2
from tests.support.objections import filed_days_ago
from tests.support.requests import check_request, impose_request


def refusal(system, number: str, measure: str = "RAIL_G_TRAIN") -> str:  # type: ignore[no-untyped-def]
    system.registry.Impose(impose_request(number))
    decision = system.checks.Check(check_request(number, measure))
    assert decision.outcome == common_pb2.OUTCOME_DENY
    return str(decision.decision_id)


def objection_filed(system, number: str, days_ago: float = 0) -> str:  # type: ignore[no-untyped-def]
    decision_id = refusal(system, number)
    filed = system.decisions.FileObjection(
        decision_pb2.FileObjectionRequest(
            decision_id=decision_id, statement="That is not me.", contact="me@example.com"
        )
    )
    if days_ago:
        filed_days_ago(system.redis_url, filed.objection_id, days_ago)
    return str(filed.objection_id)


def objections_on(system, decision_id: str) -> list[decision_pb2.Objection]:  # type: ignore[no-untyped-def]
    listed = system.decisions.ListObjections(decision_pb2.ListObjectionsRequest(page_size=500))
    return [o for o in listed.objections if o.decision_id == decision_id]
