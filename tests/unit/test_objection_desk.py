"""The objection desk as the use case runs it, wired by the bootstrap on the in-memory ports, against refusals the
checker really gave: filing, review, resolution and reconsideration, the deadlines each step starts, what the
record then says and what the checks then answer."""

from __future__ import annotations

import pytest

from debar.common.errors import AlreadyExists, Conflict, InvalidField, NotFound, PermissionDenied, Unavailable
from debar.common.identifiers import IdKind
from debar.sanction.bootstrap import Core
from debar.sanction.domain.calendar import add_working_days
from debar.sanction.domain.decisions import Decision
from debar.sanction.domain.model import Outcome, Role, Status
from debar.sanction.domain.objections import NOTHING_DUE, ObjectionOutcome, ObjectionState
from tests.support.memory import ManualClock
from tests.support.subjects import new_ric, new_uscc
from tests.support.use_cases import DAY, check_input, impose_input

UPHELD, OVERTURNED = ObjectionOutcome.UPHELD, ObjectionOutcome.OVERTURNED


async def decide(core: Core, number: str, measure: str = "HOTEL_STAR_RATED") -> Decision:
    [result] = await core.checker.check([check_input(number, measure)], "hotel")
    assert isinstance(result, Decision), result
    return result


async def refused(
    core: Core, clock: ManualClock, number: str, principals: list[tuple[str, Role]] | None = None
) -> tuple[str, str]:
    """A restriction on `number` (or on a company with `number` in a role) and a refusal of it: (restriction id,
    decision id)."""
    start = int(clock()) - DAY
    if principals is None:
        restriction, _, _ = await core.registry.impose(impose_input(number, start=start))
    else:
        restriction, _, _ = await core.registry.impose(impose_input(new_uscc(), start=start, principals=principals))
    decision = await decide(core, number)
    assert decision.outcome is Outcome.DENY
    return restriction.id, decision.decision_id


async def status(core: Core, rid: str, clock: ManualClock) -> Status:
    return (await core.registry.get(rid)).status(int(clock()))


async def test_an_objection_disputes_the_restriction_and_overturning_it_lifts_the_restriction(core, clock):
    person = new_ric()
    rid, decision_id = await refused(core, clock, person)
    objection = await core.objections.file(decision_id, "  Not me: I was never a party.  ", "zhang@example.com")
    assert objection.state is ObjectionState.FILED and objection.statement == "Not me: I was never a party."
    assert objection.restriction_ids == (rid,) and objection.source == "court_consumption_order"
    assert objection.review_due == int(clock()) + 15 * DAY and not objection.overdue(int(clock()))
    assert await status(core, rid, clock) is Status.DISPUTED
    assert (await decide(core, person)).outcome is Outcome.DENY  # disputed, still in force

    clock.advance(DAY)
    under_review = await core.objections.review(objection.id, "judge Wang")
    assert under_review.state is ObjectionState.UNDER_REVIEW
    assert under_review.history[-1].actor == "judge Wang" and under_review.history[-1].at == int(clock())
    resolved_at = int(clock())
    proposed = await core.objections.resolve(objection.id, OVERTURNED, "judge Wang", "mistaken identity")
    assert proposed.state is ObjectionState.AWAITING_CONFIRMATION
    assert proposed.correction_due == add_working_days(resolved_at, proposed.rules.correction_working_days)
    clock.advance(DAY)
    done = await core.objections.confirm(objection.id, "judge Li")
    assert done.state is ObjectionState.OVERTURNED and done.correction_due == proposed.correction_due
    assert done.corrected_at == int(clock()) and done.due is None and not done.overdue(int(clock()))
    assert [(t.from_state, t.to_state) for t in done.history] == [
        (None, ObjectionState.FILED),
        (ObjectionState.FILED, ObjectionState.UNDER_REVIEW),
        (ObjectionState.UNDER_REVIEW, ObjectionState.AWAITING_CONFIRMATION),
        (ObjectionState.AWAITING_CONFIRMATION, ObjectionState.OVERTURNED),
    ]
    lifted = await core.registry.get(rid)
    assert lifted.status(int(clock())) is Status.LIFTED and objection.id in lifted.lift_reason
    assert "judge Wang" in lifted.lift_reason and "judge Li" in lifted.lift_reason
    assert (await decide(core, person)).outcome is Outcome.ALLOW
    # The decision stays as it was made, and the stored objection is the one returned.
    assert (await core.decisions.get(decision_id)).outcome is Outcome.DENY
    assert await core.objections.get(objection.id) == done


