"""The subscription rules (domain/watch.py): when a standing changed, what kind of change it is, when a subject
must be judged again with no write, and the checks on what a platform sends."""

from __future__ import annotations

import pytest

from debar.common.errors import InvalidField, QuotaExceeded
from debar.common.identifiers import IdKind
from debar.sanction.domain import watch as rules
from debar.sanction.domain.model import EntryKind, IndexEntry, Outcome, Role, SubjectRef
from debar.sanction.domain.watch import ChangeKind, Subscription

T = 1_800_000_000
HOTEL, RAIL = 0b01, 0b10
SUBJECT = SubjectRef(IdKind.RIC, "k1.AAAAAAAAAAAAAAAA", "a3f")


def restriction(mask: int, start: int, end: int | None) -> IndexEntry:
    return IndexEntry(EntryKind.RESTRICTION, "R1", Role.DEBTOR, mask, start, end, "court")


def permit(mask: int, start: int, end: int) -> IndexEntry:
    return IndexEntry(EntryKind.EXEMPTION, "X1", None, mask, start, end, confirmed=True)


def sub(told: dict[str, Outcome], measures: tuple[str, ...] = ("HOTEL", "RAIL")) -> Subscription:
    return Subscription("W" + "0" * 20, "platform:a", SUBJECT, measures, T + 86400, "order", T, told)


MASKS = {"HOTEL": HOTEL, "RAIL": RAIL}


def test_the_baseline_is_the_standing_now():
    assert rules.baseline([restriction(HOTEL, T - 10, None)], MASKS, T) == {
        "HOTEL": Outcome.DENY,
        "RAIL": Outcome.ALLOW,
    }


def test_only_measures_whose_standing_differs_from_the_one_told_are_differences():
    entries = [restriction(HOTEL, T - 10, None)]
    found = rules.differences([sub({"HOTEL": Outcome.ALLOW, "RAIL": Outcome.ALLOW})], entries, MASKS, T)
    assert [(d.measure, d.told) for d in found] == [("HOTEL", Outcome.ALLOW)]
    assert rules.differences([sub({"HOTEL": Outcome.DENY, "RAIL": Outcome.ALLOW})], entries, MASKS, T) == []


def test_a_permit_covering_now_is_no_longer_restricted():
    entries = [restriction(HOTEL, T - 10, None), permit(HOTEL, T - 5, T + 5)]
    found = rules.differences([sub({"HOTEL": Outcome.DENY, "RAIL": Outcome.ALLOW})], entries, MASKS, T)
    assert [(d.measure, d.told) for d in found] == [("HOTEL", Outcome.DENY)]


def test_change_kinds():
    assert rules.change_kind(Outcome.ALLOW, Outcome.DENY) is ChangeKind.BECAME_RESTRICTED
    assert rules.change_kind(Outcome.DENY, Outcome.ALLOW) is ChangeKind.NO_LONGER_RESTRICTED
    assert rules.change_kind(Outcome.DENY, Outcome.DENY) is None


def test_the_next_boundary_is_the_first_start_or_end_ahead_touching_the_measures():
    entries = [restriction(HOTEL, T + 100, T + 200), permit(HOTEL, T + 50, T + 60), restriction(RAIL, T + 10, None)]
    assert rules.next_boundary(entries, HOTEL, T, T + 1000) == T + 50
    assert rules.next_boundary(entries, HOTEL, T + 60, T + 1000) == T + 100
    assert rules.next_boundary(entries, HOTEL | RAIL, T, T + 1000) == T + 10
    assert rules.next_boundary(entries, HOTEL, T + 200, T + 1000) is None  # nothing ahead
    assert rules.next_boundary(entries, HOTEL, T, T + 40) is None  # not before the subscriptions end


def test_inputs_are_checked_naming_the_field():
    with pytest.raises(InvalidField, match="until"):
        rules.check_until(None, T, 86400)
    with pytest.raises(InvalidField, match="future"):
        rules.check_until(T, T, 86400)
    with pytest.raises(InvalidField, match="within 1 days"):
        rules.check_until(T + 2 * 86400, T, 86400)
    assert rules.check_until(T + 10, T, 86400) == T + 10
    with pytest.raises(InvalidField, match="tag"):
        rules.check_tag("x" * 129)
    with pytest.raises(InvalidField, match="control"):
        rules.check_tag("a\nb")
    with pytest.raises(InvalidField, match="after_cursor"):
        rules.check_cursor("0-0-0")
    assert rules.check_cursor("") is None
    assert rules.check_cursor("1764250000000-3") == (1764250000000, 3)
    with pytest.raises(InvalidField, match="subscription_id"):
        rules.check_subscription_id("W12")
    assert rules.check_subscription_id(rules.new_subscription_id())


def test_the_quota_counts_what_is_held_and_what_is_added():
    rules.check_quota(9, 1, 10, "platform:a")
    with pytest.raises(QuotaExceeded, match="at most 10"):
        rules.check_quota(9, 2, 10, "platform:a")


def test_owners_and_members_round_trip():
    assert rules.owner_of("railway", "platform:12306") == "railway/platform:12306"
    assert rules.split_owner("railway/platform:12306") == ("railway", "platform:12306")
    assert rules.split_owner("platform:a") == ("platform:a", "")
    assert rules.subject_of_member(rules.subject_member(SUBJECT)) == SUBJECT
