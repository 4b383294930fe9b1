"""Objections as pure rules: the state machine, the deadlines each step starts, what is overdue, and the
transition log's hash chain."""

from __future__ import annotations

import calendar
from dataclasses import replace

import pytest

from debar.common.errors import AlreadyExists, Conflict, InvalidField, PermissionDenied
from debar.common.identifiers import IdKind
from debar.common.settings import DEV_OBJECTION_KEYS
from debar.sanction.adapters.objection_store import decode, encode
from debar.sanction.adapters.sealing import Sealer
from debar.sanction.domain import objections as rules
from debar.sanction.domain.calendar import DAY
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.model import SubjectRef
from debar.sanction.domain.objections import ObjectionOutcome, ObjectionState
from tests.support.memory import MemoryBackend

COURT = load_default_catalogue().source("court_consumption_order").objection
# A Monday, so that working days are easy to count.
MONDAY = calendar.timegm((2026, 3, 2, 9, 0, 0))
OID = "Oa3f0123456789ab"


def filed(now: int = MONDAY) -> rules.Objection:
    return rules.file(
        id=OID,
        decision_id="1764250000000-0-a3f-0",
        subject=SubjectRef(IdKind.RIC, "t1.abc", "a3f"),
        restriction_ids=("R1", "R2", "R1"),
        source="court_consumption_order",
        rules=COURT,
        statement="  Not me: I was never a party to that case.\nSee the attached judgment.  ",
        contact="zhang@example.com",
        now=now,
    )


def under_review(now: int = MONDAY + DAY) -> rules.Objection:
    return rules.review(filed(), "judge Wang", now)


def upheld(now: int = MONDAY + 2 * DAY) -> rules.Objection:
    return rules.resolve(under_review(), ObjectionOutcome.UPHELD, "judge Wang", "the record is right", now)


def test_a_filed_objection_is_open_and_due_for_review_in_15_days():
    o = filed()
    assert o.state is ObjectionState.FILED and o.is_open
    assert o.statement.startswith("Not me") and o.statement.endswith("judgment.")
    assert o.restriction_ids == ("R1", "R2")
    assert o.review_due == MONDAY + 15 * DAY
    assert o.correction_due is None and o.reconsideration_request_due is None
    [step] = o.history
    assert (step.from_state, step.to_state, step.actor) == (None, ObjectionState.FILED, rules.SUBJECT_ACTOR)


def test_the_full_path_records_who_when_and_why():
    o = upheld()
    assert [(t.from_state, t.to_state) for t in o.history] == [
        (None, ObjectionState.FILED),
        (ObjectionState.FILED, ObjectionState.UNDER_REVIEW),
        (ObjectionState.UNDER_REVIEW, ObjectionState.UPHELD),
    ]
    assert o.history[-1].actor == "judge Wang"
    assert o.history[-1].reason == "the record is right"
    assert o.history[-1].at == MONDAY + 2 * DAY
    assert not o.is_open


def test_upheld_gives_10_days_to_ask_for_reconsideration_once():
    o = upheld()
    assert o.reconsideration_request_due == MONDAY + 12 * DAY
    again = rules.request_reconsideration(o, "The higher court should look at it", MONDAY + 12 * DAY)
    assert again.state is ObjectionState.RECONSIDERATION and again.is_open
    assert again.review_due == MONDAY + 12 * DAY + 15 * DAY  # reconsideration_decision_days
    assert again.history[-1].reason == "The higher court should look at it"
    upheld_again = rules.resolve(again, ObjectionOutcome.UPHELD, "judge Li", "still right", MONDAY + 13 * DAY)
    with pytest.raises(Conflict, match="already reconsidered"):
        rules.request_reconsideration(upheld_again, "once more", MONDAY + 13 * DAY)


def test_reconsideration_after_the_deadline_is_refused():
    with pytest.raises(Conflict, match="deadline"):
        rules.request_reconsideration(upheld(), "late", MONDAY + 12 * DAY + 1)


def awaiting(now: int = MONDAY + 2 * DAY) -> rules.Objection:
    return rules.resolve(under_review(), ObjectionOutcome.OVERTURNED, "judge Wang", "mistaken identity", now)