async def test_overturning_a_representatives_objection_lifts_only_their_link(core, clock):
    representative = new_ric()
    rid, decision_id = await refused(
        core, clock, representative, principals=[(representative, Role.LEGAL_REPRESENTATIVE)]
    )
    objection = await core.objections.file(decision_id, "I resigned in 2024", "li@example.com")
    await core.objections.review(objection.id, "judge Wang")
    await core.objections.resolve(objection.id, OVERTURNED, "judge Wang", "resigned before the order")
    await core.objections.confirm(objection.id, "judge Li")
    record = await core.registry.get(rid)
    assert record.lifted_at is None and record.status(int(clock())) is Status.ACTIVE  # the company stays restricted
    [link] = record.principals
    assert link.lifted_at == int(clock()) and objection.id in link.lift_reason
    assert (await decide(core, representative)).outcome is Outcome.ALLOW


async def test_only_a_refusal_can_be_objected_to_and_only_once(core, clock):
    allowed = await decide(core, new_ric())
    with pytest.raises(Conflict, match="not a refusal"):
        await core.objections.file(allowed.decision_id, "why", "me@example.com")
    _, decision_id = await refused(core, clock, new_ric())
    first = await core.objections.file(decision_id, "not me", "me@example.com")
    # The second filer learns the objection's id and nothing else of the first filer's.
    with pytest.raises(AlreadyExists) as second:
        await core.objections.file(decision_id, "again", "other@example.com")
    assert second.value.message == f"decision {decision_id} already has objection {first.id}; nothing was filed"
    assert await core.objections.get(first.id) == first


