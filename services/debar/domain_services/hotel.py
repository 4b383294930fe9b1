"""The hotel service: may this guest book this venue? Its rules say which measures a booking touches (pure: the
request in, the checks to ask out); its servicer answers CheckBooking with them."""

from __future__ import annotations

import grpc

from debar.common.errors import InvalidField
from debar.domain_services.checks import SubjectCheck, subject_of, time_of
from debar.domain_services.judge import Judge
from debar.v1 import hotel_pb2, hotel_pb2_grpc, verdict_pb2

HOTEL_STAR_RATED = "HOTEL_STAR_RATED"
OFFICE_LEASE_HIGH_GRADE = "OFFICE_LEASE_HIGH_GRADE"
TRAVEL_HOLIDAY = "TRAVEL_HOLIDAY"

MAX_STARS = 5

# The measure each venue kind falls under; a hotel only when it is star-rated (see booking_measures).
VENUE_MEASURES: dict[int, str] = {
    hotel_pb2.VENUE_KIND_HOTEL: HOTEL_STAR_RATED,
    hotel_pb2.VENUE_KIND_NIGHTCLUB: HOTEL_STAR_RATED,
    hotel_pb2.VENUE_KIND_GOLF_COURSE: HOTEL_STAR_RATED,
    hotel_pb2.VENUE_KIND_OFFICE_LEASE: OFFICE_LEASE_HIGH_GRADE,
    hotel_pb2.VENUE_KIND_HOLIDAY_PACKAGE: TRAVEL_HOLIDAY,
}


def booking_measures(venue: int, star_rating: int) -> list[str]:
    """The measures a booking falls under; none for an unrated hotel (e.g. a guesthouse)."""
    measure = VENUE_MEASURES.get(venue)
    if measure is None:
        raise InvalidField("venue", "must be a venue kind (not VENUE_KIND_UNSPECIFIED)")
    if star_rating > MAX_STARS:
        raise InvalidField("star_rating", f"must be 0 (unrated) to {MAX_STARS}, got {star_rating}")
    if venue == hotel_pb2.VENUE_KIND_HOTEL and star_rating == 0:
        return []
    return [measure]


def booking_checks(request: hotel_pb2.CheckBookingRequest) -> list[SubjectCheck]:
    guest = subject_of(request.guest, "guest")
    measures = booking_measures(request.venue, request.star_rating)
    at = time_of(request.stay_date, request.HasField("stay_date"), "stay_date")
    return [
        SubjectCheck(subject=guest, measure=m, at=at, subject_index=0, subject_field="guest", at_field="stay_date")
        for m in measures
    ]


class HotelServicer(hotel_pb2_grpc.HotelServiceServicer):
    def __init__(self, judge: Judge) -> None:
        self._judge = judge

    async def CheckBooking(
        self, request: hotel_pb2.CheckBookingRequest, context: grpc.aio.ServicerContext
    ) -> verdict_pb2.Verdict:
        # An unrated hotel needs no check: the rules return none and the verdict is an allow.
        return await self._judge.verdict(context, lambda: booking_checks(request))
