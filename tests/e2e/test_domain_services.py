"""The domain services end to end: real sanction and domain service processes, data seeded through the registry,
and verdicts asked over gRPC as a ticketing, booking, real-estate or procurement platform would."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from debar.common.identifiers import mask_identifier
from debar.local.embedded_redis import free_port
from debar.v1 import (
    common_pb2,
    decision_pb2,
    hotel_pb2,
    hotel_pb2_grpc,
    procurement_pb2,
    procurement_pb2_grpc,
    railway_pb2,
    railway_pb2_grpc,
    realestate_pb2,
    realestate_pb2_grpc,
    registry_pb2,
    verdict_pb2,
)
from tests.support.requests import DAY, PERMIT_DOCUMENT, exemption_confirmed, impose_request, subject, ts
from tests.support.servers import ServiceProcess, health_status, start_service, wait_for
from tests.support.subjects import bad_checksum, new_ric, new_uscc

YEAR = 365 * DAY
TIMEOUT = 5
LEGAL_REPRESENTATIVE = common_pb2.ROLE_LEGAL_REPRESENTATIVE
INVALID, UNAVAILABLE = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAVAILABLE


def start_domain(name: str, service_env, sanction_address: str, logs_dir: Path, **kwargs) -> ServiceProcess:  # type: ignore[no-untyped-def]
    return start_service(name, {**service_env, "DEBAR_SANCTION_ADDRESS": sanction_address}, logs_dir, **kwargs)


@pytest.fixture(scope="module")
def domain(sanction, service_env, logs_dir) -> Iterator[dict[str, grpc.Channel]]:  # type: ignore[no-untyped-def]
    """Every domain service, each a process of its own, asking the shared sanction service."""
    services = [start_domain(n, service_env, sanction.address, logs_dir) for n in SERVICES]
    channels = {s.name: grpc.insecure_channel(s.address) for s in services}
    yield channels
    for channel in channels.values():
        channel.close()
    for service in services:
        assert service.stop() == 0, service.log()


SERVICES = ["railway", "hotel", "realestate", "procurement"]


@pytest.fixture(scope="module")
def railway(domain) -> railway_pb2_grpc.RailwayServiceStub:  # type: ignore[no-untyped-def]
    return railway_pb2_grpc.RailwayServiceStub(domain["railway"])


@pytest.fixture(scope="module")
def hotel(domain) -> hotel_pb2_grpc.HotelServiceStub:  # type: ignore[no-untyped-def]
    return hotel_pb2_grpc.HotelServiceStub(domain["hotel"])


@pytest.fixture(scope="module")
def realestate(domain) -> realestate_pb2_grpc.RealEstateServiceStub:  # type: ignore[no-untyped-def]
    return realestate_pb2_grpc.RealEstateServiceStub(domain["realestate"])


@pytest.fixture(scope="module")
def procurement(domain) -> procurement_pb2_grpc.ProcurementServiceStub:  # type: ignore[no-untyped-def]
    return procurement_pb2_grpc.ProcurementServiceStub(domain["procurement"])


def ticket(person: str, train: str, seat: int, at: float | None = None) -> railway_pb2.CheckTicketRequest:
    request = railway_pb2.CheckTicketRequest(passenger=subject(person), train_number=train, seat_class=seat)
    if at is not None:
        request.travel_date.CopyFrom(ts(at))
    return request


def booking(guest: str, venue: int, stars: int = 0) -> hotel_pb2.CheckBookingRequest:
    return hotel_pb2.CheckBookingRequest(guest=subject(guest), venue=venue, star_rating=stars)


def purchase(
    *buyers: str, kind: int = realestate_pb2.PROPERTY_DEAL_KIND_PURCHASE
) -> realestate_pb2.CheckPurchaseRequest:
    return realestate_pb2.CheckPurchaseRequest(buyers=[subject(b) for b in buyers], kind=kind)


def bid(bidder: str, deadline: float, principals: list[tuple[str, int]] = ()) -> procurement_pb2.CheckBidderRequest:  # type: ignore[assignment]
    return procurement_pb2.CheckBidderRequest(
        bidder=subject(bidder),
        principals=[procurement_pb2.BidderPrincipal(subject=subject(p), role=r) for p, r in principals],
        tender_id="CG-2026-0042",
        bid_deadline=ts(deadline),
    )


def refused_measures(verdict: verdict_pb2.Verdict) -> list[str]:
    return [r.measure for r in verdict.refusals]


def assert_no_clear_ids(verdict: verdict_pb2.Verdict, *numbers: str) -> None:
    text = str(verdict)
    for number in numbers:
        assert number not in text


def rpc_error(call, request) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=TIMEOUT)
    return raised.value


# --- railway -------------------------------------------------------------------------------------------------

S = railway_pb2


def test_consumption_order_refuses_g_trains_emu_first_class_and_soft_sleepers(railway, registry, decisions):
    person = new_ric()
    registry.Impose(impose_request(person))

    g_train = railway.CheckTicket(ticket(person, "G123", S.SEAT_CLASS_SECOND), timeout=TIMEOUT)
    assert not g_train.allowed
    assert refused_measures(g_train) == ["RAIL_G_TRAIN"]
    [refusal] = g_train.refusals
    assert refusal.subject == mask_identifier(person)
    assert refusal.subject_index == 0
    assert refusal.decision_id in g_train.decision_ids
    assert len(g_train.decision_ids) == 2  # the ticket ban was asked too, and allowed
    assert refusal.grounds[0].source == "court_consumption_order"
    assert refusal.objection.review_days == 15
    assert g_train.revision > 0 and g_train.checked_at.seconds > 0
    assert_no_clear_ids(g_train, person)

    d_second = railway.CheckTicket(ticket(person, "D301", S.SEAT_CLASS_SECOND), timeout=TIMEOUT)
    assert d_second.allowed and not d_second.refusals and len(d_second.decision_ids) == 1

    d_first = railway.CheckTicket(ticket(person, "D301", S.SEAT_CLASS_FIRST), timeout=TIMEOUT)
    assert refused_measures(d_first) == ["RAIL_EMU_FIRST_CLASS"]

    soft = railway.CheckTicket(ticket(person, "K1", S.SEAT_CLASS_SOFT_SLEEPER), timeout=TIMEOUT)
    assert refused_measures(soft) == ["RAIL_SOFT_SLEEPER"]

    # The sanction service logged who asked.
    logged = decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=refusal.decision_id))
    assert logged.caller == "railway"


def test_unrestricted_passenger_is_allowed(railway):
    verdict = railway.CheckTicket(ticket(new_ric(), "G1", S.SEAT_CLASS_BUSINESS), timeout=TIMEOUT)
    assert verdict.allowed and len(verdict.decision_ids) == 2


def test_passenger_credit_record_bans_every_ticket(railway, registry):
    person = new_ric()
    registry.Impose(impose_request(person, source="railway_passenger_credit", start=time.time() - 60 * DAY))
    verdict = railway.CheckTicket(ticket(person, "K1", S.SEAT_CLASS_HARD_SEAT), timeout=TIMEOUT)
    assert refused_measures(verdict) == ["RAIL_TICKET_BAN"]


def test_travel_date_is_when_the_restriction_is_judged(railway, registry):
    person = new_ric()
    registry.Impose(impose_request(person, end=time.time() + 10 * DAY))
    assert not railway.CheckTicket(ticket(person, "G7", S.SEAT_CLASS_SECOND), timeout=TIMEOUT).allowed
    later = railway.CheckTicket(ticket(person, "G7", S.SEAT_CLASS_SECOND, at=time.time() + 20 * DAY), timeout=TIMEOUT)
    assert later.allowed


def test_group_order_judges_each_passenger_alone(railway, registry):
    free, restricted, other = new_ric(), new_ric(), new_ric()
    registry.Impose(impose_request(restricted))
    order = S.CheckOrderRequest(tickets=[ticket(p, "G123", S.SEAT_CLASS_SECOND) for p in (free, restricted, other)])
    verdicts = railway.CheckOrder(order, timeout=TIMEOUT).verdicts
    assert [v.allowed for v in verdicts] == [True, False, True]
    [refusal] = verdicts[1].refusals
    assert (refusal.subject_index, refusal.subject) == (1, mask_identifier(restricted))
    assert all(len(v.decision_ids) == 2 for v in verdicts)
    assert len({d for v in verdicts for d in v.decision_ids}) == 6


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ticket(new_ric(), "X123", S.SEAT_CLASS_SECOND), "train_number"),
        (ticket(new_ric(), "", S.SEAT_CLASS_SECOND), "train_number"),
        (ticket(new_ric(), "G123", S.SEAT_CLASS_UNSPECIFIED), "seat_class"),
        (ticket(bad_checksum(new_ric()), "G123", S.SEAT_CLASS_SECOND), "passenger.id"),
        (ticket(new_ric(), "G123", S.SEAT_CLASS_SECOND, at=1), "travel_date"),
    ],
)
def test_bad_tickets_are_invalid_naming_the_field(railway, request_, field):
    error = rpc_error(railway.CheckTicket, request_)
    assert error.code() == INVALID
    assert error.details().startswith(f"{field}:")


def test_bad_ticket_in_an_order_names_the_ticket(railway):
    order = S.CheckOrderRequest(
        tickets=[ticket(new_ric(), "G1", S.SEAT_CLASS_SECOND), ticket(new_ric(), "Q9", S.SEAT_CLASS_SECOND)]
    )
    error = rpc_error(railway.CheckOrder, order)
    assert error.code() == INVALID
    assert error.details().startswith("tickets[1].train_number:")


# --- hotel ---------------------------------------------------------------------------------------------------

H = hotel_pb2


def test_legal_representative_of_restricted_company_is_refused_a_five_star_hotel(hotel, registry):
    company, representative = new_uscc(), new_ric()
    imposed = registry.Impose(
        impose_request(company, name="Acme Trading Co.", principals=[(representative, LEGAL_REPRESENTATIVE)])
    )
    verdict = hotel.CheckBooking(booking(representative, H.VENUE_KIND_HOTEL, 5), timeout=TIMEOUT)
    assert not verdict.allowed
    [refusal] = verdict.refusals
    assert refusal.subject == mask_identifier(representative)
    [ground] = refusal.grounds
    assert ground.role == LEGAL_REPRESENTATIVE
    assert ground.via == "Ac************o."
    assert ground.restriction_id == imposed.restriction.id
    # Only hotel measures in a hotel verdict, and no clear identifier of anyone.
    assert {r.measure for r in verdict.refusals} | {g.measure for r in verdict.refusals for g in r.grounds} == {
        "HOTEL_STAR_RATED"
    }
    assert_no_clear_ids(verdict, company, representative)


def test_a_court_permit_lets_the_guest_book_and_the_verdict_names_it(hotel, registry):
    guest = new_ric()
    registry.Impose(impose_request(guest))
    permit = exemption_confirmed(
        registry,
        registry_pb2.GrantExemptionRequest(
            subject=subject(guest), measure="HOTEL_STAR_RATED", effective_from=ts(time.time() - DAY),
            effective_until=ts(time.time() + DAY), authority="Chaoyang Court", reason="funeral",
            document_number=PERMIT_DOCUMENT,
        ),
    ).exemption  # fmt: skip
    verdict = hotel.CheckBooking(booking(guest, H.VENUE_KIND_HOTEL, 5), timeout=TIMEOUT)
    assert verdict.allowed and not verdict.refusals
    [shown] = verdict.permits
    assert (shown.measure, shown.exemption.exemption_id, shown.exemption.authority) == (
        "HOTEL_STAR_RATED",
        permit.id,
        "Chaoyang Court",
    )
    assert shown.decision_id == verdict.decision_ids[0] and shown.subject == mask_identifier(guest)
    assert_no_clear_ids(verdict, guest)


def test_unrated_guesthouse_is_allowed_without_asking(hotel, registry):
    person = new_ric()
    registry.Impose(impose_request(person))
    verdict = hotel.CheckBooking(booking(person, H.VENUE_KIND_HOTEL, 0), timeout=TIMEOUT)
    assert verdict.allowed and not verdict.decision_ids and not verdict.refusals


@pytest.mark.parametrize(
    ("venue", "stars", "measure"),
    [
        (H.VENUE_KIND_NIGHTCLUB, 0, "HOTEL_STAR_RATED"),
        (H.VENUE_KIND_GOLF_COURSE, 0, "HOTEL_STAR_RATED"),
        (H.VENUE_KIND_OFFICE_LEASE, 0, "OFFICE_LEASE_HIGH_GRADE"),
        (H.VENUE_KIND_HOLIDAY_PACKAGE, 0, "TRAVEL_HOLIDAY"),
        (H.VENUE_KIND_HOTEL, 1, "HOTEL_STAR_RATED"),
    ],
)
def test_restricted_guest_is_refused_each_venue_kind(hotel, registry, venue, stars, measure):
    person = new_ric()
    registry.Impose(impose_request(person))
    verdict = hotel.CheckBooking(booking(person, venue, stars), timeout=TIMEOUT)
    assert refused_measures(verdict) == [measure]
    assert hotel.CheckBooking(booking(new_ric(), venue, stars), timeout=TIMEOUT).allowed


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (booking(new_ric(), H.VENUE_KIND_HOTEL, 6), "star_rating"),
        (booking(new_ric(), H.VENUE_KIND_UNSPECIFIED, 3), "venue"),
        (booking("123", H.VENUE_KIND_HOTEL, 3), "guest.id"),
    ],
)
def test_bad_bookings_are_invalid(hotel, request_, field):
    error = rpc_error(hotel.CheckBooking, request_)
    assert error.code() == INVALID
    assert error.details().startswith(f"{field}:")


# --- real estate ---------------------------------------------------------------------------------------------

R = realestate_pb2


def test_co_buyer_restriction_refuses_the_purchase_and_says_which(realestate, registry):
    buyer, co_buyer = new_ric(), new_ric()
    registry.Impose(impose_request(co_buyer))
    verdict = realestate.CheckPurchase(purchase(buyer, co_buyer), timeout=TIMEOUT)
    assert not verdict.allowed
    [refusal] = verdict.refusals
    assert (refusal.subject_index, refusal.subject, refusal.measure) == (
        1,
        mask_identifier(co_buyer),
        "REAL_ESTATE_PURCHASE",
    )
    assert len(verdict.decision_ids) == 2
    assert_no_clear_ids(verdict, buyer, co_buyer)


def test_unrestricted_buyers_are_allowed_and_kinds_map_to_measures(realestate, registry):
    assert realestate.CheckPurchase(purchase(new_ric(), new_uscc()), timeout=TIMEOUT).allowed
    person = new_ric()
    registry.Impose(impose_request(person, measures=["OFFICE_LEASE_HIGH_GRADE"]))
    assert realestate.CheckPurchase(purchase(person), timeout=TIMEOUT).allowed
    lease = realestate.CheckPurchase(purchase(person, kind=R.PROPERTY_DEAL_KIND_OFFICE_LEASE), timeout=TIMEOUT)
    assert refused_measures(lease) == ["OFFICE_LEASE_HIGH_GRADE"]


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (purchase(), "buyers"),
        (purchase(*[new_ric() for _ in range(17)]), "buyers"),
        (purchase(new_ric(), kind=R.PROPERTY_DEAL_KIND_UNSPECIFIED), "kind"),
        (purchase(new_ric(), bad_checksum(new_ric())), "buyers[1].id"),
    ],
)
def test_bad_purchases_are_invalid(realestate, request_, field):
    error = rpc_error(realestate.CheckPurchase, request_)
    assert error.code() == INVALID
    assert error.details().startswith(f"{field}:")


# --- procurement ---------------------------------------------------------------------------------------------


@pytest.fixture
def deadline() -> float:
    return time.time() + 30 * DAY


def test_major_violation_refuses_for_three_years_from_the_penalty(procurement, registry, deadline):
    recent, old = new_uscc(), new_uscc()
    registry.Impose(impose_request(recent, source="procurement_major_violation", start=deadline - YEAR))
    registry.Impose(impose_request(old, source="procurement_major_violation", start=deadline - 4 * YEAR))
    refused = procurement.CheckBidder(bid(recent, deadline), timeout=TIMEOUT)
    assert refused_measures(refused) == ["PROCUREMENT_BID"]
    assert refused.refusals[0].subject == mask_identifier(recent)
    assert refused.refusals[0].grounds[0].source == "procurement_major_violation"
    assert_no_clear_ids(refused, recent)
    assert procurement.CheckBidder(bid(old, deadline), timeout=TIMEOUT).allowed


def test_the_three_years_end_on_the_third_anniversary_of_the_penalty(procurement, registry):
    """2026-03-11 plus three years crosses 2028-02-29: the bar holds through 2029-03-10 and ends on 2029-03-11."""
    company = new_uscc()
    penalty = datetime(2026, 3, 11, tzinfo=UTC).timestamp()
    registry.Impose(impose_request(company, source="procurement_major_violation", start=penalty))
    day_before = procurement.CheckBidder(
        bid(company, datetime(2029, 3, 10, 9, tzinfo=UTC).timestamp()), timeout=TIMEOUT
    )
    assert refused_measures(day_before) == ["PROCUREMENT_BID"]
    assert day_before.refusals[0].grounds[0].effective_until.seconds == datetime(2029, 3, 11, tzinfo=UTC).timestamp()
    anniversary = datetime(2029, 3, 11, 9, tzinfo=UTC).timestamp()
    assert procurement.CheckBidder(bid(company, anniversary), timeout=TIMEOUT).allowed


def test_debarment_refuses_only_while_in_force_at_the_deadline(procurement, registry, deadline):
    served, debarred = new_uscc(), new_uscc()
    registry.Impose(
        impose_request(served, source="procurement_debarment", start=deadline - 3 * YEAR, end=deadline - YEAR)
    )
    registry.Impose(
        impose_request(debarred, source="procurement_debarment", start=deadline - YEAR, end=deadline + YEAR)
    )
    assert procurement.CheckBidder(bid(served, deadline), timeout=TIMEOUT).allowed
    assert not procurement.CheckBidder(bid(debarred, deadline), timeout=TIMEOUT).allowed


def test_personally_restricted_principal_refuses_the_bid(procurement, registry, deadline):
    company, manager, listed = new_uscc(), new_ric(), new_ric()
    registry.Impose(impose_request(listed, source="dishonest_persons_list"))
    verdict = procurement.CheckBidder(
        bid(company, deadline, [(manager, common_pb2.ROLE_PRINCIPAL), (listed, LEGAL_REPRESENTATIVE)]),
        timeout=TIMEOUT,
    )
    assert not verdict.allowed
    [refusal] = verdict.refusals
    assert (refusal.subject_index, refusal.subject) == (2, mask_identifier(listed))  # 0 is the bidder
    assert len(verdict.decision_ids) == 3
    assert_no_clear_ids(verdict, company, manager, listed)


def test_principal_bound_only_through_a_consumption_order_does_not_refuse(procurement, registry, deadline):
    debtor_company, representative, bidder = new_uscc(), new_ric(), new_uscc()
    registry.Impose(impose_request(debtor_company, principals=[(representative, LEGAL_REPRESENTATIVE)]))
    verdict = procurement.CheckBidder(bid(bidder, deadline, [(representative, LEGAL_REPRESENTATIVE)]), timeout=TIMEOUT)
    assert verdict.allowed


def test_bidder_on_the_dishonest_list_is_refused(procurement, registry, deadline):
    company = new_uscc()
    registry.Impose(impose_request(company, source="dishonest_persons_list"))
    assert not procurement.CheckBidder(bid(company, deadline), timeout=TIMEOUT).allowed


def test_bad_bids_are_invalid(procurement, deadline):
    cases = [
        (bid(new_ric(), deadline), "bidder.id_type"),
        (bid(bad_checksum(new_uscc()), deadline), "bidder.id"),
        (procurement_pb2.CheckBidderRequest(bidder=subject(new_uscc()), tender_id="T1"), "bid_deadline"),
        (procurement_pb2.CheckBidderRequest(bidder=subject(new_uscc()), bid_deadline=ts(deadline)), "tender_id"),
        (bid(new_uscc(), deadline, [(new_ric(), common_pb2.ROLE_UNSPECIFIED)]), "principals[0].role"),
    ]
    for request, field in cases:
        error = rpc_error(procurement.CheckBidder, request)
        assert error.code() == INVALID, field
        assert error.details().startswith(f"{field}:")


# --- the sanction service unreachable ------------------------------------------------------------------------


def _down_call(name: str, channel: grpc.Channel):  # type: ignore[no-untyped-def]
    person, company = new_ric(), new_uscc()
    if name == "railway":
        return railway_pb2_grpc.RailwayServiceStub(channel).CheckTicket, ticket(person, "K1", S.SEAT_CLASS_HARD_SEAT)
    if name == "hotel":
        return hotel_pb2_grpc.HotelServiceStub(channel).CheckBooking, booking(person, H.VENUE_KIND_HOTEL, 4)
    if name == "realestate":
        return realestate_pb2_grpc.RealEstateServiceStub(channel).CheckPurchase, purchase(person)
    return procurement_pb2_grpc.ProcurementServiceStub(channel).CheckBidder, bid(company, time.time() + DAY)


@pytest.mark.parametrize("name", SERVICES)
def test_sanction_down_means_unavailable_and_not_serving(name, service_env, logs_dir):
    nowhere = f"127.0.0.1:{free_port()}"
    service = start_domain(name, service_env, nowhere, logs_dir, wait_serving=False)
    try:
        assert wait_for(lambda: health_status(service.address) == "NOT_SERVING", timeout_s=15), service.log()
        time.sleep(1.5)  # a readiness round or two later, still not serving
        assert health_status(service.address) == "NOT_SERVING"
        with grpc.insecure_channel(service.address) as channel:
            call, request = _down_call(name, channel)
            started = time.monotonic()
            error = rpc_error(call, request)
            assert error.code() == UNAVAILABLE, error.details()
            assert time.monotonic() - started < 3  # the deadline bounds the wait
    finally:
        assert service.stop() == 0, service.log()


def test_health_follows_the_sanction_service_down_and_back(service_env, logs_dir):
    upstream = start_service("sanction", service_env, logs_dir)
    railway = start_domain("railway", service_env, upstream.address, logs_dir)
    restarted = None
    try:
        assert health_status(railway.address, "debar.v1.RailwayService") == "SERVING"
        with grpc.insecure_channel(railway.address) as channel:
            stub = railway_pb2_grpc.RailwayServiceStub(channel)
            assert stub.CheckTicket(ticket(new_ric(), "G1", S.SEAT_CLASS_SECOND), timeout=TIMEOUT).allowed

            assert upstream.stop() == 0
            assert wait_for(lambda: health_status(railway.address, "debar.v1.RailwayService") == "NOT_SERVING", 10)
            assert rpc_error(stub.CheckTicket, ticket(new_ric(), "G1", S.SEAT_CLASS_SECOND)).code() == UNAVAILABLE

            log = (logs_dir / f"sanction-restarted-{upstream.port}.log").open("wb")
            restarted = subprocess.Popen(
                [sys.executable, "-m", "debar.cli.main", "serve", "sanction", "--port", str(upstream.port)],
                env={**os.environ, **service_env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            assert wait_for(lambda: health_status(railway.address, "debar.v1.RailwayService") == "SERVING", 15)
            assert stub.CheckTicket(ticket(new_ric(), "G1", S.SEAT_CLASS_SECOND), timeout=TIMEOUT).allowed
    finally:
        if restarted is not None:
            restarted.terminate()
            restarted.wait(timeout=15)
        upstream.stop()
        assert railway.stop() == 0, railway.log()
