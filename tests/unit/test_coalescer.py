"""Concurrent checks share store calls once the call slots are busy; failures reach every waiting check."""

from __future__ import annotations

import asyncio

import pytest

from debar.common.identifiers import IdKind
from debar.sanction.app.coalescer import CoalescingDecider
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decisions import CheckQuery, Decision, LoggedCheck
from debar.sanction.domain.model import Outcome, SubjectRef

MEASURE = load_default_catalogue().measure("RAIL_G_TRAIN")


def check(n: int) -> LoggedCheck:
    return LoggedCheck(CheckQuery(SubjectRef(IdKind.RIC, f"k.{n}", "abc"), MEASURE, 1_800_000_000), "t", 1)


class SlowStore:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    async def decide(self, checks, catalogue_version, rates=(), names=None):  # type: ignore[no-untyped-def]
        self.calls.append(len(checks))
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("redis went away")
        prefixes = names("1-0", "abc", len(checks)) if names else ["d"] * len(checks)
        return [
            Decision(f"{p}-{c.query.subject.pseudonym}", c.query, Outcome.ALLOW, (), None, 0, 1, catalogue_version)
            for p, c in zip(prefixes, checks, strict=True)
        ]


class Namer:
    """A checker's naming of decisions (DecisionIds.of_record), told apart by its name."""

    def __init__(self, name: str) -> None:
        self.name = name

    def of_record(self, stream_id: str, bucket: str, count: int) -> list[str]:
        return [self.name] * count


async def test_checks_beyond_the_call_slots_share_calls_and_get_their_own_answers():
    store = SlowStore()
    decider = CoalescingDecider(store, "v", max_calls=2)
    results = await asyncio.gather(*(decider.decide([check(n)], "v") for n in range(20)))
    assert [r[0].decision_id for r in results] == [f"d-k.{n}" for n in range(20)]
    assert sum(store.calls) == 20
    assert len(store.calls) < 20


async def test_a_lone_check_goes_out_at_once():
    store = SlowStore()
    decider = CoalescingDecider(store, "v")
    [decision] = await decider.decide([check(1)], "v")
    assert decision.decision_id == "d-k.1" and store.calls == [1]


async def test_a_failed_call_fails_every_check_in_it():
    decider = CoalescingDecider(SlowStore(fail=True), "v", max_calls=1)
    results = await asyncio.gather(*(decider.decide([check(n)], "v") for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)


async def test_big_batches_are_not_merged_past_the_limit():
    store = SlowStore()
    decider = CoalescingDecider(store, "v", max_calls=1, max_items=10)
    await asyncio.gather(*(decider.decide([check(n * 10 + k) for k in range(6)], "v") for n in range(4)))
    assert max(store.calls) <= 10 and sum(store.calls) == 24


@pytest.mark.parametrize("version", ["other"])
async def test_another_catalogue_version_is_not_mixed_in(version):
    store = SlowStore()
    decider = CoalescingDecider(store, "v")
    [decision] = await decider.decide([check(1)], version)
    assert decision.catalogue_version == version


async def test_calls_sharing_a_store_call_are_named_alike():
    """A store call names all its decisions one way: calls whose decisions are named otherwise (another checker's
    ids) wait for a call of their own, and each check gets its ids named its own way."""
    store = SlowStore()
    decider = CoalescingDecider(store, "v", max_calls=1)
    first, second = Namer("first"), Namer("second")
    results = await asyncio.gather(
        *(decider.decide([check(n)], "v", (), (first if n % 2 else second).of_record) for n in range(10))
    )
    assert [r[0].decision_id for r in results] == [f"{'first' if n % 2 else 'second'}-k.{n}" for n in range(10)]
    assert sum(store.calls) == 10
    assert len(store.calls) < 10  # still shared: the first lone call, then one call per naming
