"""Distinct subjects per caller per hour: the figure that tells enumeration from ordinary use
(`debar_distinct_subjects{caller}`). A platform checking its own passengers touches about as many subjects as it
sells tickets; one walking a region's ID numbers touches a new subject with every check, and so does an insider
reading the registry or the decision log person by person.

Counted in Redis, a HyperLogLog per caller and hour (SubjectTally): the count holds across every replica (a caller
spread over three pods is one caller), costs at most 12 KiB per caller-hour whatever the number of subjects, and is
within about 1% (0.81% standard error). An in-process set per replica would need summing across pods, count a
subject seen by two pods twice and grow with every subject. The hot path never waits for it: `saw` only buffers,
and `keep_flushing` adds the buffer to Redis once a second (one pipelined call); a flush that fails keeps its
subjects for the next (at most MAX_BUFFERED pseudonyms are held; beyond that they are dropped and counted). A failed
flush is logged (the first of a run of failures, then once a minute while they go on, and the recovery), and so
are subjects dropped: the figure an alert watches never goes quiet unexplained."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from debar.sanction.app.ports import StoreUnavailable, SubjectTally

HOUR_S = 3600
MAX_BUFFERED = 1_000_000
FLUSH_EVERY_S = 1.0
LOG_EVERY_S = 60.0  # while flushes keep failing, one line a minute (not one a second)

log = logging.getLogger("debar.audit")


class DistinctSubjects:
    def __init__(
        self, tally: SubjectTally, clock: Callable[[], float] = time.time, max_buffered: int = MAX_BUFFERED
    ) -> None:
        self._tally = tally
        self._clock = clock
        self._max = max_buffered
        self._buffer: dict[int, dict[str, set[str]]] = {}  # hour -> caller -> pseudonyms
        self._buffered = 0
        self.dropped = 0  # pseudonyms not counted: the buffer was full, or their hour passed (Redis away for long)
        self.failed_flushes = 0  # in the current run of failures (0: the last flush went through)
        self._logged_at = float("-inf")

    def hour(self) -> int:
        return int(self._clock() // HOUR_S)

    def saw(self, caller: str, pseudonyms: Iterable[str]) -> None:
        """`caller` (a rate key: `railway/platform:12306` when delegated) touched these subjects now."""
        found = self._buffer.setdefault(self.hour(), {}).setdefault(caller, set())
        for pseudonym in pseudonyms:
            if not pseudonym or pseudonym in found:
                continue
            if self._buffered >= self._max:
                self.dropped += 1
                continue
            found.add(pseudonym)
            self._buffered += 1

    async def flush(self) -> None:
        """Adds what was buffered to the tally; on failure, keeps it for the next flush (the current hour's and the
        previous one's only: an older hour's count is no longer read)."""
        buffer, self._buffer, self._buffered = self._buffer, {}, 0
        failure: StoreUnavailable | None = None
        for hour, seen in sorted(buffer.items()):
            if not seen:
                continue
            try:
                await self._tally.add(hour, {caller: sorted(p) for caller, p in seen.items()})
            except StoreUnavailable as error:
                failure = error
                if hour >= self.hour() - 1:
                    for caller, pseudonyms in seen.items():
                        self.saw_at(hour, caller, pseudonyms)
                else:
                    lost = sum(len(p) for p in seen.values())
                    self.dropped += lost
                    log.warning("distinct subjects: %d subjects of hour %d not counted (its flush failed)", lost, hour)
        if failure is not None:
            self._failed(failure)
        elif self.failed_flushes and buffer:
            log.info("distinct subjects: flushed again after %d failed flushes", self.failed_flushes)
            self.failed_flushes = 0

    def _failed(self, error: StoreUnavailable) -> None:
        self.failed_flushes += 1
        now = time.monotonic()
        if self.failed_flushes == 1 or now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "distinct subjects: flush failed (%d in a row), %d subjects kept for the next, %d dropped so far: %s",
                self.failed_flushes, self._buffered, self.dropped, error,
            )  # fmt: skip

    def saw_at(self, hour: int, caller: str, pseudonyms: set[str]) -> None:
        found = self._buffer.setdefault(hour, {}).setdefault(caller, set())
        room = max(0, self._max - self._buffered)
        new = pseudonyms - found
        kept = set(list(new)[:room])
        self.dropped += len(new) - len(kept)
        found |= kept
        self._buffered += len(kept)

    async def counts(self) -> dict[str, int]:
        """Each caller seen this hour -> its distinct subjects so far (for the metric). Raises StoreUnavailable."""
        return await self._tally.counts(self.hour())


async def keep_flushing(distinct: DistinctSubjects, every_s: float = FLUSH_EVERY_S) -> None:
    """Runs until cancelled; a flush that raises something unexpected is logged and the loop goes on."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await distinct.flush()
        except Exception:  # the figure is for alerts; the service goes on without it
            log.exception("distinct subjects: flush failed")
