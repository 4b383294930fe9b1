"""The sanction core wired by its bootstrap on the in-memory ports (tests/support/memory.py), for unit tests of
the use cases: no Redis, no gRPC, time as the test says."""

from __future__ import annotations

import calendar

import pytest

from debar.common.identifiers import Pseudonymiser, parse_keys
from debar.sanction.bootstrap import Core, build_core
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.subjects import SubjectResolver
from tests.support.memory import ManualClock, MemoryBackend

# A Monday morning (UTC), so that working days are easy to count.
MONDAY = calendar.timegm((2026, 3, 2, 9, 0, 0))
TEST_KEYS = "t1:test-secret-one"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
def backend(clock: ManualClock) -> MemoryBackend:
    return MemoryBackend(clock)


@pytest.fixture
def core(backend: MemoryBackend, clock: ManualClock) -> Core:
    resolver = SubjectResolver(Pseudonymiser(parse_keys(TEST_KEYS)))
    return build_core(backend.adapters(), load_default_catalogue(), resolver, clock=clock)
