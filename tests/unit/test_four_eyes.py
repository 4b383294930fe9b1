"""The registry's four-eyes rules, pure: which lifts and permits need a second identity, and what asking and
confirming do to the record (the use cases on the in-memory ports: test_registry_writes.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources

import pytest

from debar.common.errors import Conflict, PermissionDenied
from debar.common.identifiers import IdKind
from debar.sanction.domain import four_eyes
from debar.sanction.domain.catalogue import Catalogue, load_default_catalogue
from debar.sanction.domain.model import EntryKind, Exemption, IndexEntry, Restriction, Role, SubjectRef

CATALOGUE = load_default_catalogue()
SUBJECT = SubjectRef(IdKind.RIC, "t1.abc", "a3f")
NOW = 1_800_000_000


def record(source: str = "court_consumption_order") -> Restriction:
    return Restriction(
        id="R1", source=source, source_id="1", list_version="", subject=SUBJECT, masked_name="Z*", measures=(),
        legal_basis="b", authority="a", case_number="c", document_number="", decided_on="", effective_from=0,
        effective_until=None,
    )  # fmt: skip


def permit(end: int = NOW + 86400) -> Exemption:
    return Exemption("X1", SUBJECT, "HOTEL_STAR_RATED", NOW, end, "court", "funeral", "D-1")


def as_read(x: Exemption, **read: object) -> four_eyes.PermitAsRead:
    """What a confirming identity read on the court's permit: what `x` says, but for `read`."""
    said = {"document_number": x.document_number, "measure": x.measure, "effective_from": x.effective_from,
            "effective_until": x.effective_until}  # fmt: skip
    return four_eyes.PermitAsRead(**{**said, **read})  # type: ignore[arg-type]


def entry(source: str, measure: str) -> IndexEntry:
    mask = CATALOGUE.measure(measure).mask
    return IndexEntry(EntryKind.RESTRICTION, "R1", Role.DEBTOR, mask, 0, None, source)


def test_the_court_lists_need_confirmation_others_do_not_and_an_unknown_source_does():
    assert four_eyes.lift_needs_confirmation(CATALOGUE, "court_consumption_order")
    assert four_eyes.lift_needs_confirmation(CATALOGUE, "dishonest_persons_list")
    assert not four_eyes.lift_needs_confirmation(CATALOGUE, "railway_passenger_credit")
    assert four_eyes.lift_needs_confirmation(CATALOGUE, "a_source_since_removed")


def test_a_permit_needs_confirmation_when_it_can_override_a_confirming_source():
    ban, hotel = CATALOGUE.measure("RAIL_TICKET_BAN"), CATALOGUE.measure("HOTEL_STAR_RATED")
    assert four_eyes.exemption_needs_confirmation(CATALOGUE, hotel, [])  # a court list's default measure
    assert not four_eyes.exemption_needs_confirmation(CATALOGUE, ban, [entry("railway_passenger_credit", ban.code)])
    assert four_eyes.exemption_needs_confirmation(CATALOGUE, ban, [entry("court_consumption_order", ban.code)])
    assert not four_eyes.exemption_needs_confirmation(CATALOGUE, ban, [entry("court_consumption_order", hotel.code)])


def test_a_catalogue_where_no_source_asks_for_it_needs_no_confirmation():
    data = json.loads(resources.files("debar").joinpath("data/catalogue.json").read_text())
    for source in data["sources"]:
        source.pop("lift_needs_confirmation", None)
    relaxed = Catalogue.from_dict(data)
    hotel = relaxed.measure("HOTEL_STAR_RATED")
    assert not four_eyes.exemption_needs_confirmation(relaxed, hotel, [entry("court_consumption_order", hotel.code)])
    assert not four_eyes.lift_needs_confirmation(relaxed, "court_consumption_order")


def test_asking_then_confirming_a_lift():
    asked = four_eyes.ask_lift(record(), by="clerk-wang", reason="paid", document_number="D-2", now=NOW,
                               needs_confirmation=True)  # fmt: skip
    assert asked.lifted_at is None and asked.pending_lift is not None
    assert asked.pending_lift.asked_by == "clerk-wang" and asked.updated_at == NOW
    # Restated by the asker with another document: replaced; by someone else: refused.
    restated = four_eyes.ask_lift(asked, by="Clerk-Wang", reason="paid", document_number="D-3", now=NOW + 1,
                                  needs_confirmation=True)  # fmt: skip
    assert restated.pending_lift is not None and restated.pending_lift.document_number == "D-3"
    with pytest.raises(Conflict, match="ConfirmLift"):
        four_eyes.ask_lift(asked, by="clerk-zhao", reason="paid", document_number="D-2", now=NOW,
                           needs_confirmation=True)  # fmt: skip
    with pytest.raises(PermissionDenied):
        four_eyes.confirm_lift(asked, by="clerk-wang", document_number="D-2", now=NOW)
    lifted = four_eyes.confirm_lift(asked, by="clerk-zhao", document_number="D-2", now=NOW + 5)
    assert (lifted.lifted_at, lifted.lift_reason, lifted.lift_document_number) == (NOW + 5, "paid", "D-2")
    assert (lifted.lifted_by, lifted.lift_confirmed_by, lifted.pending_lift) == ("clerk-wang", "clerk-zhao", None)