@pytest.mark.parametrize(
    ("decision_id", "statement", "contact", "error", "field"),
    [
        ("nonsense", "not me", "me@example.com", InvalidField, "decision_id"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaa", "", "me@example.com", InvalidField, "statement"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaa", "not me", "a\x00b", InvalidField, "contact"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaa", "not me", "me@example.com", NotFound, None),
    ],
)
async def test_a_bad_filing_is_refused_and_stores_nothing(core, backend, decision_id, statement, contact, error, field):
    with pytest.raises(error) as raised:
        await core.objections.file(decision_id, statement, contact)
    if field is not None:
        assert raised.value.field == field  # type: ignore[attr-defined]
    assert backend.objection_store.records == {} and backend.objection_store.transitions == []


async def test_a_step_not_allowed_from_the_state_names_the_state_and_writes_nothing(core, backend, clock):
    _, decision_id = await refused(core, clock, new_ric())
    objection = await core.objections.file(decision_id, "not me", "me@example.com")
    with pytest.raises(Conflict, match="is filed"):
        await core.objections.resolve(objection.id, UPHELD, "judge Wang", "the record is right")
    with pytest.raises(InvalidField) as raised:
        await core.objections.review(objection.id, " ")
    assert raised.value.field == "reviewer"
    await core.objections.review(objection.id, "judge Wang")
    with pytest.raises(Conflict, match="is under_review"):
        await core.objections.review(objection.id, "judge Li")
    with pytest.raises(InvalidField) as raised:
        await core.objections.resolve(objection.id, None, "judge Wang", "why")
    assert raised.value.field == "outcome"
    assert len(backend.objection_store.transitions) == 2  # filed, taken under review: nothing else
    with pytest.raises(NotFound):
        await core.objections.review("Oabc000000000000", "judge Wang")
    with pytest.raises(InvalidField) as raised:
        await core.objections.get("bad")
    assert raised.value.field == "objection_id"


async def test_upheld_leaves_one_reconsideration_within_its_deadline(core, clock):
    rid, decision_id = await refused(core, clock, new_ric())
    objection = await core.objections.file(decision_id, "not me", "me@example.com")
    await core.objections.review(objection.id, "judge Wang")
    upheld = await core.objections.resolve(objection.id, UPHELD, "judge Wang", "the record is right")
    assert upheld.reconsideration_request_due == int(clock()) + upheld.rules.reconsideration_request_days * DAY
    assert await status(core, rid, clock) is Status.ACTIVE  # no longer disputed
    assert not upheld.overdue(int(clock()) + 100 * DAY)  # the reconsideration deadline is the person's

    clock.advance(DAY)
    again = await core.objections.request_reconsideration(objection.id, "Look again")
    assert again.state is ObjectionState.RECONSIDERATION
    assert again.review_due == int(clock()) + again.rules.reconsideration_decision_days * DAY
    assert await status(core, rid, clock) is Status.DISPUTED
    with pytest.raises(Conflict, match="reconsideration"):
        await core.objections.request_reconsideration(objection.id, "And again")
    upheld_again = await core.objections.resolve(objection.id, UPHELD, "judge Li", "still right")
    with pytest.raises(Conflict, match="asked once"):
        await core.objections.request_reconsideration(objection.id, "Once more")
    assert upheld_again.reconsideration_request_due == upheld.reconsideration_request_due


async def test_a_reconsideration_asked_too_late_is_refused(core, clock):
    _, decision_id = await refused(core, clock, new_ric())
    objection = await core.objections.file(decision_id, "not me", "me@example.com")
    await core.objections.review(objection.id, "judge Wang")
    upheld = await core.objections.resolve(objection.id, UPHELD, "judge Wang", "the record is right")
    assert upheld.reconsideration_request_due is not None
    clock.now = upheld.reconsideration_request_due + 1
    with pytest.raises(Conflict, match="deadline"):
        await core.objections.request_reconsideration(objection.id, "Look again")


async def test_a_restriction_stays_disputed_while_another_objection_on_it_is_open(core, clock):
    person = new_ric()
    rid, first = await refused(core, clock, person)
    second = (await decide(core, person, "AIR_TRAVEL")).decision_id
    a = await core.objections.file(first, "not me", "me@example.com")
    b = await core.objections.file(second, "not me either", "me@example.com")
    await core.objections.review(a.id, "judge Wang")
    await core.objections.resolve(a.id, UPHELD, "judge Wang", "right")
    assert await status(core, rid, clock) is Status.DISPUTED
    await core.objections.review(b.id, "judge Wang")
    await core.objections.resolve(b.id, UPHELD, "judge Wang", "right")
    assert await status(core, rid, clock) is Status.ACTIVE


async def test_overdue_objections_are_listed_and_counted_at_the_desks_now(core, clock):
    _, old_decision = await refused(core, clock, new_ric())
    old = await core.objections.file(old_decision, "not me", "me@example.com")
    clock.advance(10 * DAY)
    _, fresh_decision = await refused(core, clock, new_ric())
    fresh = await core.objections.file(fresh_decision, "not me", "me@example.com")
    assert (await core.objections.find(None, overdue_only=True))[0] == []
    clock.now = old.review_due + 1
    assert [o.id for o in (await core.objections.find(None, overdue_only=True))[0]] == [old.id]
    assert [o.id for o in (await core.objections.find(ObjectionState.FILED, False))[0]] == [old.id, fresh.id]
    by_state, overdue = await core.objections.counts()
    assert (by_state["filed"], overdue) == (2, 1)

    await core.objections.review(old.id, "judge Wang")
    proposed = await core.objections.resolve(old.id, OVERTURNED, "judge Wang", "mistaken identity")
    # The review deadline was met by the resolution; the correction deadline now runs.
    assert (await core.objections.find(None, overdue_only=True))[0] == []
    assert (await core.objections.counts())[0]["awaiting_confirmation"] == 1
    assert proposed.correction_due is not None
    clock.now = proposed.correction_due + 1  # nobody confirmed in time: late, listed and counted
    assert [o.id for o in (await core.objections.find(None, overdue_only=True))[0]] == [old.id]
    assert [o.id for o in (await core.objections.find(ObjectionState.AWAITING_CONFIRMATION, True))[0]] == [old.id]
    corrected = await core.objections.confirm(old.id, "judge Li")
    assert corrected.listing_order >= NOTHING_DUE  # nothing left due: after every deadline
    assert clock.now < fresh.review_due
    assert (await core.objections.find(None, overdue_only=True))[0] == []
    assert await core.objections.counts() == (
        {"filed": 1, "under_review": 0, "upheld": 0, "overturned": 1, "reconsideration": 0,
         "awaiting_confirmation": 0},
        0,
    )  # fmt: skip


async def test_objections_are_listed_in_pages_soonest_deadline_first(core, clock):
    filed = []
    for _ in range(5):
        _, decision_id = await refused(core, clock, new_ric())
        filed.append((await core.objections.file(decision_id, "not me", "me@example.com")).id)
        clock.advance(60)
    pages, token = [], ""
    while True:
        page, token = await core.objections.find(None, overdue_only=False, page_size=2, page_token=token)
        pages.append([o.id for o in page])
        if not token:
            break
    assert pages == [filed[0:2], filed[2:4], filed[4:]]
    with pytest.raises(InvalidField) as raised:
        await core.objections.find(None, overdue_only=False, page_token="2.not-an-id")
    assert raised.value.field == "page_token"


async def test_one_reviewer_cannot_overturn_alone(core, backend, clock):
    """The attack: one credential reviews and overturns. The record stays in force (disputed) until a different
    reviewer confirms; the same one confirming is refused and writes nothing."""
    person = new_ric()
    rid, decision_id = await refused(core, clock, person)
    objection = await core.objections.file(decision_id, "not me", "me@example.com")
    await core.objections.review(objection.id, "judge Wang")
    proposed = await core.objections.resolve(objection.id, OVERTURNED, "judge Wang", "mistaken identity")
    assert (proposed.resolved_by, proposed.confirmed_by) == ("judge Wang", "")
    assert (await decide(core, person)).outcome is Outcome.DENY
    assert await status(core, rid, clock) is Status.DISPUTED
    logged = len(backend.objection_store.transitions)
    for same in ("judge Wang", "JUDGE wang"):
        with pytest.raises(PermissionDenied, match="a different reviewer must confirm it"):
            await core.objections.confirm(objection.id, same)
    with pytest.raises(Conflict, match="ConfirmResolution"):
        await core.objections.resolve(objection.id, OVERTURNED, "judge Wang", "once more")
    assert len(backend.objection_store.transitions) == logged
    assert await core.objections.get(objection.id) == proposed
    assert (await decide(core, person)).outcome is Outcome.DENY

    done = await core.objections.confirm(objection.id, "judge Li")
    assert (done.resolved_by, done.confirmed_by) == ("judge Wang", "judge Li")
    assert (await decide(core, person)).outcome is Outcome.ALLOW
    # The confirmer retrying gets the same answer; another reviewer is told it is overturned.
    assert await core.objections.confirm(objection.id, "judge Li") == done
    with pytest.raises(Conflict, match="is overturned"):
        await core.objections.confirm(objection.id, "judge Zhao")


async def test_a_second_reviewer_may_decline_an_overturn_and_the_record_stands(core, clock):
    person = new_ric()
    rid, decision_id = await refused(core, clock, person)
    objection = await core.objections.file(decision_id, "not me", "me@example.com")
    await core.objections.review(objection.id, "judge Wang")
    await core.objections.resolve(objection.id, OVERTURNED, "judge Wang", "mistaken identity")
    kept = await core.objections.resolve(objection.id, UPHELD, "judge Li", "the record is right")
    assert kept.state is ObjectionState.UPHELD and kept.resolved_by == "judge Li"
    assert await status(core, rid, clock) is Status.ACTIVE  # no longer disputed, still in force
    assert (await decide(core, person)).outcome is Outcome.DENY
    with pytest.raises(Conflict, match="confirm only from awaiting_confirmation"):
        await core.objections.confirm(objection.id, "judge Zhao")


async def test_every_step_is_in_the_transition_log_and_it_verifies(core, backend, clock):
    _, decision_id = await refused(core, clock, new_ric())
    objection = await core.objections.file(decision_id, "not me", "me@example.com")
    await core.objections.review(objection.id, "judge Wang")
    await core.objections.resolve(objection.id, OVERTURNED, "judge Wang", "mistaken identity")
    await core.objections.confirm(objection.id, "judge Li")
    assert len(backend.objection_store.transitions) == 4
    assert [(e.fields["o"], e.fields["t"], e.fields["a"]) for e in backend.objection_store.transitions] == [
        (objection.id, "filed", "subject"),
        (objection.id, "under_review", "judge Wang"),
        (objection.id, "awaiting_confirmation", "judge Wang"),
        (objection.id, "overturned", "judge Li"),
    ]
    assert backend.objection_store.transitions[-1].fields["r"] == "confirmed the overturn by judge Wang"


async def test_objection_data_that_does_not_answer_is_unavailable(core, backend, clock):
    _, decision_id = await refused(core, clock, new_ric())
    backend.down = True
    with pytest.raises(Unavailable, match="unreachable"):
        await core.objections.file(decision_id, "not me", "me@example.com")
    backend.down = False
    assert backend.objection_store.records == {}


async def test_a_subject_resolves_to_the_objection_of_its_decision(core, clock):
    person = new_ric()
    _, decision_id = await refused(core, clock, person)
    objection = await core.objections.file(decision_id, "not me", "me@example.com")
    subject = core.resolver.resolve(IdKind.RIC, person, "subject")
    assert objection.subject == subject and objection.decision_id == decision_id