def test_an_overturn_awaits_a_second_reviewer_and_the_correction_deadline_runs_from_the_first_resolution():
    friday = MONDAY + 4 * DAY
    o = awaiting(friday)
    assert o.state is ObjectionState.AWAITING_CONFIRMATION and o.is_open  # the record stays in force, disputed
    assert o.correction_due == friday + 5 * DAY  # Mon, Tue, Wed
    assert o.reconsideration_request_due is None
    assert (o.resolved_by, o.confirmed_by) == ("judge Wang", "")
    confirmed = rules.confirm(o, "judge Li", friday + 3 * DAY)
    assert confirmed.state is ObjectionState.OVERTURNED and not confirmed.is_open
    assert confirmed.correction_due == o.correction_due  # the confirmation does not restart it
    assert (confirmed.resolved_by, confirmed.confirmed_by) == ("judge Wang", "judge Li")
    last = confirmed.history[-1]
    assert (last.from_state, last.to_state, last.actor, last.at) == (
        ObjectionState.AWAITING_CONFIRMATION, ObjectionState.OVERTURNED, "judge Li", friday + 3 * DAY,
    )  # fmt: skip
    assert "judge Wang" in last.reason


@pytest.mark.parametrize("same", ["judge Wang", "Judge  WANG", " judge wang "])
def test_the_reviewer_who_resolved_cannot_confirm_their_own_overturn(same):
    with pytest.raises(PermissionDenied, match="resolved by judge Wang; a different reviewer must confirm it"):
        rules.confirm(awaiting(), same, MONDAY + 3 * DAY)


def test_confirm_only_from_awaiting_confirmation():
    for make in (filed, under_review, upheld):
        with pytest.raises(Conflict, match="confirm only from awaiting_confirmation"):
            rules.confirm(make(), "judge Li", MONDAY + 3 * DAY)
    done = rules.confirm(awaiting(), "judge Li", MONDAY + 3 * DAY)
    with pytest.raises(Conflict, match="is overturned"):
        rules.confirm(done, "judge Zhao", MONDAY + 3 * DAY)
    with pytest.raises(InvalidField) as raised:
        rules.confirm(awaiting(), " ", MONDAY + 3 * DAY)
    assert raised.value.field == "reviewer"


def test_an_overturn_awaiting_confirmation_cannot_be_overturned_again_but_may_be_upheld():
    with pytest.raises(Conflict, match="already resolved as overturned by judge Wang; a different reviewer confirms"):
        rules.resolve(awaiting(), ObjectionOutcome.OVERTURNED, "judge Li", "agree", MONDAY + 3 * DAY)
    kept = rules.resolve(awaiting(), ObjectionOutcome.UPHELD, "judge Li", "the record is right", MONDAY + 3 * DAY)
    assert kept.state is ObjectionState.UPHELD and not kept.is_open
    assert kept.correction_due is None and kept.reconsideration_request_due == MONDAY + 13 * DAY
    assert (kept.resolved_by, kept.confirmed_by) == ("judge Li", "")


def test_awaiting_confirmation_met_the_review_deadline_and_is_late_only_past_the_correction_deadline():
    o = awaiting()
    assert o.correction_due is not None and o.correction_due < o.review_due
    assert o.due == o.correction_due
    assert not o.overdue(o.correction_due)
    assert o.overdue(o.correction_due + 1)
    late_review = rules.resolve(
        under_review(), ObjectionOutcome.OVERTURNED, "judge Wang", "mistaken identity", MONDAY + 20 * DAY
    )  # resolved after review_due: the review was late, but once resolved only the correction is due
    assert late_review.review_due < MONDAY + 20 * DAY and not late_review.overdue(MONDAY + 20 * DAY)


