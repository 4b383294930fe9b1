"""The registry's writes as the use case makes them, wired by the bootstrap on the in-memory ports: what each
impose, lift and exemption stores, what the checks then answer, the revision each write returns, and that a
refused write stores nothing."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from debar.bench.feed import records as feed_records
from debar.common.errors import Aborted, Conflict, InvalidField, NotFound, PermissionDenied, Unavailable
from debar.common.identifiers import IdKind, Placement, Pseudonymiser, parse_keys
from debar.common.settings import DEV_BUCKET_KEY, SettingsError
from debar.sanction.app import importer
from debar.sanction.app.ports import RekeyCounts, StaleWrite
from debar.sanction.app.registry import ATTEMPTS, ExemptionInput, ImposeInput, PrincipalInput, WriteEffect
from debar.sanction.app.rekey import rekey
from debar.sanction.bootstrap import Core, build_core
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decisions import Decision
from debar.sanction.domain.model import Outcome, Role, Status
from debar.sanction.domain.subjects import SubjectResolver
from tests.support.memory import ManualClock, MemoryBackend
from tests.support.subjects import bad_checksum, new_ric, new_uscc
from tests.support.use_cases import (
    CLERK,
    COURT,
    DAY,
    DOCUMENT,
    LIFT_DOCUMENT,
    SECOND_CLERK,
    check_input,
    exemption_confirmed,
    exemption_input,
    impose_input,
    lift_confirmed,
)


async def outcome(core: Core, number: str, measure: str = "RAIL_G_TRAIN", at: int | None = None) -> Outcome:
    [result] = await core.checker.check([check_input(number, measure, at=at)], "railway")
    assert isinstance(result, Decision), result
    return result.outcome


async def test_impose_stores_the_record_bumps_the_revision_and_the_person_is_denied(core, backend, clock):
    person = new_ric()
    restriction, revision, effect = await core.registry.impose(impose_input(person, start=int(clock()) - DAY))
    assert effect is WriteEffect.CREATED and revision == 1 == core.registry.revision
    stored = await core.registry.get(restriction.id)
    assert stored == restriction and stored.status(int(clock())) is Status.ACTIVE
    assert person not in repr(backend.store.restrictions) and stored.masked_name == "Z********"
    assert await outcome(core, person) is Outcome.DENY


async def test_the_same_record_twice_is_unchanged_and_a_changed_one_is_updated(core, clock):
    # A source whose lifts need no second identity: a court list's record may not be narrowed by Impose.
    item = impose_input(new_ric(), start=int(clock()) - DAY, measures=["HOTEL_STAR_RATED"],
                        source="railway_passenger_credit")  # fmt: skip
    first, revision, _ = await core.registry.impose(item)
    again, same_revision, effect = await core.registry.impose(item)
    assert effect is WriteEffect.UNCHANGED and same_revision == revision and again == first
    changed, new_revision, effect = await core.registry.impose(replace(item, measures=["RAIL_G_TRAIN"]))
    assert effect is WriteEffect.UPDATED and new_revision == revision + 1
    assert changed.id == first.id and changed.measures == ("RAIL_G_TRAIN",)
    assert changed.created_at == first.created_at
    number = item.subject_id
    assert await outcome(core, number, "RAIL_G_TRAIN") is Outcome.DENY
    assert await outcome(core, number, "HOTEL_STAR_RATED") is Outcome.ALLOW  # its old entry was replaced


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda i: replace(i, source="rumour_mill"), "source"),
        (lambda i: replace(i, legal_basis=" "), "legal_basis"),
        (lambda i: replace(i, authority="a\x00b"), "authority"),
        (lambda i: replace(i, case_number="(2026) Jing 01\u200b05 Zhi 7"), "case_number"),  # zero-width space
        (lambda i: replace(i, document_number="\u202e1 noisiced 7 ihZ"), "document_number"),  # reads right to left
        (lambda i: replace(i, legal_basis="SPC Art. 3\u2066 (lifted)"), "legal_basis"),  # an isolate
        (lambda i: replace(i, document_number="(2026)\u00ad Jing 7"), "document_number"),  # a soft hyphen
        (lambda i: replace(i, case_number="\u061c(2026) Jing 7"), "case_number"),  # the Arabic letter mark
        (lambda i: replace(i, document_number="(2026) Jing 7\U000e0031"), "document_number"),  # a tag
        (lambda i: replace(i, document_number="(2026) Jing\u200d 7"), "document_number"),  # a joiner, in a number
        (lambda i: replace(i, measures=["FLYING_CARPET"]), "measures[0]"),
        (lambda i: replace(i, subject_id=bad_checksum(i.subject_id)), "subject.id"),
        (lambda i: replace(i, subject_kind=None), "subject.id_type"),
        (lambda i: replace(i, effective_until=i.effective_from), "effective_until"),
        (lambda i: replace(i, decided_on="01/02/2025"), "decided_on"),
        (lambda i: replace(i, principals=[PrincipalInput(IdKind.RIC, new_ric(), Role.PRINCIPAL)]), "principals"),
    ],
)  # fmt: skip
async def test_a_refused_impose_names_the_field_and_stores_nothing(core, backend, clock, change, field):
    item: ImposeInput = change(impose_input(new_ric(), start=int(clock()) - DAY))
    with pytest.raises(InvalidField) as raised:
        await core.registry.impose(item)
    assert raised.value.field == field
    assert backend.store.restrictions == {} and backend.store.index == {}
    assert await backend.store.revision() == 0


async def test_a_bad_principal_refuses_the_whole_record(core, backend, clock):
    company, good, bad = new_uscc(), new_ric(), bad_checksum(new_ric())
    item = impose_input(
        company, start=int(clock()) - DAY,
        principals=[(good, Role.LEGAL_REPRESENTATIVE), (bad, Role.ACTUAL_CONTROLLER)],
    )  # fmt: skip
    with pytest.raises(InvalidField) as raised:
        await core.registry.impose(item)
    assert raised.value.field == "principals[1].subject.id"
    assert backend.store.restrictions == {} and backend.store.index == {}


async def test_lift_ends_the_restriction_at_the_lift_and_the_past_stays_answerable(core, clock):
    person = new_ric()
    imposed_at = int(clock())
    restriction, revision, _ = await core.registry.impose(impose_input(person, start=imposed_at - DAY))
    clock.advance(DAY)
    lifted, lift_revision = await lift_confirmed(core.registry, restriction.id, "debt paid")
    assert lift_revision == revision + 2  # asked, then confirmed
    assert lifted.lifted_at == int(clock()) and lifted.lift_reason == "debt paid"
    assert (lifted.lift_document_number, lifted.lifted_by, lifted.lift_confirmed_by) == (
        LIFT_DOCUMENT, CLERK, SECOND_CLERK,
    )  # fmt: skip
    assert (await core.registry.get(restriction.id)).status(int(clock())) is Status.LIFTED
    assert await outcome(core, person) is Outcome.ALLOW
    assert await outcome(core, person, at=imposed_at) is Outcome.DENY  # a check of the time before the lift
    # Lifting again changes nothing, and writes nothing.
    again, same_revision = await core.registry.lift(restriction.id, "again", "another", CLERK)
    assert (again, same_revision) == (lifted, lift_revision)


async def test_a_court_list_lift_stays_pending_until_a_second_identity_confirms_it(core, clock):
    person = new_ric()
    restriction, _, _ = await core.registry.impose(impose_input(person, start=int(clock()) - DAY))
    asked_at = int(clock())
    pending, revision = await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, CLERK)
    assert pending.lifted_at is None and pending.pending_lift is not None
    assert (pending.pending_lift.asked_by, pending.pending_lift.asked_at) == (CLERK, asked_at)
    assert await core.registry.get(restriction.id) == pending
    assert pending.status(int(clock())) is Status.ACTIVE and await outcome(core, person) is Outcome.DENY
    # The asker restating the same lift writes nothing; another identity asking again is told to confirm.
    assert await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, CLERK) == (pending, revision)
    with pytest.raises(Conflict, match=f"asked by {CLERK} awaits confirmation; ConfirmLift"):
        await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, SECOND_CLERK)
    # The asker cannot confirm their own lift, however they spell their name.
    for same in (CLERK, " Clerk-Wang "):
        with pytest.raises(PermissionDenied, match="a different registry identity must confirm it"):
            await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, same)
    with pytest.raises(Conflict, match="document_number: the pending lift"):
        await core.registry.confirm_lift(restriction.id, "another decision", SECOND_CLERK)
    assert await core.registry.get(restriction.id) == pending and await outcome(core, person) is Outcome.DENY

    clock.advance(60)
    lifted, lift_revision = await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, SECOND_CLERK)
    assert lift_revision == revision + 1 and lifted.pending_lift is None
    assert (lifted.lifted_at, lifted.lifted_by, lifted.lift_confirmed_by) == (int(clock()), CLERK, SECOND_CLERK)
    assert await outcome(core, person) is Outcome.ALLOW
    # A retry by the confirmer changes nothing; anyone else is told it is lifted.
    assert await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, SECOND_CLERK) == (lifted, lift_revision)
    with pytest.raises(Conflict, match="already lifted"):
        await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, "clerk-li")


async def test_a_lift_of_a_source_that_needs_no_confirmation_takes_effect_at_once(core, clock):
    person = new_ric()
    item = impose_input(person, start=int(clock()) - DAY, source="railway_passenger_credit")
    restriction, _, _ = await core.registry.impose(item)
    assert await outcome(core, person, "RAIL_TICKET_BAN") is Outcome.DENY
    lifted, _ = await core.registry.lift(restriction.id, "fare paid", LIFT_DOCUMENT, CLERK)
    assert lifted.lifted_at == int(clock()) and lifted.pending_lift is None
    assert (lifted.lifted_by, lifted.lift_confirmed_by) == (CLERK, "")
    assert await outcome(core, person, "RAIL_TICKET_BAN") is Outcome.ALLOW
    with pytest.raises(Conflict, match="already lifted"):
        await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, SECOND_CLERK)
    other, _, _ = await core.registry.impose(impose_input(new_ric(), start=int(clock()) - DAY))
    with pytest.raises(Conflict, match="no lift awaiting confirmation"):
        await core.registry.confirm_lift(other.id, LIFT_DOCUMENT, SECOND_CLERK)


async def test_a_re_sent_record_keeps_its_pending_lift(core, clock):
    item = impose_input(new_ric(), start=int(clock()) - DAY)
    restriction, _, _ = await core.registry.impose(item)
    pending, _ = await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, CLERK)
    again, _, effect = await core.registry.impose(item)
    assert effect is WriteEffect.UNCHANGED and again.pending_lift == pending.pending_lift


async def test_a_write_beaten_by_other_writes_every_time_is_aborted_and_stores_nothing(core, backend, clock):
    person = new_ric()
    restriction, _, _ = await core.registry.impose(impose_input(person, start=int(clock()) - DAY))
    store, writes = backend.store, []
    write = store.write_restrictions

    async def beaten(restrictions, replacing, changes, log=()):  # another write comes first, every time
        writes.append(restrictions)
        store.restrictions[restriction.id] = replace(store.restrictions[restriction.id], disputed=len(writes) % 2 == 1)
        return await write(restrictions, replacing, changes, log)

    store.write_restrictions = beaten
    logged = len(store.registry_log)
    with pytest.raises(Aborted, match=f"restriction {restriction.id} was changed by other writes"):
        await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, CLERK)
    assert len(writes) == ATTEMPTS  # each attempt made of the record as the write before it left it
    assert store.restrictions[restriction.id].pending_lift is None and len(store.registry_log) == logged


async def test_an_import_chunk_beaten_again_and_again_is_sent_again_after_a_pause(core, backend, monkeypatch):
    monkeypatch.setattr(importer, "CHUNK_PAUSES_S", (0.0,))
    store, calls = backend.store, []
    write = store.write_restrictions

    async def beaten_at_first(restrictions, replacing, changes, log=()):  # the registry's attempts all lose once
        calls.append(len(restrictions))
        if len(calls) <= ATTEMPTS:
            raise StaleWrite("another write came first")
        return await write(restrictions, replacing, changes, log)

    store.write_restrictions = beaten_at_first
    lines = [orjson.dumps(r) for r in feed_records(5, seed=3)]
    summary = await importer.import_lines(lines, core.registry)
    # (a feed record the test's clock finds decided after "today" is rejected, as any import would)
    assert summary.added == len(store.restrictions) == 5 - len(summary.rejected) > 0
    assert calls == [summary.added] * (ATTEMPTS + 1)  # the chunk, sent again once after the pause

    async def always_beaten(restrictions, replacing, changes, log=()):
        calls.append(len(restrictions))
        raise StaleWrite("another write came first")

    calls.clear()
    store.write_restrictions = always_beaten
    with pytest.raises(Aborted):  # beaten every time: the import stops (the CLI says so in one line)
        await importer.import_lines([orjson.dumps(r) for r in feed_records(1, seed=4)], core.registry)
    assert len(calls) == 2 * ATTEMPTS  # sent, and sent again once after the one pause


async def test_a_write_made_again_after_a_race_drops_the_index_entries_its_beaten_attempt_left(core, backend, clock):
    # On Redis Cluster a write's index entries on other nodes are stored before its record, which is refused when
    # another write came first: here a restatement moving the record to another subject, while it was lifted.
    first, second = new_ric(), new_ric()
    item = impose_input(first, start=int(clock()) - 10 * DAY, source="railway_passenger_credit")
    restriction, _, _ = await core.registry.impose(item)
    store = backend.store
    write = store.write_restrictions
    moved = replace(item, subject_id=second)

    async def beaten_once(restrictions, replacing, changes, log=()):
        store.write_restrictions = write
        await core.registry.impose(moved)  # the other write, first to its record
        store._apply(changes)  # this attempt's entries on the other nodes (the first subject's, lifted)
        return await write(restrictions, replacing, changes, log)  # its record: refused (StaleWrite)

    store.write_restrictions = beaten_once
    clock.advance(DAY)
    lifted, _ = await core.registry.lift(restriction.id, "fare paid", LIFT_DOCUMENT, CLERK)
    assert lifted.lifted_at == int(clock()) and lifted.subject.pseudonym != restriction.subject.pseudonym
    before_the_lift = int(clock()) - DAY // 2
    assert await outcome(core, second, "RAIL_TICKET_BAN", at=before_the_lift) is Outcome.DENY
    assert await outcome(core, first, "RAIL_TICKET_BAN", at=before_the_lift) is Outcome.ALLOW  # no entry left behind


async def test_lift_refuses_an_unknown_record_a_missing_reason_and_a_missing_document(core, clock):
    with pytest.raises(NotFound):
        await core.registry.lift("RNOSUCHRECORD0000", "x", LIFT_DOCUMENT, CLERK)
    restriction, _, _ = await core.registry.impose(impose_input(new_ric(), start=int(clock()) - DAY))
    for reason, document, field in [(" ", LIFT_DOCUMENT, "reason"), ("paid", " ", "document_number"),
                                    ("paid", "D" * 129, "document_number")]:  # fmt: skip
        with pytest.raises(InvalidField) as raised:
            await core.registry.lift(restriction.id, reason, document, CLERK)
        assert raised.value.field == field
    with pytest.raises(InvalidField) as raised:
        await core.registry.confirm_lift(restriction.id, "", SECOND_CLERK)
    assert raised.value.field == "document_number"
    stored = await core.registry.get(restriction.id)
    assert stored.lifted_at is None and stored.pending_lift is None


async def test_lifting_one_principals_link_leaves_the_company_and_the_others_restricted(core, clock):
    company, representative, controller = new_uscc(), new_ric(), new_ric()
    restriction, _, _ = await core.registry.impose(
        impose_input(
            company, start=int(clock()) - DAY,
            principals=[(representative, Role.LEGAL_REPRESENTATIVE), (controller, Role.ACTUAL_CONTROLLER)],
        )
    )  # fmt: skip
    subject = core.resolver.resolve(IdKind.RIC, representative, "subject")
    updated, _ = await core.registry.lift_link(restriction.id, subject, "not the representative")
    assert updated.lifted_at is None
    [link] = [p for p in updated.principals if p.lifted_at is not None]
    assert link.subject == subject and link.lift_reason == "not the representative"
    assert await outcome(core, representative) is Outcome.ALLOW
    assert await outcome(core, controller) is Outcome.DENY
    assert await outcome(core, company) is Outcome.DENY


async def test_listing_shows_restrictions_reaching_a_person_through_a_role(core, clock):
    company, controller = new_uscc(), new_ric()
    start = int(clock()) - DAY
    own, _, _ = await core.registry.impose(impose_input(controller, start=start))
    via, _, _ = await core.registry.impose(
        impose_input(company, start=start, principals=[(controller, Role.ACTUAL_CONTROLLER)])
    )
    reach = {r.id: (role, how) for r, role, how in await core.registry.reaching(IdKind.RIC, controller, False)}
    assert reach == {own.id: (Role.DEBTOR, ""), via.id: (Role.ACTUAL_CONTROLLER, via.masked_name)}
    await lift_confirmed(core.registry, own.id, "performed")
    assert [r.id for r, _, _ in await core.registry.reaching(IdKind.RIC, controller, False)] == [via.id]
    assert len(await core.registry.reaching(IdKind.RIC, controller, True)) == 2


async def test_an_exemption_is_stored_and_bumps_the_revision(core, backend, clock):
    now = int(clock())
    person = new_ric()
    _, revision, _ = await core.registry.impose(impose_input(person, start=now - DAY))
    exemption, exemption_revision = await exemption_confirmed(
        core.registry, exemption_input(person, "RAIL_G_TRAIN", now, now + DAY)
    )
    assert exemption_revision == revision + 2  # granted, then confirmed
    assert (exemption.measure, exemption.authority, exemption.created_at) == ("RAIL_G_TRAIN", COURT, now)
    assert (exemption.granted_by, exemption.confirmed_by, exemption.pending) == (CLERK, SECOND_CLERK, False)
    assert await backend.store.get_exemption(exemption.subject, exemption.id) == exemption
    assert await outcome(core, person) is Outcome.ALLOW


async def test_a_permit_against_a_court_list_is_honoured_only_once_a_second_identity_confirms_it(core, clock):
    now = int(clock())
    person = new_ric()
    await core.registry.impose(impose_input(person, start=now - DAY))
    item = exemption_input(person, "RAIL_G_TRAIN", now, now + DAY)
    granted, revision = await core.registry.grant_exemption(item, CLERK)
    assert granted.pending and granted.granted_by == CLERK
    assert await outcome(core, person) is Outcome.DENY  # stored, not honoured
    assert await core.registry.grant_exemption(item, CLERK) == (granted, revision)  # restated: nothing written
    with pytest.raises(Conflict, match="ConfirmExemption"):
        await core.registry.grant_exemption(item, SECOND_CLERK)

    def confirm(xid: str, document: str, by: str, read: ExemptionInput = item):  # type: ignore[no-untyped-def]
        """As `by` read the court's permit (`read`: its measure and window)."""
        return core.registry.confirm_exemption(
            item.subject_kind, person, xid, document, by, read.measure, read.effective_from, read.effective_until
        )

    with pytest.raises(PermissionDenied, match="a different registry identity must confirm it"):
        await confirm(granted.id, DOCUMENT, CLERK)
    with pytest.raises(Conflict, match="document_number"):
        await confirm(granted.id, "another permit", SECOND_CLERK)
    with pytest.raises(Conflict, match="effective_until"):
        await confirm(granted.id, DOCUMENT, SECOND_CLERK, replace(item, effective_until=now + 2 * DAY))
    with pytest.raises(InvalidField, match="effective_from"):
        await confirm(granted.id, DOCUMENT, SECOND_CLERK, replace(item, effective_from=None))
    with pytest.raises(InvalidField, match="measure"):
        await confirm(granted.id, DOCUMENT, SECOND_CLERK, replace(item, measure=""))
    with pytest.raises(NotFound):
        await confirm("XNOSUCHPERMIT000", DOCUMENT, SECOND_CLERK)
    assert await outcome(core, person) is Outcome.DENY

    confirmed, _ = await confirm(granted.id, DOCUMENT, SECOND_CLERK)
    assert not confirmed.pending and confirmed.confirmed_by == SECOND_CLERK
    assert await outcome(core, person) is Outcome.ALLOW
    # Changed by its granter (a longer window), it is out of force until the change is confirmed.
    longer = replace(item, effective_until=now + 10 * DAY)
    changed, _ = await core.registry.grant_exemption(longer, CLERK)
    assert changed.pending and await outcome(core, person) is Outcome.DENY
    await confirm(granted.id, DOCUMENT, SECOND_CLERK, longer)
    assert await outcome(core, person, at=now + 5 * DAY) is Outcome.ALLOW


