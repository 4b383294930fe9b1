"""The real-estate service: may these buyers make this property deal? Its rules say which measure a deal touches,
for every buyer (pure: the request in, the checks to ask out); its servicer answers CheckPurchase with them."""

from __future__ import annotations

import grpc

from debar.common.errors import InvalidField
from debar.domain_services.checks import SubjectCheck, subject_of, time_of
from debar.domain_services.judge import Judge
from debar.v1 import realestate_pb2, realestate_pb2_grpc, verdict_pb2

REAL_ESTATE_PURCHASE = "REAL_ESTATE_PURCHASE"
OFFICE_LEASE_HIGH_GRADE = "OFFICE_LEASE_HIGH_GRADE"

MAX_BUYERS = 16

DEAL_MEASURES: dict[int, str] = {
    realestate_pb2.PROPERTY_DEAL_KIND_PURCHASE: REAL_ESTATE_PURCHASE,
    realestate_pb2.PROPERTY_DEAL_KIND_BUILD_EXTEND: REAL_ESTATE_PURCHASE,
    realestate_pb2.PROPERTY_DEAL_KIND_LUXURY_RENOVATION: REAL_ESTATE_PURCHASE,
    realestate_pb2.PROPERTY_DEAL_KIND_OFFICE_LEASE: OFFICE_LEASE_HIGH_GRADE,
}


def deal_measure(kind: int) -> str:
    measure = DEAL_MEASURES.get(kind)
    if measure is None:
        raise InvalidField("kind", "must be a property deal kind (not PROPERTY_DEAL_KIND_UNSPECIFIED)")
    return measure


def purchase_checks(request: realestate_pb2.CheckPurchaseRequest) -> list[SubjectCheck]:
    """One check per buyer: one restricted buyer refuses the whole deal."""
    if not request.buyers:
        raise InvalidField("buyers", "at least one buyer is needed")
    if len(request.buyers) > MAX_BUYERS:
        raise InvalidField("buyers", f"at most {MAX_BUYERS}, got {len(request.buyers)}")
    measure = deal_measure(request.kind)
    at = time_of(request.contract_date, request.HasField("contract_date"), "contract_date")
    return [
        SubjectCheck(
            subject=subject_of(buyer, f"buyers[{i}]"),
            measure=measure,
            at=at,
            subject_index=i,
            subject_field=f"buyers[{i}]",
            at_field="contract_date",
        )
        for i, buyer in enumerate(request.buyers)
    ]


class RealEstateServicer(realestate_pb2_grpc.RealEstateServiceServicer):
    def __init__(self, judge: Judge) -> None:
        self._judge = judge

    async def CheckPurchase(
        self, request: realestate_pb2.CheckPurchaseRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        return await self._judge.verdict(context, lambda: purchase_checks(request))