@pytest.mark.parametrize(
    ("make", "step", "named"),
    [
        (filed, lambda o: rules.resolve(o, ObjectionOutcome.UPHELD, "w", "r", MONDAY), "is filed"),
        (under_review, lambda o: rules.review(o, "w", MONDAY), "is under_review"),
        (filed, lambda o: rules.request_reconsideration(o, "s", MONDAY), "is filed"),
        (upheld, lambda o: rules.review(o, "w", MONDAY), "is upheld"),
        (upheld, lambda o: rules.resolve(o, ObjectionOutcome.OVERTURNED, "w", "r", MONDAY), "is upheld"),
    ],
)
def test_a_step_not_allowed_from_the_state_is_a_conflict_naming_it(make, step, named):
    with pytest.raises(Conflict, match=named):
        step(make())


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (lambda: rules.resolve(under_review(), None, "w", "r", MONDAY), "outcome"),
        (lambda: rules.resolve(under_review(), ObjectionOutcome.UPHELD, " ", "r", MONDAY), "reviewer"),
        (lambda: rules.resolve(under_review(), ObjectionOutcome.UPHELD, "w", "", MONDAY), "reason"),
        (lambda: rules.review(filed(), "a\x1fb", MONDAY), "reviewer"),
        (lambda: replace_statement(""), "statement"),
        (lambda: replace_statement("x" * 4001), "statement"),
        (lambda: replace_contact(""), "contact"),
        (lambda: replace_contact("x" * 257), "contact"),
        (lambda: replace_contact("a\nb"), "contact"),
    ],
)
def test_bad_input_names_the_field(step, field):
    with pytest.raises(InvalidField) as raised:
        step()
    assert raised.value.field == field


def replace_statement(statement: str) -> rules.Objection:
    o = filed()
    return rules.file(
        id=o.id, decision_id=o.decision_id, subject=o.subject, restriction_ids=o.restriction_ids, source=o.source,
        rules=o.rules, statement=statement, contact=o.contact, now=MONDAY,
    )  # fmt: skip


def replace_contact(contact: str) -> rules.Objection:
    o = filed()
    return rules.file(
        id=o.id, decision_id=o.decision_id, subject=o.subject, restriction_ids=o.restriction_ids, source=o.source,
        rules=o.rules, statement=o.statement, contact=contact, now=MONDAY,
    )  # fmt: skip


def test_overdue_is_computed_against_now():
    o = filed()
    assert not o.overdue(o.review_due)
    assert o.overdue(o.review_due + 1)
    # Under review, the same deadline holds.
    assert under_review().overdue(o.review_due + 1)


def test_an_upheld_objection_is_never_overdue():
    assert not upheld().overdue(MONDAY + 1000 * DAY)


def test_an_overturned_objection_is_overdue_only_until_corrected():
    o = rules.confirm(awaiting(), "judge Li", MONDAY + 2 * DAY)
    assert o.correction_due is not None
    assert not o.overdue(o.correction_due)
    assert o.overdue(o.correction_due + 1)
    assert not rules.mark_corrected(o, MONDAY + 2 * DAY).overdue(o.correction_due + 1)


def test_the_index_orders_by_the_deadline_that_matters_in_the_state():
    assert filed().due == filed().review_due
    assert upheld().due == upheld().reconsideration_request_due


@pytest.mark.parametrize("bad", ["", "O123", "Xa3f0123456789ab", "OA3F0123456789AB", "Oa3f0123456789abc"])
def test_objection_ids_are_checked(bad):
    with pytest.raises(InvalidField, match=r"^objection_id:"):
        rules.parse_objection_id(bad)


def test_an_objection_id_is_stored_beside_its_decision():
    assert rules.objection_id("a3f", "0123456789ab") == OID
    assert rules.parse_objection_id(OID) == "a3f"


@pytest.mark.parametrize("make", [upheld, awaiting, lambda: rules.confirm(awaiting(), "judge Li", MONDAY + 3 * DAY)])
def test_the_stored_record_round_trips(make):
    o = make()
    sealer = Sealer.from_spec(DEV_OBJECTION_KEYS)
    assert decode(encode(o, sealer), sealer) == replace(o, rules=replace(o.rules, summary=""))


# -- the use case alone (its registry and decisions faked), with its clock injected ------------------------------------


class FakeRegistry:
    def __init__(self) -> None:
        self.disputed: set[str] = set()
        self.lifted: list[tuple[str, str]] = []

    async def set_disputed(self, rids, disputed, actor="", reason=""):
        (self.disputed.update if disputed else self.disputed.difference_update)(rids)
        return 1

    async def lift_link(self, rid, subject, reason, actor=""):
        self.lifted.append((rid, subject.pseudonym))
        return None, 1


