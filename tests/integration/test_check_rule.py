"""The check rule is written twice: adapters/lua/decide.lua decides on the hot path (a decision and its log entry
in one call) and domain/rules.py:evaluate mirrors it in Python. Both get the same random index entries (kinds,
masks, windows open-ended or not, starts and ends on the checked second) and check times, and must give the same
outcome, grounds and exemption, the script through the real store (entries written with the real codec and index
script, decided by the real check script, several subjects in one call as a BatchCheck, on one server or a
cluster) and its answer as logged."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from debar.common.identifiers import IdKind, Placement, Pseudonymiser, parse_keys
from debar.common.settings import DEV_BUCKET_KEY
from debar.common.times import EARLIEST_AT, LATEST_AT
from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_cluster import LocalCluster
from debar.sanction.adapters.decision_log import RedisDecisionLog
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.redis_store import RedisStore
from debar.sanction.app.decision_reader import DecisionReader
from debar.sanction.domain import four_eyes
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import CheckQuery, LoggedCheck
from debar.sanction.domain.model import EntryKind, Evaluation, IndexChange, IndexEntry, Outcome, Role, SubjectRef
from debar.sanction.domain.rules import evaluate
from debar.sanction.domain.subjects import SubjectResolver

IDS = DecisionIds.for_bucket_key(DEV_BUCKET_KEY)  # the store names decisions by location; the reader by id

CATALOGUE = load_default_catalogue()
MEASURES = list(CATALOGUE.measures.values())
G_TRAIN = CATALOGUE.measure("RAIL_G_TRAIN")
HOTEL = CATALOGUE.measure("HOTEL_STAR_RATED")
T = 1_800_000_000  # a second inside the accepted check range
PROPERTY = settings(max_examples=150, deadline=None)
ALONE_OVERRIDES = four_eyes.one_identity_sources(CATALOGUE)  # what the store gives the script, from its catalogue


@dataclass(frozen=True)
class Subject:
    """One subject's index: `current` under its pseudonym, `older` under the previous key's (not re-keyed yet)."""

    bucket: str
    current: tuple[IndexEntry, ...]
    older: tuple[IndexEntry, ...] = ()
    rotating: bool = False  # a key rotation is under way: the check reads under both pseudonyms


@dataclass(frozen=True)
class Case:
    subjects: tuple[Subject, ...]
    checks: tuple[tuple[int, str, int], ...]  # (index in `subjects`, measure code, at)


# -- strategies ---------------------------------------------------------------------------------------------------


# Windows and check times are drawn around a few instants, so that a check often falls on a window's first second
# (covered), on its end (not covered) or one second either side.
def _instants(pivots: list[int]) -> st.SearchStrategy[int]:
    return st.sampled_from(pivots).flatmap(lambda t: st.sampled_from([t - 1, t, t + 1]))


masks = st.one_of(
    st.just(CATALOGUE.mask_of(list(CATALOGUE.measures))),  # every measure: covers whatever is checked
    st.lists(st.sampled_from(MEASURES), max_size=4).map(lambda ms: CATALOGUE.mask_of([m.code for m in ms])),
    st.integers(0, 2**31 - 1),  # every bit the script's 32-bit operations can see
)
texts = st.sampled_from(["", "SPC Provisions, Art. 3", "Beijing Chaoyang District People's Court", "规定 第三条"])


@st.composite
def entries(draw: st.DrawFn, instants: st.SearchStrategy[int], number: int) -> IndexEntry:
    kind = draw(st.sampled_from(EntryKind))
    restriction = kind is EntryKind.RESTRICTION
    return IndexEntry(
        kind=kind,
        id=f"{kind.value}{number:016d}",
        role=draw(st.sampled_from(Role)) if restriction else None,
        mask=draw(masks),
        effective_from=draw(instants),
        # An end may come before the start (a restriction lifted before it began): such a window covers nothing.
        effective_until=draw(st.one_of(st.none(), instants)),
        source=draw(st.sampled_from(["", *CATALOGUE.sources])) if restriction else "",
        via=draw(st.sampled_from(["", "Ac************o."])) if restriction else "",
        legal_basis=draw(texts) if restriction else "",
        authority=draw(texts),
        case_number=draw(st.sampled_from(["", "(2026) Jing 0105 Zhi 7"])) if restriction else "",
        confirmed=draw(st.booleans()) if not restriction else False,  # a permit granted alone, or confirmed too
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    pivots = draw(st.lists(st.integers(EARLIEST_AT + 1, LATEST_AT - 2), min_size=1, max_size=3))
    instants = _instants(pivots)
    numbers = itertools.count()
    subjects = []
    for _ in range(draw(st.integers(1, 3))):
        found = [draw(entries(instants, next(numbers))) for _ in range(draw(st.integers(0, 6)))]
        rotating = draw(st.booleans())
        split = draw(st.integers(0, len(found))) if rotating else len(found)
        bucket = f"{draw(st.integers(0, 4095)):03x}"
        subjects.append(Subject(bucket, tuple(found[:split]), tuple(found[split:]), rotating))
    checks = draw(
        st.lists(
            st.tuples(st.integers(0, len(subjects) - 1), st.sampled_from([m.code for m in MEASURES]), instants),
            min_size=1,
            max_size=6,
        )
    )
    return Case(tuple(subjects), tuple(checks))


def _exemption(start: int, end: int | None, mask: int = G_TRAIN.mask, confirmed: bool = True) -> IndexEntry:
    return IndexEntry(EntryKind.EXEMPTION, "X0000000000000001", None, mask, start, end, authority="Chaoyang Court",
                      confirmed=confirmed)  # fmt: skip


def _restriction(start: int, end: int | None, mask: int = G_TRAIN.mask, source: str = "x") -> IndexEntry:
    return IndexEntry(EntryKind.RESTRICTION, "R0000000000000002", Role.DEBTOR, mask, start, end, source=source)


# A permit held by a subject nothing restricts: an allow that names no exemption.
NOT_RESTRICTED_BUT_PERMITTED = Case((Subject("a3f", (_exemption(T - 10, T + 10),)),), ((0, G_TRAIN.code, T),))
# The same permit turning a refusal into an allow, and a restriction of another measure beside a permit.
PERMITTED = Case((Subject("a3f", (_restriction(T - 10, None), _exemption(T, T + 1))),), ((0, G_TRAIN.code, T),))
OTHER_MEASURE = Case(
    (Subject("0c1", (_restriction(T - 10, None, HOTEL.mask), _exemption(T - 10, T + 10))),),
    ((0, G_TRAIN.code, T), (0, HOTEL.code, T)),
)
# During a key rotation: the restriction still under the old pseudonym, the permit under the new one.
ACROSS_KEYS = Case((Subject("fff", (_exemption(T, T + 5),), (_restriction(T, T + 1),), True),), ((0, G_TRAIN.code, T),))
# Four eyes: a permit granted alone overrides a railway record, not a court order (nor both together); a confirmed
# permit beside it overrides both.
ALONE = _exemption(T - 10, T + 10, confirmed=False)
RAILWAY = _restriction(T - 10, None, source="railway_passenger_credit")
COURT = replace(_restriction(T - 10, None, source="court_consumption_order"), id="R0000000000000003")
GRANTED_ALONE = Case(
    (Subject("a3f", (RAILWAY, ALONE)), Subject("0c1", (COURT, ALONE)), Subject("b07", (RAILWAY, COURT, ALONE)),
     Subject("d00", (RAILWAY, COURT, ALONE, replace(_exemption(T - 10, T + 10), id="X0000000000000004")))),
    ((0, G_TRAIN.code, T), (1, G_TRAIN.code, T), (2, G_TRAIN.code, T), (3, G_TRAIN.code, T)),
)  # fmt: skip


# -- the store ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop:
        yield loop


@pytest.fixture(scope="module")
def client(redis_server: EmbeddedRedis | LocalCluster) -> Redis:
    """A client of the session's private Redis; the store closes it."""
    return make_client(redis_server.url, cluster=isinstance(redis_server, LocalCluster), timeout_s=5, connections=4)