async def test_a_permit_needs_confirmation_when_it_can_override_a_court_list(core, clock):
    """RAIL_TICKET_BAN is imposed by default only by railway records (no confirmation), unless a court order
    reaching the subject names it."""
    now = int(clock())
    rider, debtor = new_ric(), new_ric()
    await core.registry.impose(impose_input(rider, start=now - DAY, source="railway_passenger_credit"))
    at_once, _ = await core.registry.grant_exemption(exemption_input(rider, "RAIL_TICKET_BAN", now, now + DAY), CLERK)
    assert not at_once.pending and await outcome(core, rider, "RAIL_TICKET_BAN") is Outcome.ALLOW
    await core.registry.impose(impose_input(debtor, start=now - DAY, measures=["RAIL_TICKET_BAN"]))
    held, _ = await core.registry.grant_exemption(exemption_input(debtor, "RAIL_TICKET_BAN", now, now + DAY), CLERK)
    assert held.pending and await outcome(core, debtor, "RAIL_TICKET_BAN") is Outcome.DENY
    # Granted before any court order exists, a permit for a court list's default measure still needs it.
    early, _ = await core.registry.grant_exemption(
        exemption_input(new_ric(), "HOTEL_STAR_RATED", now, now + DAY), CLERK
    )
    assert early.pending