def test_granting_then_confirming_a_permit():
    granted = four_eyes.grant(permit(), None, by="clerk-wang", now=NOW, needs_confirmation=True)
    assert granted.pending and granted.granted_by == "clerk-wang"
    assert four_eyes.grant(permit(), granted, by="clerk-wang", now=NOW + 1, needs_confirmation=True) is granted
    with pytest.raises(PermissionDenied):
        four_eyes.confirm_exemption(granted, by="CLERK-WANG", read=as_read(granted), awaits=True)
    confirmed = four_eyes.confirm_exemption(granted, by="clerk-zhao", read=as_read(granted), awaits=True)
    assert not confirmed.pending and confirmed.confirmed_by == "clerk-zhao"
    assert four_eyes.confirm_exemption(confirmed, by="clerk-zhao", read=as_read(confirmed), awaits=False) is confirmed
    with pytest.raises(Conflict, match="awaits no confirmation"):
        four_eyes.confirm_exemption(confirmed, by="clerk-li", read=as_read(confirmed), awaits=False)
    # The same permit again leaves it in force; a changed one is out of force until confirmed.
    assert four_eyes.grant(permit(), confirmed, by="clerk-li", now=NOW + 2, needs_confirmation=True) is confirmed
    changed = four_eyes.grant(permit(NOW + 9 * 86400), confirmed, by="clerk-li", now=NOW + 2, needs_confirmation=True)
    assert changed.pending and changed.granted_by == "clerk-li" and changed.confirmed_by == ""
    at_once = four_eyes.grant(permit(), None, by="clerk-wang", now=NOW, needs_confirmation=False)
    assert not at_once.pending and replace(at_once, granted_by="", created_at=0) == replace(permit(), created_at=0)


def test_a_permit_granted_alone_awaits_confirmation_once_a_court_order_covering_it_reaches_the_subject():
    """Judged against the restrictions the permit meets, whenever they arrive: a railway record does not make it
    wait, a court order naming its measure for part of its window does, one that ended before it does not."""
    catalogue = load_default_catalogue()
    ticket = catalogue.measure("RAIL_TICKET_BAN")
    ticket_permit = replace(permit(), measure="RAIL_TICKET_BAN")
    alone = four_eyes.grant(ticket_permit, None, by="clerk-wang", now=NOW, needs_confirmation=False)
    start, end = alone.effective_from, alone.effective_until

    def order(source: str, start: int, end: int | None, mask: int = ticket.mask) -> IndexEntry:
        return IndexEntry(EntryKind.RESTRICTION, "R1", Role.DEBTOR, mask, start, end, source=source)

    def awaits(*reaching: IndexEntry) -> bool:
        return four_eyes.permit_awaits(catalogue, alone, ticket.mask, reaching)

    assert not awaits() and not awaits(order("railway_passenger_credit", start, None))
    assert awaits(order("court_consumption_order", end - 1, None))
    assert not awaits(order("court_consumption_order", start - 10, start))  # ended as the permit began
    assert not awaits(order("court_consumption_order", start, None, mask=catalogue.measure("RAIL_G_TRAIN").mask))
    with pytest.raises(Conflict, match="awaits no confirmation"):
        four_eyes.confirm_exemption(alone, by="clerk-zhao", read=as_read(alone), awaits=False)
    with pytest.raises(PermissionDenied):
        four_eyes.confirm_exemption(alone, by="clerk-wang", read=as_read(alone), awaits=True)
    confirmed = four_eyes.confirm_exemption(alone, by="clerk-zhao", read=as_read(alone), awaits=True)
    assert confirmed.confirmed_by == "clerk-zhao" and not confirmed.pending
    assert not four_eyes.permit_awaits(catalogue, confirmed, ticket.mask, [order("court_consumption_order", 0, None)])


def test_the_sources_a_permit_granted_alone_may_override_are_those_whose_lifts_need_no_confirmation():
    assert four_eyes.one_identity_sources(load_default_catalogue()) == {
        "railway_passenger_credit", "procurement_debarment", "procurement_major_violation",
    }  # fmt: skip


@pytest.mark.parametrize(
    "read",
    [{"effective_until": NOW + 80 * 365 * 86400}, {"effective_from": NOW - 86400}, {"measure": "RAIL_G_TRAIN"},
     {"document_number": "D-2"}],
)  # fmt: skip
def test_a_permit_is_confirmed_only_as_the_second_identity_read_it(read):
    """Its asker may restate it (same id and document) before the confirmation: one that reads otherwise than the
    permit in anything it says is refused, naming what differs, and confirms nothing."""
    granted = four_eyes.grant(permit(), None, by="clerk-wang", now=NOW, needs_confirmation=True)
    [(field, value)] = read.items()
    with pytest.raises(Conflict, match=f"^{field}: .* it is not confirmed") as refused:
        four_eyes.confirm_exemption(granted, by="clerk-zhao", read=as_read(granted, **read), awaits=True)
    said = getattr(granted, field)
    assert str(said) not in str(refused.value) and str(value) not in str(refused.value)  # a refusal is no read
    confirmed = four_eyes.confirm_exemption(granted, by="clerk-zhao", read=as_read(granted), awaits=True)
    assert confirmed.confirmed_by == "clerk-zhao"
    with pytest.raises(Conflict, match=f"^{field}: "):  # confirmed already, by the same identity: still refused
        four_eyes.confirm_exemption(confirmed, by="clerk-zhao", read=as_read(confirmed, **read), awaits=False)
