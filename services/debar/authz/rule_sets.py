"""Named rule sets a route can ask for (`debar.check: hotel-booking`) instead of listing measures: what the domain
services' rules ask for one kind of sale, taken from those rules themselves, so a route and the domain service
never disagree about which measures a G-train ticket or a star-rated hotel touches.

A route is one kind of sale: where a domain service reads the kind from the request (seat class, star rating),
the route names it (a front end with one URL per kind of ticket gives each its own rule set).

    rail-ticket           any train ticket (an ordinary train, a hard seat): RAIL_TICKET_BAN
    rail-g-train          a G-train ticket: RAIL_G_TRAIN, RAIL_TICKET_BAN
    rail-emu-first-class  first class or above on a D or C train: RAIL_EMU_FIRST_CLASS, RAIL_TICKET_BAN
    rail-soft-sleeper     a soft sleeper berth: RAIL_SOFT_SLEEPER, RAIL_TICKET_BAN
    hotel-booking         a star-rated hotel, nightclub or golf course: HOTEL_STAR_RATED
    holiday-package       a holiday package: TRAVEL_HOLIDAY
    office-lease          a high-grade office lease: OFFICE_LEASE_HIGH_GRADE
    property-purchase     buying, building or extending, luxury renovation: REAL_ESTATE_PURCHASE
    tender-bid            a company bidding for a tender (USCC only): PROCUREMENT_BID
"""

from __future__ import annotations

from dataclasses import dataclass

from debar.common.identifiers import IdKind
from debar.domain_services import procurement
from debar.domain_services.hotel import booking_measures
from debar.domain_services.railway import ticket_measures
from debar.domain_services.realestate import deal_measure
from debar.v1 import hotel_pb2, railway_pb2, realestate_pb2


@dataclass(frozen=True, slots=True)
class RuleSet:
    measures: tuple[str, ...]
    subject_kind: IdKind | None = None  # None: the route says (debar.subject.type)


RULE_SETS: dict[str, RuleSet] = {
    "rail-ticket": RuleSet(tuple(ticket_measures("K1", railway_pb2.SEAT_CLASS_HARD_SEAT))),
    "rail-g-train": RuleSet(tuple(ticket_measures("G1", railway_pb2.SEAT_CLASS_SECOND))),
    "rail-emu-first-class": RuleSet(tuple(ticket_measures("D1", railway_pb2.SEAT_CLASS_FIRST))),
    "rail-soft-sleeper": RuleSet(tuple(ticket_measures("K1", railway_pb2.SEAT_CLASS_SOFT_SLEEPER))),
    "hotel-booking": RuleSet(tuple(booking_measures(hotel_pb2.VENUE_KIND_HOTEL, 1))),
    "holiday-package": RuleSet(tuple(booking_measures(hotel_pb2.VENUE_KIND_HOLIDAY_PACKAGE, 0))),
    "office-lease": RuleSet(tuple(booking_measures(hotel_pb2.VENUE_KIND_OFFICE_LEASE, 0))),
    "property-purchase": RuleSet((deal_measure(realestate_pb2.PROPERTY_DEAL_KIND_PURCHASE),)),
    "tender-bid": RuleSet((procurement.PROCUREMENT_BID,), IdKind.USCC),
}