@pytest.fixture(scope="module")
def store(client: Redis, runner: asyncio.Runner) -> Iterator[RedisStore]:
    """The real store, under a key prefix of its own."""
    store = RedisStore(client, Keys("rulecheck"), catalogue=CATALOGUE)
    yield store
    runner.run(store.close())


@pytest.fixture(scope="module")
def reader(client: Redis, store: RedisStore) -> DecisionReader:
    resolver = SubjectResolver(
        Pseudonymiser(parse_keys("t1:test-secret-one-at-least-32-bytes")), Placement(DEV_BUCKET_KEY.encode())
    )
    return DecisionReader(RedisDecisionLog(client, Keys("rulecheck")), store, resolver, IDS)


def _fresh_pseudonym() -> str:
    return f"t1.{uuid.uuid4().hex[:16]}"


async def _decide_both_ways(store: RedisStore, reader: DecisionReader, case: Case) -> None:
    refs: list[SubjectRef] = []
    changes: list[IndexChange] = []
    for s in case.subjects:
        ref = SubjectRef(IdKind.RIC, _fresh_pseudonym(), s.bucket, alias=_fresh_pseudonym() if s.rotating else "")
        refs.append(ref)
        for where, found in ((ref.pseudonym, s.current), (ref.alias, s.older)):
            at = SubjectRef(ref.kind, where, ref.bucket)
            changes += [IndexChange(at, e.kind, e.id, e.role, e) for e in found]
    await store.apply_index(changes)
    # What both rules read: the entries as stored, in the order the script reads them (current key first).
    stored = [await store.index_entries(ref) for ref in refs]
    assert stored == [[*s.current, *s.older] for s in case.subjects]

    checks = [
        LoggedCheck(CheckQuery(refs[i], CATALOGUE.measure(code), at), "rule-test", 0) for i, code, at in case.checks
    ]
    decisions = await store.decide(checks, CATALOGUE.version)
    assert len(decisions) == len(checks)
    for (i, _, at), check, decision in zip(case.checks, checks, decisions, strict=True):
        expected = evaluate(stored[i], check.query.measure.mask, at, ALONE_OVERRIDES)
        context = f"entries {stored[i]}, measure mask {check.query.measure.mask}, at {at}"
        assert decision.query == check.query, context
        assert decision.outcome is expected.outcome, context
        # The script's grounds are the covering restrictions: those that deny, or those the exemption overrode.
        assert decision.grounds == expected.grounds + expected.overridden, context
        assert decision.exemption == expected.exemption, context
        event(_kind_of(expected, stored[i], check.query.measure.mask, at))  # --hypothesis-show-statistics
        logged = await reader.get(IDS.of_internal([decision.decision_id])[0])
        assert (logged.outcome, logged.grounds, logged.exemption) == (
            decision.outcome, decision.grounds, decision.exemption,
        ), context  # fmt: skip


