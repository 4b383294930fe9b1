"""What a check does when the decision log cannot be written. A fail-closed measure (the default) refuses to
answer: UNAVAILABLE. A fail-open measure allows, writes the decision to the local spool before answering, and says
so in the answer; the spool is replayed into the log when Redis is back, so no decision is lost either way."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from debar.sanction.app.ports import Replayer, Spool, StoreUnavailable
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import Decision, Degradation, LoggedCheck, SpooledDecision
from debar.sanction.domain.model import Outcome

log = logging.getLogger("debar.failopen")


@dataclass
class SpoolStats:
    spooled: int = 0
    replayed: int = 0


class FailOpen:
    def __init__(
        self, spool: Spool, stats: SpoolStats, ids: DecisionIds, clock: Callable[[], float] = time.time
    ) -> None:
        """`ids`: names each spooled decision with an id of 96 random bits (domain/decision_ids.py)."""
        self._ids = ids
        self._spool = spool
        self.stats = stats
        self._clock = clock

    def allow_and_spool(self, checks: Sequence[LoggedCheck], catalogue_version: str) -> list[Decision]:
        """Raises OSError when the spool cannot be written: then the checks get no answer either."""
        now_ms = int(self._clock() * 1000)
        spooled = [SpooledDecision(self._ids.new_spooled(c.query.subject.bucket), c, now_ms) for c in checks]
        self._spool.append(spooled)
        self.stats.spooled += len(spooled)
        log.warning("redis unreachable: %d fail-open decision(s) allowed and spooled", len(spooled))
        return [
            Decision(
                decision_id=s.decision_id,
                query=s.check.query,
                outcome=Outcome.ALLOW,
                grounds=(),
                exemption=None,
                decided_at_ms=now_ms,
                revision=s.check.revision,
                catalogue_version=catalogue_version,
                degradation=Degradation.FAILED_OPEN_SPOOLED,
            )
            for s in spooled
        ]


class SpoolReplay:
    """Moves spooled decisions into the log. Idempotent: safe to run again after any failure."""

    BATCH = 200

    def __init__(self, spool: Spool, store: Replayer, stats: SpoolStats, catalogue_version: str) -> None:
        self._spool = spool
        self._store = store
        self.stats = stats
        self._catalogue_version = catalogue_version

    async def replay_pending(self) -> int:
        replayed = 0
        for path in self._spool.pending_files():
            entries = self._spool.read(path)
            for start in range(0, len(entries), self.BATCH):
                chunk = entries[start : start + self.BATCH]
                for group in _by_chain(chunk):
                    replayed += await self._store.replay(group, self._catalogue_version)
            self._spool.done(path)
        if replayed:
            self.stats.replayed += replayed
            log.info("replayed %d spooled decision(s) into the log", replayed)
        return replayed


async def keep_replaying(replay: SpoolReplay, interval_s: float = 1.0) -> None:
    """Replays the spool whenever there is something in it and Redis answers, until cancelled. Its own task, not
    part of the health probe: a long replay must neither be cut short by the probe's timeout nor hold health up."""
    while True:
        try:
            await replay.replay_pending()
        except StoreUnavailable:
            pass  # Redis still away: the spool waits, health says so
        except Exception:  # e.g. CLUSTERDOWN or READONLY during a failover: the task must outlive it
            log.exception("spool replay failed; retrying in %.0f s", interval_s)
        await asyncio.sleep(interval_s)


def _by_chain(entries: Sequence[SpooledDecision]) -> list[list[SpooledDecision]]:
    """One replay call per bucket keeps each call's keys in one slot (Redis Cluster safe)."""
    groups: dict[str, list[SpooledDecision]] = {}
    for entry in entries:
        groups.setdefault(entry.check.query.subject.bucket, []).append(entry)
    return list(groups.values())