async def test_a_permit_granted_alone_overrides_a_court_order_arriving_later_only_once_a_second_identity_confirms(
    core, clock
):
    """Granted alone (nothing restricts the person, and no court list imposes RAIL_TICKET_BAN by default), the permit
    is in force; a court order naming the measure comes later: it refuses, the permit shows as awaiting, and a second
    identity's confirmation makes it override the order. A railway record beside it is overridden throughout."""
    now = int(clock())
    person = new_ric()
    item = exemption_input(person, "RAIL_TICKET_BAN", now - DAY, now + 30 * DAY)
    alone, _ = await core.registry.grant_exemption(item, CLERK)
    window = (item.measure, item.effective_from, item.effective_until)  # as the second clerk reads the permit
    assert not alone.pending and not await core.registry.awaits(alone)
    await core.registry.impose(impose_input(person, start=now - DAY, source="railway_passenger_credit"))
    assert await outcome(core, person, "RAIL_TICKET_BAN") is Outcome.ALLOW
    await core.registry.impose(impose_input(person, start=now - DAY, measures=["RAIL_TICKET_BAN"]))
    assert await outcome(core, person, "RAIL_TICKET_BAN") is Outcome.DENY
    [(listed, awaiting)] = await core.registry.permits(item.subject_kind, person)
    assert listed == alone and awaiting
    with pytest.raises(PermissionDenied, match="a different registry identity must confirm it"):
        await core.registry.confirm_exemption(item.subject_kind, person, alone.id, DOCUMENT, CLERK, *window)
    confirmed, _ = await core.registry.confirm_exemption(
        item.subject_kind, person, alone.id, DOCUMENT, SECOND_CLERK, *window
    )
    assert confirmed.confirmed_by == SECOND_CLERK and not await core.registry.awaits(confirmed)
    assert await outcome(core, person, "RAIL_TICKET_BAN") is Outcome.ALLOW
    assert await core.registry.permits(item.subject_kind, person) == [(confirmed, False)]


