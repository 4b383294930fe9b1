"""The domain services' pure rules: which measures a request touches, bad inputs, and the verdict built from
sanction answers. No server here."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from debar.common.errors import InvalidField
from debar.domain_services import hotel, procurement, railway, realestate
from debar.domain_services.checks import SubjectCheck, caller_field, subject_of
from debar.domain_services.sanction_client import SanctionUnavailable, check_request, item_error, responses_for
from debar.domain_services.verdict import build_verdict, build_verdicts
from debar.v1 import (
    common_pb2,
    hotel_pb2,
    procurement_pb2,
    railway_pb2,
    realestate_pb2,
    sanction_pb2,
)
from tests.support.requests import subject
from tests.support.subjects import bad_checksum, new_ric, new_uscc

S = railway_pb2
G, EMU, SOFT, BAN = "RAIL_G_TRAIN", "RAIL_EMU_FIRST_CLASS", "RAIL_SOFT_SLEEPER", "RAIL_TICKET_BAN"
DEADLINE = 1_900_000_000


def field_of(raised: pytest.ExceptionInfo[InvalidField]) -> str:
    return raised.value.field


# --- railway -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("train", "seat", "measures"),
    [
        ("G123", S.SEAT_CLASS_SECOND, [G, BAN]),
        ("G123", S.SEAT_CLASS_BUSINESS, [G, BAN]),
        ("g7", S.SEAT_CLASS_NO_SEAT, [G, BAN]),
        ("D301", S.SEAT_CLASS_SECOND, [BAN]),
        ("D301", S.SEAT_CLASS_FIRST, [EMU, BAN]),
        ("C2001", S.SEAT_CLASS_BUSINESS, [EMU, BAN]),
        ("C2001", S.SEAT_CLASS_PREMIUM, [EMU, BAN]),
        ("D12", S.SEAT_CLASS_SOFT_SLEEPER, [SOFT, BAN]),
        ("K1", S.SEAT_CLASS_SOFT_SLEEPER, [SOFT, BAN]),
        ("Z19", S.SEAT_CLASS_DELUXE_SOFT_SLEEPER, [SOFT, BAN]),
        ("K1", S.SEAT_CLASS_HARD_SLEEPER, [BAN]),
        ("T110", S.SEAT_CLASS_SOFT_SEAT, [BAN]),
        ("Z19", S.SEAT_CLASS_FIRST, [BAN]),  # first class is restricted on multiple-unit trains only
        ("1461", S.SEAT_CLASS_HARD_SEAT, [BAN]),
        ("Y5", S.SEAT_CLASS_HARD_SEAT, [BAN]),
        ("S101", S.SEAT_CLASS_SECOND, [BAN]),
        ("L123", S.SEAT_CLASS_HARD_SEAT, [BAN]),
    ],
)
def test_ticket_measures(train, seat, measures):
    assert railway.ticket_measures(train, seat) == measures


@pytest.mark.parametrize("train", ["", "   ", "X123", "Q1", "G", "G12345", "GG12", "G-12", "D301A", "12345"])
def test_bad_train_numbers_name_the_field(train):
    with pytest.raises(InvalidField) as raised:
        railway.ticket_measures(train, S.SEAT_CLASS_SECOND)
    assert field_of(raised) == "train_number"


@pytest.mark.parametrize("seat", [S.SEAT_CLASS_UNSPECIFIED, 99])
def test_unspecified_seat_class_is_refused(seat):
    with pytest.raises(InvalidField) as raised:
        railway.ticket_measures("G1", seat)
    assert field_of(raised) == "seat_class"


def ticket(train="G123", seat=S.SEAT_CLASS_SECOND, passenger=None, at=None) -> railway_pb2.CheckTicketRequest:
    request = railway_pb2.CheckTicketRequest(
        passenger=subject(passenger or new_ric()), train_number=train, seat_class=seat
    )
    if at is not None:
        request.travel_date.seconds = at
    return request


def test_ticket_checks_carry_passenger_and_travel_date():
    person = new_ric()
    checks = railway.ticket_checks(ticket(passenger=person, at=DEADLINE))
    assert [c.measure for c in checks] == [G, BAN]
    assert {c.subject.number for c in checks} == {person}
    assert {c.at for c in checks} == {DEADLINE}
    assert {(c.subject_index, c.subject_field, c.at_field) for c in checks} == {(0, "passenger", "travel_date")}
    assert railway.ticket_checks(ticket())[0].at is None  # no travel date: now, decided by the sanction service


def test_ticket_passenger_is_validated():
    with pytest.raises(InvalidField) as raised:
        railway.ticket_checks(ticket(passenger=bad_checksum(new_ric())))
    assert field_of(raised) == "passenger.id"
    request = ticket()
    request.passenger.id_type = common_pb2.ID_TYPE_UNSPECIFIED
    with pytest.raises(InvalidField) as raised:
        railway.ticket_checks(request)
    assert field_of(raised) == "passenger.id_type"


def test_order_checks_group_by_ticket_and_name_the_ticket_in_errors():
    order = railway_pb2.CheckOrderRequest(
        tickets=[ticket("G1"), ticket("D301"), ticket("K1", S.SEAT_CLASS_SOFT_SLEEPER)]
    )
    checks = railway.order_checks(order)
    assert [(c.group, c.subject_index, c.measure) for c in checks] == [
        (0, 0, G), (0, 0, BAN), (1, 1, BAN), (2, 2, SOFT), (2, 2, BAN),
    ]  # fmt: skip
    assert checks[2].subject_field == "tickets[1].passenger"

    order.tickets[1].train_number = "X9"
    with pytest.raises(InvalidField) as raised:
        railway.order_checks(order)
    assert field_of(raised) == "tickets[1].train_number"
    with pytest.raises(InvalidField, match="tickets"):
        railway.order_checks(railway_pb2.CheckOrderRequest())
    too_many = railway_pb2.CheckOrderRequest(tickets=[ticket()] * (railway.MAX_ORDER_TICKETS + 1))
    with pytest.raises(InvalidField, match="at most"):
        railway.order_checks(too_many)


# --- hotel ---------------------------------------------------------------------------------------------------

H = hotel_pb2


@pytest.mark.parametrize(
    ("venue", "stars", "measures"),
    [
        (H.VENUE_KIND_HOTEL, 0, []),
        (H.VENUE_KIND_HOTEL, 1, ["HOTEL_STAR_RATED"]),
        (H.VENUE_KIND_HOTEL, 5, ["HOTEL_STAR_RATED"]),
        (H.VENUE_KIND_NIGHTCLUB, 0, ["HOTEL_STAR_RATED"]),
        (H.VENUE_KIND_GOLF_COURSE, 0, ["HOTEL_STAR_RATED"]),
        (H.VENUE_KIND_OFFICE_LEASE, 0, ["OFFICE_LEASE_HIGH_GRADE"]),
        (H.VENUE_KIND_HOLIDAY_PACKAGE, 3, ["TRAVEL_HOLIDAY"]),
    ],
)
def test_booking_measures(venue, stars, measures):
    assert hotel.booking_measures(venue, stars) == measures


@pytest.mark.parametrize(
    ("venue", "stars", "field"),
    [(H.VENUE_KIND_UNSPECIFIED, 3, "venue"), (42, 3, "venue"), (H.VENUE_KIND_HOTEL, 6, "star_rating")],
)
def test_bad_bookings(venue, stars, field):
    with pytest.raises(InvalidField) as raised:
        hotel.booking_measures(venue, stars)
    assert field_of(raised) == field


def test_unrated_hotel_asks_nothing_but_still_validates_the_guest():
    request = H.CheckBookingRequest(guest=subject(new_ric()), star_rating=0, venue=H.VENUE_KIND_HOTEL)
    assert hotel.booking_checks(request) == []
    request.guest.id = "123"
    with pytest.raises(InvalidField) as raised:
        hotel.booking_checks(request)
    assert field_of(raised) == "guest.id"


def test_stay_date_out_of_range_is_refused():
    request = H.CheckBookingRequest(guest=subject(new_ric()), star_rating=4, venue=H.VENUE_KIND_HOTEL)
    request.stay_date.seconds = DEADLINE * 1000  # milliseconds by mistake
    with pytest.raises(InvalidField) as raised:
        hotel.booking_checks(request)
    assert field_of(raised) == "stay_date"


# --- real estate ---------------------------------------------------------------------------------------------

R = realestate_pb2


@pytest.mark.parametrize(
    ("kind", "measure"),
    [
        (R.PROPERTY_DEAL_KIND_PURCHASE, "REAL_ESTATE_PURCHASE"),
        (R.PROPERTY_DEAL_KIND_BUILD_EXTEND, "REAL_ESTATE_PURCHASE"),
        (R.PROPERTY_DEAL_KIND_LUXURY_RENOVATION, "REAL_ESTATE_PURCHASE"),
        (R.PROPERTY_DEAL_KIND_OFFICE_LEASE, "OFFICE_LEASE_HIGH_GRADE"),
    ],
)
def test_deal_measures(kind, measure):
    assert realestate.deal_measure(kind) == measure


def test_every_buyer_is_checked_with_its_index():
    buyers = [new_ric(), new_ric(), new_uscc()]
    request = R.CheckPurchaseRequest(buyers=[subject(b) for b in buyers], kind=R.PROPERTY_DEAL_KIND_PURCHASE)
    checks = realestate.purchase_checks(request)
    assert [(c.subject.number, c.subject_index, c.subject_field) for c in checks] == [
        (b, i, f"buyers[{i}]") for i, b in enumerate(buyers)
    ]


@pytest.mark.parametrize(
    ("buyers", "kind", "field"),
    [
        (0, R.PROPERTY_DEAL_KIND_PURCHASE, "buyers"),
        (17, R.PROPERTY_DEAL_KIND_PURCHASE, "buyers"),
        (1, R.PROPERTY_DEAL_KIND_UNSPECIFIED, "kind"),
    ],
)
def test_bad_purchases(buyers, kind, field):
    request = R.CheckPurchaseRequest(buyers=[subject(new_ric()) for _ in range(buyers)], kind=kind)
    with pytest.raises(InvalidField) as raised:
        realestate.purchase_checks(request)
    assert field_of(raised) == field


def test_bad_co_buyer_is_named():
    request = R.CheckPurchaseRequest(
        buyers=[subject(new_ric()), subject(bad_checksum(new_ric()))], kind=R.PROPERTY_DEAL_KIND_PURCHASE
    )
    with pytest.raises(InvalidField) as raised:
        realestate.purchase_checks(request)
    assert field_of(raised) == "buyers[1].id"


# --- procurement ---------------------------------------------------------------------------------------------

P = procurement_pb2


def bid(bidder=None, principals=(), tender_id="T-2026-001", deadline=DEADLINE) -> procurement_pb2.CheckBidderRequest:
    request = P.CheckBidderRequest(
        bidder=subject(bidder or new_uscc()),
        principals=[P.BidderPrincipal(subject=subject(p), role=role) for p, role in principals],
        tender_id=tender_id,
    )
    if deadline is not None:
        request.bid_deadline.seconds = deadline
    return request


def test_bidder_and_each_principal_are_checked_at_the_deadline():
    company, person = new_uscc(), new_ric()
    checks = procurement.bidder_checks(bid(company, [(person, common_pb2.ROLE_LEGAL_REPRESENTATIVE)]))
    assert [(c.subject.number, c.measure, c.at, c.subject_index) for c in checks] == [
        (company, "PROCUREMENT_BID", DEADLINE, 0),
        (person, "PROCUREMENT_BID", DEADLINE, 1),
    ]
    assert checks[1].subject_field == "principals[0].subject"


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (bid(bidder=new_ric()), "bidder.id_type"),
        (bid(tender_id=""), "tender_id"),
        (bid(tender_id="   "), "tender_id"),
        (bid(tender_id="x" * 129), "tender_id"),
        (bid(deadline=None), "bid_deadline"),
        (bid(principals=[(new_ric(), common_pb2.ROLE_UNSPECIFIED)]), "principals[0].role"),
        (bid(principals=[(new_ric(), common_pb2.ROLE_DEBTOR)]), "principals[0].role"),
        (bid(principals=[(bad_checksum(new_ric()), common_pb2.ROLE_PRINCIPAL)]), "principals[0].subject.id"),
    ],
)
def test_bad_bids(request_, field):
    with pytest.raises(InvalidField) as raised:
        procurement.bidder_checks(request_)
    assert field_of(raised) == field


# --- sanction answers to verdicts ----------------------------------------------------------------------------


def a_check(number: str, index: int = 0, group: int = 0, measure: str = G) -> SubjectCheck:
    return SubjectCheck(
        subject=subject_of(subject(number), "x"),
        measure=measure,
        at=None,
        subject_index=index,
        subject_field=f"buyers[{index}]",
        at_field="contract_date",
        group=group,
    )


def answer(outcome: int, decision_id: str, revision: int = 1, measure: str = G) -> sanction_pb2.CheckResponse:
    response = sanction_pb2.CheckResponse(decision_id=decision_id, outcome=outcome, revision=revision, measure=measure)
    if outcome == common_pb2.OUTCOME_DENY:
        response.grounds.add(
            restriction_id="r1", measure=measure, role=common_pb2.ROLE_LEGAL_REPRESENTATIVE, via="Ac**o."
        )
        response.objection.review_days = 15
    return response


def test_verdict_refuses_with_masked_subject_and_keeps_every_decision():
    first, second = new_ric(), new_ric()
    checks = [a_check(first, 0), a_check(second, 1)]
    responses = [answer(common_pb2.OUTCOME_ALLOW, "d1", 7), answer(common_pb2.OUTCOME_DENY, "d2", 9)]
    verdict = build_verdict(checks, responses, Timestamp(seconds=DEADLINE))
    assert not verdict.allowed
    assert list(verdict.decision_ids) == ["d1", "d2"]
    assert verdict.revision == 9
    assert verdict.checked_at.seconds == DEADLINE
    [refusal] = verdict.refusals
    assert refusal.subject_index == 1
    assert refusal.subject == second[:3] + "*" * 14 + second[-1]
    assert (refusal.measure, refusal.decision_id, refusal.objection.review_days) == (G, "d2", 15)
    assert refusal.grounds[0].role == common_pb2.ROLE_LEGAL_REPRESENTATIVE
    assert first not in str(verdict) and second not in str(verdict)


def test_verdict_names_permits_that_let_a_subject_through_and_decisions_spooled():
    permitted, spooled = new_ric(), new_ric()
    exempted = answer(common_pb2.OUTCOME_ALLOW, "d1")
    exempted.exemption.exemption_id, exempted.exemption.authority = "E1", "Chaoyang Court"
    degraded = answer(common_pb2.OUTCOME_ALLOW, "S1")
    degraded.degradation = sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
    verdict = build_verdict([a_check(permitted, 0), a_check(spooled, 1)], [exempted, degraded], Timestamp())
    assert verdict.allowed and not verdict.refusals
    [permit] = verdict.permits
    assert (permit.subject_index, permit.decision_id, permit.exemption.exemption_id) == (0, "d1", "E1")
    assert permit.subject == permitted[:3] + "*" * 14 + permitted[-1]
    assert list(verdict.spooled_decision_ids) == ["S1"]
    assert permitted not in str(verdict)


def test_empty_verdict_is_allowed():
    verdict = build_verdict([], [], Timestamp(seconds=DEADLINE))
    assert verdict.allowed and not verdict.decision_ids and not verdict.refusals


def test_order_verdicts_judge_each_group_alone():
    checks = [a_check(new_ric(), 0, 0), a_check(new_ric(), 1, 1), a_check(new_ric(), 2, 2)]
    responses = [answer(common_pb2.OUTCOME_ALLOW, "a"), answer(common_pb2.OUTCOME_DENY, "b"), answer(1, "c")]
    verdicts = build_verdicts(3, checks, responses, Timestamp(seconds=DEADLINE))
    assert [v.allowed for v in verdicts] == [True, False, True]
    assert [list(v.decision_ids) for v in verdicts] == [["a"], ["b"], ["c"]]
    assert verdicts[1].refusals[0].subject_index == 1


def test_check_request_carries_subject_measure_and_time():
    company = new_uscc()
    check = SubjectCheck(subject_of(subject(company), "bidder"), "PROCUREMENT_BID", DEADLINE, 0, "bidder", "d")
    request = check_request(check)
    assert (request.subject.id_type, request.subject.id, request.measure) == (
        common_pb2.ID_TYPE_USCC,
        company,
        "PROCUREMENT_BID",
    )
    assert request.at.seconds == DEADLINE
    assert not check_request(a_check(new_ric())).HasField("at")


# --- item errors to the caller's fields ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item_field", "caller"),
    [("subject.id", "buyers[1].id"), ("subject.id_type", "buyers[1].id_type"), ("at", "contract_date")],
)
def test_item_fields_map_to_the_callers_fields(item_field, caller):
    assert caller_field(a_check(new_ric(), 1), item_field) == caller


def test_item_errors():
    check = a_check(new_ric(), 1)
    invalid = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    error = item_error(check, 3, invalid, "items[3].subject.id: the check character does not match")
    assert isinstance(error, InvalidField)
    assert error.message == "buyers[1].id: the check character does not match"
    assert isinstance(item_error(check, 3, grpc.StatusCode.UNAVAILABLE.value[0], "down"), SanctionUnavailable)


def test_responses_for_raises_the_item_error_and_refuses_an_outcome_less_answer():
    checks = [a_check(new_ric(), 0), a_check(new_ric(), 1)]
    bad = sanction_pb2.BatchResult()
    bad.error.code = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    bad.error.message = "items[1].at: must be between 2000-01-01 and 2100-01-01"
    ok = sanction_pb2.BatchResult(response=answer(common_pb2.OUTCOME_ALLOW, "d"))
    with pytest.raises(InvalidField) as raised:
        responses_for(checks, [ok, bad])
    assert field_of(raised) == "contract_date"
    blank = sanction_pb2.BatchResult(response=sanction_pb2.CheckResponse(decision_id="x"))
    with pytest.raises(Exception, match="without an outcome"):
        responses_for(checks, [ok, blank])
