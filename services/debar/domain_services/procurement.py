"""The procurement service: may this company bid for this tender? Its rules say which checks a bid needs,
PROCUREMENT_BID for the bidder and for each principal (pure: the request in, the checks to ask out); its servicer
answers CheckBidder with them.

Look-back windows (3 years after a major violation) and debarment terms are restriction windows held as data in
the sanction service, checked at the bid deadline; nothing here counts years. A principal merely bound through
the company's consumption order is not under PROCUREMENT_BID: the catalogue says so, not this module."""

from __future__ import annotations

import grpc

from debar.common.errors import InvalidField
from debar.common.identifiers import IdKind
from debar.domain_services.checks import SubjectCheck, subject_of, time_of
from debar.domain_services.judge import Judge
from debar.v1 import common_pb2, procurement_pb2, procurement_pb2_grpc, verdict_pb2

PROCUREMENT_BID = "PROCUREMENT_BID"

MAX_PRINCIPALS = 32
MAX_TENDER_ID_CHARS = 128
# subject_index in a refusal: 0 is the bidder, i + 1 is principals[i].
BIDDER_INDEX = 0

_ROLES = frozenset(common_pb2.Role.values()) - {common_pb2.ROLE_UNSPECIFIED, common_pb2.ROLE_DEBTOR}


def bidder_checks(request: procurement_pb2.CheckBidderRequest) -> list[SubjectCheck]:
    bidder = subject_of(request.bidder, "bidder", only=IdKind.USCC)
    tender_id = request.tender_id.strip()
    if not tender_id:
        raise InvalidField("tender_id", "is required")
    if len(tender_id) > MAX_TENDER_ID_CHARS or not tender_id.isprintable():
        raise InvalidField("tender_id", f"must be printable and at most {MAX_TENDER_ID_CHARS} characters")
    at = time_of(request.bid_deadline, request.HasField("bid_deadline"), "bid_deadline", required=True)
    if len(request.principals) > MAX_PRINCIPALS:
        raise InvalidField("principals", f"at most {MAX_PRINCIPALS}, got {len(request.principals)}")
    checks = [SubjectCheck(bidder, PROCUREMENT_BID, at, BIDDER_INDEX, subject_field="bidder", at_field="bid_deadline")]
    for i, principal in enumerate(request.principals):
        field = f"principals[{i}]"
        if principal.role not in _ROLES:
            raise InvalidField(f"{field}.role", "must be a role in the organisation (not UNSPECIFIED or DEBTOR)")
        person = subject_of(principal.subject, f"{field}.subject")
        checks.append(
            SubjectCheck(person, PROCUREMENT_BID, at, i + 1, subject_field=f"{field}.subject", at_field="bid_deadline")
        )
    return checks


class ProcurementServicer(procurement_pb2_grpc.ProcurementServiceServicer):
    def __init__(self, judge: Judge) -> None:
        self._judge = judge

    async def CheckBidder(
        self, request: procurement_pb2.CheckBidderRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        return await self._judge.verdict(context, lambda: bidder_checks(request))