def _kind_of(expected: Evaluation, entries: list[IndexEntry], mask: int, at: int) -> str:
    permits = [e for e in entries if e.kind is EntryKind.EXEMPTION and e.covers(mask, at)]
    if expected.outcome is Outcome.DENY:
        return "deny: a permit granted alone met a court order" if permits else "deny"
    if expected.exemption is not None:
        return "allow: a permit overrode a restriction"
    return "allow: a permit held but not needed" if permits else "allow: nothing covers"


@PROPERTY
@given(case=cases())
@example(case=NOT_RESTRICTED_BUT_PERMITTED)
@example(case=PERMITTED)
@example(case=OTHER_MEASURE)
@example(case=ACROSS_KEYS)
@example(case=GRANTED_ALONE)
def test_the_check_script_and_evaluate_give_the_same_answers(
    case: Case, store: RedisStore, reader: DecisionReader, runner: asyncio.Runner
) -> None:
    runner.run(_decide_both_ways(store, reader, case))


def test_a_permit_without_a_restriction_is_an_allow_that_names_no_exemption(
    store: RedisStore, reader: DecisionReader, runner: asyncio.Runner
) -> None:
    """Spelled out, since it is where the two rules once disagreed: the script named the permit."""

    async def decide() -> None:
        ref = SubjectRef(IdKind.RIC, _fresh_pseudonym(), "a3f")
        permit = _exemption(T - 10, T + 10)
        await store.apply_index([IndexChange(ref, permit.kind, permit.id, None, permit)])
        [decision] = await store.decide([LoggedCheck(CheckQuery(ref, G_TRAIN, T), "rule-test", 0)], CATALOGUE.version)
        assert (decision.outcome, decision.grounds, decision.exemption) == (Outcome.ALLOW, (), None)
        assert evaluate([permit], G_TRAIN.mask, T).exemption is None
        assert (
            await reader.get(IDS.of_internal([decision.decision_id])[0])
        ).exemption is None  # nor does the log list it as exempted

    runner.run(decide())