@pytest.mark.parametrize(
    ("measure", "start", "end", "field"),
    [
        ("RAIL_G_TRAIN", None, 2_000_000_000, "effective_from"),
        ("RAIL_G_TRAIN", 1_800_000_000, None, "effective_until"),
        ("RAIL_G_TRAIN", 1_800_000_000, 1_800_000_000, "effective_until"),
        ("RAIL_G_TRAIN", 10, 1_800_000_000, "effective_from"),
        ("FLYING_CARPET", 1_800_000_000, 1_800_086_400, "measure"),
    ],
)
async def test_a_refused_exemption_names_the_field_and_stores_nothing(core, backend, measure, start, end, field):
    with pytest.raises(InvalidField) as raised:
        await core.registry.grant_exemption(exemption_input(new_ric(), measure, start, end), CLERK)
    assert raised.value.field == field
    assert backend.store.exemptions == {} and backend.store.index == {}


@pytest.mark.parametrize(("field", "value"), [("authority", ""), ("document_number", " "), ("document_number", "")])
async def test_an_exemption_needs_an_authority_and_a_document_number(core, backend, field, value):
    item = replace(exemption_input(new_ric(), "RAIL_G_TRAIN", 1_800_000_000, 1_800_086_400), **{field: value})
    with pytest.raises(InvalidField) as raised:
        await core.registry.grant_exemption(item, CLERK)
    assert raised.value.field == field
    assert backend.store.exemptions == {}


