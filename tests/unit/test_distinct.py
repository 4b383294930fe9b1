"""Distinct subjects per caller and hour (app/distinct.py): buffered in the process, added to the tally (memory
here, a HyperLogLog in Redis in the service), kept across a failed flush, bounded."""

from __future__ import annotations

from debar.sanction.app.distinct import HOUR_S, DistinctSubjects
from tests.support.memory import MemoryBackend

NOW = 1_764_250_000.0


async def test_subjects_count_once_per_caller_and_hour():
    backend = MemoryBackend()
    clock = [NOW]
    distinct = DistinctSubjects(backend.subject_tally, clock=lambda: clock[0])
    distinct.saw("railway/platform:12306", ["p1", "p2", "p1"])
    distinct.saw("railway/platform:trip", ["p1"])
    assert await distinct.counts() == {}  # nothing until flushed: the hot path never waits for Redis
    await distinct.flush()
    distinct.saw("railway/platform:12306", ["p2", "p3"])
    await distinct.flush()
    assert await distinct.counts() == {"railway/platform:12306": 3, "railway/platform:trip": 1}
    clock[0] += HOUR_S
    assert await distinct.counts() == {}  # a new hour starts from nothing


async def test_a_failed_flush_keeps_its_subjects_for_the_next():
    backend = MemoryBackend()
    distinct = DistinctSubjects(backend.subject_tally, clock=lambda: NOW)
    distinct.saw("scraper", ["p1", "p2"])
    backend.down = True
    await distinct.flush()
    backend.down = False
    await distinct.flush()
    assert await distinct.counts() == {"scraper": 2}


async def test_the_buffer_is_bounded_and_counts_what_it_drops():
    backend = MemoryBackend()
    distinct = DistinctSubjects(backend.subject_tally, clock=lambda: NOW, max_buffered=3)
    distinct.saw("scraper", [f"p{i}" for i in range(5)])
    assert distinct.dropped == 2
    await distinct.flush()
    assert await distinct.counts() == {"scraper": 3}


async def test_a_failed_flush_is_logged_and_so_is_the_recovery(caplog):
    """Before: a flush that failed (StoreUnavailable) kept its subjects and said nothing, so on Redis Cluster the
    figure stayed 0 with an empty log."""
    backend = MemoryBackend()
    distinct = DistinctSubjects(backend.subject_tally, clock=lambda: NOW)
    distinct.saw("scraper", ["p1", "p2"])
    backend.down = True
    with caplog.at_level("INFO", logger="debar.audit"):
        await distinct.flush()
        await distinct.flush()  # the second failure in a row within the minute: no second line
        failed = [r.getMessage() for r in caplog.records if "flush failed" in r.getMessage()]
        assert len(failed) == 1 and "2 subjects kept" in failed[0] and "memory backend: down" in failed[0]
        assert distinct.failed_flushes == 2
        backend.down = False
        await distinct.flush()
    assert any("flushed again after 2 failed flushes" in r.getMessage() for r in caplog.records)
    assert distinct.failed_flushes == 0 and await distinct.counts() == {"scraper": 2}


async def test_subjects_of_an_hour_past_are_dropped_counted_and_logged(caplog):
    backend = MemoryBackend()
    clock = [NOW]
    distinct = DistinctSubjects(backend.subject_tally, clock=lambda: clock[0])
    distinct.saw("scraper", ["p1", "p2"])
    clock[0] += 2 * HOUR_S
    backend.down = True
    with caplog.at_level("WARNING", logger="debar.audit"):
        await distinct.flush()
    assert distinct.dropped == 2
    assert any("2 subjects of hour" in r.getMessage() for r in caplog.records)
