"""Figures read from Redis when scraped (api/metrics.py ReadWhenScraped): a failed read serves the previous figures
and is logged, never silently dropped."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from debar.sanction.api.metrics import DistinctCollector
from debar.sanction.app.ports import StoreUnavailable


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_a_failed_read_serves_the_previous_figures_and_is_logged(loop, caplog):
    answers: list[dict[str, int] | Exception] = [{"scraper": 7}, StoreUnavailable("redis: refused")]

    async def read() -> dict[str, int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = [0.0]
    collector = DistinctCollector(read, loop, ttl_s=5.0, clock=lambda: clock[0])
    assert collector.counts() == {"scraper": 7}
    clock[0] += 5.0
    with caplog.at_level(logging.WARNING, logger="debar.metrics"):
        assert collector.counts() == {"scraper": 7}
    assert any("DistinctCollector" in r.getMessage() and "redis: refused" in r.getMessage() for r in caplog.records)
