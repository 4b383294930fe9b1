"""Checks as the use case answers them, wired by the bootstrap on the in-memory ports: what a caller is told
(outcome, grounds, the permit, the error naming its field) and what the decision log then holds."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from debar.common.errors import Conflict, InvalidField, Unavailable
from debar.common.identifiers import IdKind, Placement, Pseudonymiser, parse_keys
from debar.common.settings import DEV_BUCKET_KEY
from debar.sanction.app.checker import CheckInput
from debar.sanction.bootstrap import Core, build_core
from debar.sanction.domain.catalogue import FailurePolicy, load_default_catalogue
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import Decision, Degradation
from debar.sanction.domain.model import Outcome, Role
from debar.sanction.domain.subjects import SubjectResolver
from tests.support.subjects import bad_checksum, new_ric, new_uscc
from tests.support.use_cases import BASIS, COURT, DAY, check_input, exemption_confirmed, exemption_input, impose_input
from tests.unit.conftest import TEST_KEYS

FAILS_OPEN, FAILS_CLOSED = "RAIL_TICKET_BAN", "RAIL_G_TRAIN"


async def one(core: Core, item: CheckInput, caller: str = "railway") -> Decision:
    [result] = await core.checker.check([item], caller)
    assert isinstance(result, Decision), result
    return result


async def test_the_catalogue_says_which_measures_fail_open(core):
    assert core.catalogue.measure(FAILS_OPEN).failure_policy is FailurePolicy.OPEN
    assert core.catalogue.measure(FAILS_CLOSED).failure_policy is FailurePolicy.CLOSED


async def test_an_unrestricted_person_is_allowed_and_the_allow_is_logged(core, clock):
    person = new_ric()
    allowed = await one(core, check_input(person, "RAIL_G_TRAIN"), caller="ticketing")
    assert allowed.outcome is Outcome.ALLOW
    assert allowed.grounds == () and allowed.exemption is None
    assert allowed.decided_at_ms == int(clock() * 1000)
    logged = await core.decisions.get(allowed.decision_id)
    assert (logged.outcome, logged.caller, logged.measure) == (Outcome.ALLOW, "ticketing", "RAIL_G_TRAIN")
    assert logged.at == int(clock()) and logged.subject_pseudonym == allowed.query.subject.pseudonym
    assert person not in logged.subject_pseudonym  # stored under its pseudonym only


async def test_a_restricted_person_is_denied_with_the_grounds_and_the_log_keeps_them(core, clock):
    person = new_ric()
    restriction, revision, _ = await core.registry.impose(impose_input(person, start=int(clock()) - DAY))
    refused = await one(core, check_input(person, "RAIL_G_TRAIN", min_revision=revision))
    assert refused.outcome is Outcome.DENY
    [ground] = refused.grounds
    assert ground.id == restriction.id and ground.role is Role.DEBTOR
    assert (ground.legal_basis, ground.authority, ground.source) == (BASIS, COURT, "court_consumption_order")
    assert ground.case_number == restriction.case_number
    assert refused.revision >= revision
    # Read back as it was decided: the grounds captured then, texts and all.
    logged = await core.decisions.get(refused.decision_id)
    assert logged.outcome is Outcome.DENY and logged.grounds == refused.grounds
    assert logged.revision == refused.revision
    # Measures outside the order, and other people, stay allowed.
    assert (await one(core, check_input(person, "PROCUREMENT_BID"))).outcome is Outcome.ALLOW
    assert (await one(core, check_input(new_ric(), "RAIL_G_TRAIN"))).outcome is Outcome.ALLOW


async def test_a_restriction_denies_only_inside_its_window(core, clock):
    now = int(clock())
    person = new_ric()
    await core.registry.impose(impose_input(person, start=now + 5 * DAY, end=now + 30 * DAY))
    assert (await one(core, check_input(person, "RAIL_G_TRAIN"))).outcome is Outcome.ALLOW
    assert (await one(core, check_input(person, "RAIL_G_TRAIN", at=now + 5 * DAY))).outcome is Outcome.DENY
    assert (await one(core, check_input(person, "RAIL_G_TRAIN", at=now + 30 * DAY))).outcome is Outcome.ALLOW


async def test_a_legal_representative_is_denied_through_the_role_naming_the_masked_company(core, clock):
    company, representative = new_uscc(), new_ric()
    restriction, _, _ = await core.registry.impose(
        impose_input(
            company, start=int(clock()) - DAY, name="Acme Trading Co.",
            principals=[(representative, Role.LEGAL_REPRESENTATIVE)],
        )
    )  # fmt: skip
    refused = await one(core, check_input(representative, "HOTEL_STAR_RATED"))
    assert refused.outcome is Outcome.DENY
    [ground] = refused.grounds
    assert (ground.id, ground.role, ground.via) == (restriction.id, Role.LEGAL_REPRESENTATIVE, "Ac************o.")
    assert (await one(core, check_input(company, "HOTEL_STAR_RATED"))).outcome is Outcome.DENY


async def test_an_exemption_allows_its_measure_in_its_window_and_names_itself(core, clock):
    now = int(clock())
    person = new_ric()
    await core.registry.impose(impose_input(person, start=now - DAY))
    exemption, revision = await exemption_confirmed(
        core.registry, exemption_input(person, "RAIL_G_TRAIN", now - DAY, now + DAY)
    )
    allowed = await one(core, check_input(person, "RAIL_G_TRAIN", min_revision=revision))
    assert allowed.outcome is Outcome.ALLOW
    assert allowed.exemption is not None
    assert (allowed.exemption.id, allowed.exemption.authority) == (exemption.id, COURT)
    assert (await core.decisions.get(allowed.decision_id)).exemption == allowed.exemption
    # Another measure, and the same one after the window, stay denied.
    assert (await one(core, check_input(person, "HOTEL_STAR_RATED"))).outcome is Outcome.DENY
    assert (await one(core, check_input(person, "RAIL_G_TRAIN", at=now + 2 * DAY))).outcome is Outcome.DENY


@pytest.mark.parametrize(
    ("item", "field", "reason"),
    [
        (lambda: check_input(bad_checksum(new_ric()), "RAIL_G_TRAIN"), "subject.id", "check character"),
        (lambda: check_input("1234", "RAIL_G_TRAIN"), "subject.id", "18 characters"),
        (lambda: CheckInput(None, new_ric(), "RAIL_G_TRAIN", None), "subject.id_type", "ID_TYPE_RIC"),
        (lambda: check_input(new_ric(), "RAIL_GOLD_TRAIN"), "measure", "unknown measure"),
        (lambda: check_input(new_ric(), ""), "measure", "empty"),
        (lambda: check_input(new_ric(), "RAIL_G_TRAIN", at=10), "at", "2000-01-01"),
        (lambda: CheckInput(IdKind.RIC, new_ric(), "RAIL_G_TRAIN", None, at_nanos=10**9), "at", "nanos"),
    ],
)
async def test_bad_input_names_the_field_and_nothing_is_logged(core, backend, item, field, reason):
    [result] = await core.checker.check([item()], "railway")
    assert isinstance(result, InvalidField)
    assert result.field == field and reason in result.reason
    assert backend.decision_log.chains == {}


async def test_min_revision_ahead_of_the_data_is_a_conflict_and_is_not_logged(core, backend, clock):
    _, revision, _ = await core.registry.impose(impose_input(new_ric(), start=int(clock()) - DAY))
    [result] = await core.checker.check([check_input(new_ric(), "RAIL_G_TRAIN", min_revision=revision + 1)], "r")
    assert isinstance(result, Conflict)
    assert f"min_revision {revision + 1}" in result.message and f"revision {revision}" in result.message
    assert backend.decision_log.chains == {}
    fresh = await one(core, check_input(new_ric(), "RAIL_G_TRAIN", min_revision=revision))
    assert fresh.revision == revision


async def test_a_write_by_another_replica_is_seen_once_a_check_asks_for_it(core, backend):
    backend.store.revision_value = 7  # another replica wrote: this one's floor has not seen it
    decision = await one(core, check_input(new_ric(), "RAIL_G_TRAIN", min_revision=7))
    assert decision.revision == 7


async def test_store_down_fails_open_into_the_spool_and_closed_as_unavailable(core, backend):
    person = new_ric()
    backend.down = True
    open_, closed = await core.checker.check(
        [check_input(person, FAILS_OPEN), check_input(person, FAILS_CLOSED)], "railway", on_behalf_of="platform:12306"
    )
    assert isinstance(open_, Decision)
    assert open_.outcome is Outcome.ALLOW and open_.degradation is Degradation.FAILED_OPEN_SPOOLED
    assert len(open_.decision_id) == 26  # an id like any other, with 96 random bits inside
    assert isinstance(closed, Unavailable) and "unreachable" in closed.message
    [spooled] = backend.spool.waiting
    assert spooled.decision_id == open_.decision_id and spooled.check.caller == "railway"
    assert spooled.check.on_behalf_of == "platform:12306"  # who asked, kept for the log
    assert spooled.check.query.subject.pseudonym == open_.query.subject.pseudonym
    assert core.spool_replay.stats.spooled == 1

    # Back up: the spool goes into the log, and the spooled id finds the decision there.
    backend.down = False
    assert await core.spool_replay.replay_pending() == 1
    assert await core.spool_replay.replay_pending() == 0
    logged = await core.decisions.get(open_.decision_id)
    assert logged.spooled and logged.outcome is Outcome.ALLOW and logged.measure == FAILS_OPEN
    assert logged.decision_id != open_.decision_id
    assert backend.spool.waiting == []


async def test_store_down_and_spool_unwritable_is_unavailable_even_for_a_fail_open_measure(core, backend):
    backend.down = True
    backend.spool.broken = True
    [result] = await core.checker.check([check_input(new_ric(), FAILS_OPEN)], "railway")
    assert isinstance(result, Unavailable)


async def test_a_batch_answers_in_order_and_names_each_bad_item_by_its_request_position(core, backend, clock):
    denied, allowed = new_ric(), new_ric()
    await core.registry.impose(impose_input(denied, start=int(clock()) - DAY))
    items = [
        check_input(denied, "RAIL_G_TRAIN"),
        check_input(bad_checksum(allowed), "RAIL_G_TRAIN"),
        check_input(allowed, "RAIL_G_TRAIN"),
        check_input(allowed, "NOT_A_MEASURE"),
    ]
    # As the servicer passes them when items 1 and 4 of the request were refused by scope: 0, 2, 3, 5.
    results = await core.checker.check(items, "railway", field="items[{i}]", positions=[0, 2, 3, 5])
    first, bad_id, second, bad_measure = results
    assert isinstance(first, Decision) and first.outcome is Outcome.DENY
    assert isinstance(second, Decision) and second.outcome is Outcome.ALLOW
    assert isinstance(bad_id, InvalidField) and bad_id.field == "items[2].subject.id"
    assert isinstance(bad_measure, InvalidField) and bad_measure.field == "items[5].measure"
    # One store call for the batch: one log record, each decision at its own index in it.
    ids = DecisionIds.for_placement(core.resolver.placement)
    located = [ids.locate(d.decision_id) for d in (first, second)]
    one_record, other = (x.address for x in located if x is not None)
    assert one_record is not None and other is not None
    assert one_record.stream_id == other.stream_id and (one_record.index, other.index) == (0, 1)
    [record] = backend.decision_log.chains[one_record.bucket]
    assert record.stream_id == one_record.stream_id and record.fields["d"].count("\x1d") == 1  # two decisions


async def test_a_subjects_decisions_are_listed_newest_first(core, clock):
    person = new_ric()
    first = await one(core, check_input(person, "RAIL_G_TRAIN"))
    clock.advance(1)
    second = await one(core, check_input(person, "HOTEL_STAR_RATED"))
    listed, token = await core.decisions.for_subject(IdKind.RIC, person, page_size=1, page_token="")
    assert [d.decision_id for d in listed] == [second.decision_id] and token
    listed, token = await core.decisions.for_subject(IdKind.RIC, person, page_size=1, page_token=token)
    assert [d.decision_id for d in listed] == [first.decision_id] and token == ""


class CountingObserver:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []
        self.unavailable = 0

    def decided(self, decisions: Sequence[Decision]) -> None:
        self.outcomes += [d.outcome for d in decisions]

    def store_unavailable(self) -> None:
        self.unavailable += 1


async def test_the_observer_is_told_of_decisions_and_of_a_store_that_did_not_answer(backend, clock):
    observer = CountingObserver()
    resolver = SubjectResolver(Pseudonymiser(parse_keys(TEST_KEYS)), Placement(DEV_BUCKET_KEY.encode()))
    core = build_core(backend.adapters(), load_default_catalogue(), resolver, observer=observer, clock=clock)
    await core.checker.check([check_input(new_ric(), "RAIL_G_TRAIN")], "railway")
    backend.down = True
    await core.checker.check([check_input(new_ric(), FAILS_OPEN), check_input(new_ric(), FAILS_CLOSED)], "railway")
    assert observer.outcomes == [Outcome.ALLOW, Outcome.ALLOW]  # the second: spooled; the third: no decision
    assert observer.unavailable == 1