class FakeDecisions:
    async def get(self, value):
        from debar.sanction.app.decision_reader import LoggedDecision
        from debar.sanction.domain.model import EntryKind, IndexEntry, Outcome, Role

        ground = IndexEntry(EntryKind.RESTRICTION, "R" + value[-5:], Role.DEBTOR, 1, 0, None, "court_consumption_order")
        return LoggedDecision(
            decision_id=value, decided_at_ms=0, at=0, caller="hotel", id_kind=IdKind.RIC, subject_pseudonym="t1.p",
            measure="HOTEL_STAR_RATED", outcome=Outcome.DENY, grounds=(ground,), exemption=None, revision=1,
            catalogue_version="1", spooled=False, bucket="a3f",
        )  # fmt: skip


async def test_the_desk_lists_what_is_overdue_at_its_clocks_now():
    from debar.sanction.app.objections import Objections

    now = [float(MONDAY)]
    tokens = iter(f"{i:012x}" for i in range(100))
    registry = FakeRegistry()
    desk = Objections(
        MemoryBackend().objection_store, FakeDecisions(), registry, load_default_catalogue(), clock=lambda: now[0],
        token=lambda: next(tokens),
    )  # fmt: skip
    old = await desk.file("1764250000000-0-a3f-0", "not me", "me@example.com")
    assert registry.disputed == {old.restriction_ids[0]}
    with pytest.raises(AlreadyExists, match=f"already has objection {old.id};"):
        await desk.file("1764250000000-0-a3f-0", "again", "me@example.com")
    now[0] += 10 * DAY
    fresh = await desk.file("1764250000000-1-a3f-0", "not me", "me@example.com")
    assert (await desk.find(None, overdue_only=True))[0] == []
    now[0] += 5 * DAY + 1
    assert [o.id for o in (await desk.find(None, overdue_only=True))[0]] == [old.id]
    assert [o.id for o in (await desk.find(ObjectionState.FILED, overdue_only=False))[0]] == [old.id, fresh.id]

    await desk.review(old.id, "Wang")
    proposed = await desk.resolve(old.id, ObjectionOutcome.OVERTURNED, "Wang", "mistaken identity")
    assert proposed.state is ObjectionState.AWAITING_CONFIRMATION and registry.lifted == []
    assert registry.disputed == {old.restriction_ids[0]}
    overturned = await desk.confirm(old.id, "Li")
    assert overturned.corrected_at == int(now[0])
    assert registry.lifted == [(old.restriction_ids[0], "t1.p")]
    assert fresh.restriction_ids == old.restriction_ids  # both refusals stand on the same restriction
    assert registry.disputed == {fresh.restriction_ids[0]}  # still disputed by the fresh objection
    assert (await desk.find(None, overdue_only=True))[0] == []
    # Corrected in time: nothing is due any more, and it sorts after every deadline.
    settled = (await desk.find(ObjectionState.OVERTURNED, overdue_only=False))[0][0]
    assert settled.due is None and settled.listing_order >= rules.NOTHING_DUE
    assert await desk.counts() == ({"filed": 1, "under_review": 0, "upheld": 0, "overturned": 1,
                                     "reconsideration": 0, "awaiting_confirmation": 0}, 0)  # fmt: skip
    now[0] += 20 * DAY
    assert await desk.counts() == ({"filed": 1, "under_review": 0, "upheld": 0, "overturned": 1,
                                     "reconsideration": 0, "awaiting_confirmation": 0}, 1)  # fmt: skip


async def test_the_desk_lists_in_pages_that_join_up():
    from debar.sanction.app.objections import Objections

    tokens = iter(f"{i:012x}" for i in range(100))
    desk = Objections(
        MemoryBackend().objection_store, FakeDecisions(), FakeRegistry(), load_default_catalogue(),
        clock=lambda: float(MONDAY), token=lambda: next(tokens),
    )  # fmt: skip
    filed = [(await desk.file(f"1764250000000-{i}-a3f-0", "not me", "me@example.com")).id for i in range(5)]
    pages, token = [], ""
    while True:
        page, token = await desk.find(None, overdue_only=False, page_size=2, page_token=token)
        pages.append([o.id for o in page])
        if not token:
            break
    assert pages == [filed[0:2], filed[2:4], filed[4:]]  # filed in the same second: in id order
    with pytest.raises(InvalidField, match="page_token"):
        await desk.find(None, overdue_only=False, page_token="2.not-an-id")