async def test_import_counts_add_up(core):
    await core.registry.record_import({"added": 3, "rejected": 1})
    await core.registry.record_import({"added": 2, "unchanged": 4})
    assert await core.registry.import_counts() == {"added": 5, "rejected": 1, "unchanged": 4}


async def test_a_store_that_does_not_answer_is_unavailable_in_plain_words(core, backend, clock):
    backend.down = True
    with pytest.raises(Unavailable) as raised:
        await core.registry.impose(impose_input(new_ric(), start=int(clock()) - DAY))
    assert raised.value.message == "restriction data is unreachable; try again shortly"
    with pytest.raises(Unavailable):
        await core.registry.get("RNOSUCHRECORD0000")


OLD_RING = "k1:first-secret-at-least-32-bytes-long"
NEW_RING = f"k2:second-secret-at-least-32-bytes-long,{OLD_RING}"


def _core_with_ring(backend: MemoryBackend, clock: ManualClock, ring: str, staged: str = "") -> Core:
    resolver = SubjectResolver(Pseudonymiser(parse_keys(ring), staged), Placement(DEV_BUCKET_KEY.encode()))
    return build_core(backend.adapters(), load_default_catalogue(), resolver, clock=clock)


async def test_after_a_key_rotation_checks_still_find_the_data_and_rekey_moves_all_of_it(backend, clock):
    person, company, representative = new_ric(), new_uscc(), new_ric()
    start = int(clock()) - DAY
    old = _core_with_ring(backend, clock, OLD_RING)
    await old.registry.impose(impose_input(person, start=start))
    await old.registry.impose(impose_input(company, start=start, principals=[(representative, Role.PRINCIPAL)]))
    await exemption_confirmed(old.registry, exemption_input(person, "HOTEL_STAR_RATED", start, start + 3 * DAY))
    assert await outcome(old, person) is Outcome.DENY

    with pytest.raises(SettingsError, match="staged"):
        await rekey(
            backend.rekeyer,
            _core_with_ring(backend, clock, NEW_RING, "k2").resolver,
        )
    new = _core_with_ring(backend, clock, NEW_RING)
    for number in (person, company, representative):
        assert await outcome(new, number) is Outcome.DENY  # found under the old pseudonym meanwhile
    assert await outcome(new, person, "HOTEL_STAR_RATED") is Outcome.ALLOW  # the permit too

    counts = await rekey(backend.rekeyer, new.resolver)
    assert (counts.index_fields, counts.records, counts.exemptions, counts.decision_lists) == (3, 2, 1, 1)
    stored = [*backend.store.index, *backend.decision_log.subject_decisions]
    assert all(pseudonym.startswith("k2.") for _, pseudonym in stored)
    assert all(r.subject.pseudonym.startswith("k2.") for r in backend.store.restrictions.values())
    for number in (person, company, representative):
        assert await outcome(new, number) is Outcome.DENY
    assert await outcome(new, person, "HOTEL_STAR_RATED") is Outcome.ALLOW
    listed, _ = await new.decisions.for_subject(IdKind.RIC, person, 10, "")
    # Every decision about the person, old and new, is found under the new key, each as it was made.
    assert [d.subject_pseudonym[:3] for d in listed] == ["k2.", "k2.", "k2.", "k2.", "k1."]
    assert (await rekey(backend.rekeyer, new.resolver)) == RekeyCounts()  # nothing left to move


async def test_a_name_keeps_the_joiners_its_script_needs(core, clock):
    """Persian and Indic words need the zero-width joiners (U+200C, U+200D): a name keeps them (a number does not,
    see above), while a direction override in a name is refused like anywhere else."""
    item = impose_input(new_ric(), start=int(clock()) - DAY)
    stored, _, _ = await core.registry.impose(replace(item, name="\u0645\u06cc\u200c\u0631\u0648\u062f"))
    assert stored.masked_name  # stored (masked)
    with pytest.raises(InvalidField) as raised:
        await core.registry.impose(replace(item, name="Li\u202eeW"))
    assert raised.value.field == "name"
