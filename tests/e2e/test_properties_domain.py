"""Properties of the domain services over real gRPC (each a process of its own, asking a sanction service of this
module's own): whatever a platform sends (identifiers valid or not, any Unicode, huge strings and lists,
timestamps and enum values out of range), the answer is a verdict or INVALID_ARGUMENT naming the caller's own
field, never UNKNOWN or INTERNAL; the services stay SERVING, and a check never writes restriction data."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debar.v1 import (
    hotel_pb2,
    hotel_pb2_grpc,
    procurement_pb2,
    procurement_pb2_grpc,
    railway_pb2,
    railway_pb2_grpc,
    realestate_pb2,
    realestate_pb2_grpc,
    verdict_pb2,
)
from tests.support import strategies as gen
from tests.support.servers import ServiceProcess, health_status, start_service
from tests.support.strategies import set_time

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
TIMEOUT = 10
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
SERVICES = ["railway", "hotel", "realestate", "procurement"]
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
_FIELD = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): ")


@pytest.fixture(scope="module")
def processes(service_env: dict[str, str], logs_dir: Path) -> Iterator[dict[str, ServiceProcess]]:
    sanction = start_service("sanction", service_env, logs_dir)
    env = {**service_env, "DEBAR_SANCTION_ADDRESS": sanction.address}
    started = {"sanction": sanction}
    try:
        for name in SERVICES:
            started[name] = start_service(name, env, logs_dir)
        yield started
    finally:
        for service in reversed(started.values()):
            assert service.stop() == 0, service.log()
    for service in started.values():
        assert "Traceback" not in service.log(), service.log()


@pytest.fixture(scope="module")
def stubs(processes: dict[str, ServiceProcess]) -> Iterator[dict[str, Any]]:
    channels = {name: grpc.insecure_channel(processes[name].address) for name in SERVICES}
    yield {
        "railway": railway_pb2_grpc.RailwayServiceStub(channels["railway"]),
        "hotel": hotel_pb2_grpc.HotelServiceStub(channels["hotel"]),
        "realestate": realestate_pb2_grpc.RealEstateServiceStub(channels["realestate"]),
        "procurement": procurement_pb2_grpc.ProcurementServiceStub(channels["procurement"]),
    }
    for channel in channels.values():
        channel.close()


@pytest.fixture(scope="module")
def data_store(service_env: dict[str, str]) -> Iterator[Any]:
    url = service_env["DEBAR_REDIS_URL"]
    client = (
        redis.RedisCluster.from_url(url) if service_env["DEBAR_REDIS_CLUSTER"] == "true" else redis.Redis.from_url(url)
    )
    yield client
    client.close()


@pytest.fixture(autouse=True)
def stay_serving(processes: dict[str, ServiceProcess]) -> Iterator[None]:
    yield
    for service in processes.values():
        assert service.process.poll() is None, service.log()
        assert health_status(service.address) == "SERVING", service.log()


def revision(data_store: Any) -> int:
    return int(data_store.get("debar:rev") or 0)


def judge(method: Callable[..., Any], request: Any, fields: re.Pattern[str], data_store: Any) -> Any:
    """A verdict, or INVALID_ARGUMENT naming one of `fields` (RESOURCE_EXHAUSTED past the message size); nothing
    written either way."""
    before = revision(data_store)
    try:
        answer = method(request, timeout=TIMEOUT)
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
        if request.ByteSize() > MAX_MESSAGE_BYTES:
            assert code is EXHAUSTED, f"{code.name}: {details[:300]}"
        else:
            assert code is INVALID, f"{code.name}: {details[:300]}"
            found = _FIELD.match(details)
            assert found and fields.fullmatch(found[1]), f"not the caller's field: {details[:300]}"
            assert "items[" not in details, details  # the sanction service's fields never leak
        answer = None
    else:
        assert request.ByteSize() <= MAX_MESSAGE_BYTES
    assert revision(data_store) == before
    return answer


def verdict_ok(verdict: verdict_pb2.Verdict) -> None:
    assert verdict.allowed == (not verdict.refusals)
    for refusal in verdict.refusals:
        assert refusal.decision_id in verdict.decision_ids


@st.composite
def tickets(draw: st.DrawFn) -> railway_pb2.CheckTicketRequest:
    ticket = railway_pb2.CheckTicketRequest(
        passenger=draw(gen.subjects()),
        train_number=draw(
            st.one_of(
                st.sampled_from(["G123", "d301", " K1 ", "1234", "X12", "G12345", "G١٢٣", "Ｇ１２３", "G1\n"]),
                st.from_regex(r"[A-Z]?[0-9]{1,4}", fullmatch=True),
                gen.texts,
            )
        ),
        seat_class=draw(st.one_of(st.integers(0, 11), st.integers(-(2**31), gen.INT32_MAX))),
    )
    set_time(ticket, "travel_date", draw(gen.timestamps()))
    return ticket


TICKET_FIELDS = r"passenger\.(id_type|id)|train_number|seat_class|travel_date"


@given(ticket=tickets())
@PROPERTY
def test_check_ticket(stubs, data_store, ticket) -> None:  # type: ignore[no-untyped-def]
    verdict = judge(stubs["railway"].CheckTicket, ticket, re.compile(TICKET_FIELDS), data_store)
    if verdict is not None:
        verdict_ok(verdict)


@given(data=st.data())
@PROPERTY
def test_check_order(stubs, data_store, data) -> None:  # type: ignore[no-untyped-def]
    order = data.draw(
        st.one_of(
            st.lists(tickets(), max_size=4),
            st.tuples(tickets(), st.sampled_from([49, 50, 51, 300])).map(lambda t: [t[0]] * t[1]),
        )
    )
    request = railway_pb2.CheckOrderRequest(tickets=order)
    fields = re.compile(rf"tickets|tickets\[\d+\]\.({TICKET_FIELDS})")
    answer = judge(stubs["railway"].CheckOrder, request, fields, data_store)
    if answer is not None:
        assert 1 <= len(request.tickets) <= 50
        assert len(answer.verdicts) == len(request.tickets)
        for verdict in answer.verdicts:
            verdict_ok(verdict)


@given(data=st.data())
@PROPERTY
def test_check_booking(stubs, data_store, data) -> None:  # type: ignore[no-untyped-def]
    request = hotel_pb2.CheckBookingRequest(
        guest=data.draw(gen.subjects()),
        star_rating=data.draw(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1))),
        venue=data.draw(st.one_of(st.integers(0, 6), st.integers(-(2**31), gen.INT32_MAX))),
    )
    set_time(request, "stay_date", data.draw(gen.timestamps()))
    verdict = judge(
        stubs["hotel"].CheckBooking, request, re.compile(r"guest\.(id_type|id)|star_rating|venue|stay_date"), data_store
    )
    if verdict is not None:
        verdict_ok(verdict)


@given(data=st.data())
@PROPERTY
def test_check_purchase(stubs, data_store, data) -> None:  # type: ignore[no-untyped-def]
    buyers = data.draw(
        st.one_of(
            st.lists(gen.subjects(), max_size=4),
            st.tuples(gen.valid_rics().map(gen.ric_subject), st.sampled_from([16, 17, 1000])).map(
                lambda t: [t[0]] * t[1]
            ),
        )
    )
    request = realestate_pb2.CheckPurchaseRequest(
        buyers=buyers, kind=data.draw(st.one_of(st.integers(0, 5), st.integers(-(2**31), gen.INT32_MAX)))
    )
    set_time(request, "contract_date", data.draw(gen.timestamps()))
    fields = re.compile(r"buyers|buyers\[\d+\]\.(id_type|id)|kind|contract_date")
    verdict = judge(stubs["realestate"].CheckPurchase, request, fields, data_store)
    if verdict is not None:
        verdict_ok(verdict)
        assert all(r.subject_index < len(request.buyers) for r in verdict.refusals)


@given(data=st.data())
@PROPERTY
def test_check_bidder(stubs, data_store, data) -> None:  # type: ignore[no-untyped-def]
    principal = st.builds(procurement_pb2.BidderPrincipal, subject=gen.subjects(), role=gen.roles)
    principals = data.draw(
        st.one_of(
            st.lists(principal, max_size=3),
            st.tuples(principal, st.sampled_from([32, 33, 500])).map(lambda t: [t[0]] * t[1]),
        )
    )
    request = procurement_pb2.CheckBidderRequest(
        bidder=data.draw(st.one_of(gen.valid_usccs().map(gen.uscc_subject), gen.subjects())),
        principals=principals,
        tender_id=data.draw(st.one_of(st.just("CG-2026-0042"), gen.texts)),
    )
    set_time(request, "bid_deadline", data.draw(gen.timestamps()))
    fields = re.compile(
        r"bidder\.(id_type|id)|tender_id|bid_deadline|principals|principals\[\d+\]\.(role|subject\.id_type|subject\.id)"
    )
    verdict = judge(stubs["procurement"].CheckBidder, request, fields, data_store)
    if verdict is not None:
        verdict_ok(verdict)
        assert all(r.subject_index <= len(request.principals) for r in verdict.refusals)


@pytest.mark.parametrize(
    ("service", "method"),
    [
        ("railway", "/debar.v1.RailwayService/CheckTicket"),
        ("hotel", "/debar.v1.HotelService/CheckBooking"),
        ("realestate", "/debar.v1.RealEstateService/CheckPurchase"),
        ("procurement", "/debar.v1.ProcurementService/CheckBidder"),
    ],
)
def test_a_message_that_is_not_valid_protobuf_is_invalid_argument(processes, service, method) -> None:  # type: ignore[no-untyped-def]
    with grpc.insecure_channel(processes[service].address) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(method)(b"\x0a\x04\x12\x02\xff\xfe", timeout=TIMEOUT)  # a subject id of bad UTF-8
        assert caught.value.code() is INVALID, caught.value.details()


@pytest.mark.parametrize(
    ("train_number", "nanos", "field"),
    [
        ("G١٢٣", 0, "train_number"),
        ("Ｇ１２３", 0, "train_number"),
        ("G123", -1, "travel_date"),
        ("G1", 10**9, "travel_date"),
    ],
)
def test_other_scripts_digits_and_nanos_out_of_range_are_refused(stubs, train_number, nanos, field) -> None:  # type: ignore[no-untyped-def]
    ticket = railway_pb2.CheckTicketRequest(
        passenger=gen.ric_subject("11010519491231002X"), train_number=train_number, seat_class=1
    )
    ticket.travel_date.seconds, ticket.travel_date.nanos = 1900000000, nanos
    with pytest.raises(grpc.RpcError) as caught:
        stubs["railway"].CheckTicket(ticket, timeout=TIMEOUT)
    assert caught.value.code() is INVALID and caught.value.details().startswith(f"{field}:"), caught.value.details()
