"""The railway service: may this passenger buy this ticket? Its rules say which measures a ticket touches (pure:
the request in, the checks to ask out); its servicer answers CheckTicket and CheckOrder with them.

The catalogue decides who is restricted from what; this module only says which acts a ticket is."""

from __future__ import annotations

import re

import grpc

from debar.common.errors import InvalidField
from debar.domain_services.checks import SubjectCheck, subject_of, time_of
from debar.domain_services.judge import Judge
from debar.v1 import railway_pb2, railway_pb2_grpc, verdict_pb2

RAIL_G_TRAIN = "RAIL_G_TRAIN"
RAIL_EMU_FIRST_CLASS = "RAIL_EMU_FIRST_CLASS"
RAIL_SOFT_SLEEPER = "RAIL_SOFT_SLEEPER"
RAIL_TICKET_BAN = "RAIL_TICKET_BAN"

MAX_ORDER_TICKETS = 50

# Letter prefixes in service; a number of digits alone is an ordinary train.
TRAIN_KINDS = frozenset("GDCZTKYSL")
EMU_KINDS = frozenset("DC")  # multiple-unit trains other than G, where first class and above is restricted
_TRAIN_NUMBER = re.compile(r"^([A-Z]?)(\d{1,4})\Z", re.ASCII)  # ASCII: \d alone takes any script's digits

FIRST_CLASS_OR_ABOVE = frozenset(
    {railway_pb2.SEAT_CLASS_FIRST, railway_pb2.SEAT_CLASS_BUSINESS, railway_pb2.SEAT_CLASS_PREMIUM}
)
SOFT_SLEEPER_OR_BETTER = frozenset({railway_pb2.SEAT_CLASS_SOFT_SLEEPER, railway_pb2.SEAT_CLASS_DELUXE_SOFT_SLEEPER})
_KNOWN_SEATS = frozenset(railway_pb2.SeatClass.values()) - {railway_pb2.SEAT_CLASS_UNSPECIFIED}


def train_kind(train_number: str, field: str = "train_number") -> str:
    """The train's letter prefix ('' for an ordinary all-digit number), or InvalidField."""
    number = train_number.strip().upper()
    if not number:
        raise InvalidField(field, "is required, e.g. G123, D301 or K1")
    found = _TRAIN_NUMBER.match(number)
    if found is None:
        raise InvalidField(field, f"{train_number[:16]!r} is not a train number (a letter prefix and 1 to 4 digits)")
    kind = found.group(1)
    if kind and kind not in TRAIN_KINDS:
        raise InvalidField(field, f"unknown train prefix {kind!r}; one of {', '.join(sorted(TRAIN_KINDS))} or none")
    return kind


def ticket_measures(train_number: str, seat_class: int, field: str = "") -> list[str]:
    """Every measure buying this seat on this train falls under. Errors name `{field}train_number` etc."""
    kind = train_kind(train_number, f"{field}train_number")
    if seat_class not in _KNOWN_SEATS:
        raise InvalidField(f"{field}seat_class", "must be a seat class (not SEAT_CLASS_UNSPECIFIED)")
    measures = []
    if kind == "G":
        measures.append(RAIL_G_TRAIN)
    elif kind in EMU_KINDS and seat_class in FIRST_CLASS_OR_ABOVE:
        measures.append(RAIL_EMU_FIRST_CLASS)
    if seat_class in SOFT_SLEEPER_OR_BETTER:
        measures.append(RAIL_SOFT_SLEEPER)
    measures.append(RAIL_TICKET_BAN)
    return measures


def ticket_checks(ticket: railway_pb2.CheckTicketRequest, index: int = 0, field: str = "") -> list[SubjectCheck]:
    """The checks for one ticket; `field` is its path in the request ('' or 'tickets[2].')."""
    passenger = subject_of(ticket.passenger, f"{field}passenger")
    measures = ticket_measures(ticket.train_number, ticket.seat_class, field)
    at = time_of(ticket.travel_date, ticket.HasField("travel_date"), f"{field}travel_date")
    return [
        SubjectCheck(
            subject=passenger,
            measure=measure,
            at=at,
            subject_index=index,
            subject_field=f"{field}passenger",
            at_field=f"{field}travel_date",
            group=index,
        )
        for measure in measures
    ]


def order_checks(order: railway_pb2.CheckOrderRequest) -> list[SubjectCheck]:
    """The checks for every ticket of a group order, each ticket its own group (its own verdict)."""
    if not order.tickets:
        raise InvalidField("tickets", "at least one ticket is needed")
    if len(order.tickets) > MAX_ORDER_TICKETS:
        raise InvalidField("tickets", f"at most {MAX_ORDER_TICKETS} per order, got {len(order.tickets)}")
    checks = []
    for i, ticket in enumerate(order.tickets):
        checks.extend(ticket_checks(ticket, i, f"tickets[{i}]."))
    return checks


class RailwayServicer(railway_pb2_grpc.RailwayServiceServicer):
    def __init__(self, judge: Judge) -> None:
        self._judge = judge

    async def CheckTicket(
        self, request: railway_pb2.CheckTicketRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        return await self._judge.verdict(context, lambda: ticket_checks(request))

    async def CheckOrder(
        self, request: railway_pb2.CheckOrderRequest, context: grpc.aio.ServicerContext
    ) -> railway_pb2.CheckOrderResponse:
        verdicts = await self._judge.verdicts(context, len(request.tickets), lambda: order_checks(request))
        return railway_pb2.CheckOrderResponse(verdicts=verdicts)
