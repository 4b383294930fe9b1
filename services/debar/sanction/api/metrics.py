"""The sanction service's Prometheus metrics, registered on the CollectorRegistry its wiring creates: checks by
measure, outcome and degradation; Redis errors; spooled and replayed decisions (SpoolStats); access denials and
rate limiting (AccessStats); objections by state and overdue (read when scraped, cached briefly); imports; distinct
subjects per caller and hour."""

from __future__ import annotations

import asyncio
import collections
import logging
import operator
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from debar.sanction.api.access import AccessStats
from debar.sanction.app.failopen import SpoolStats
from debar.sanction.app.integrator import IntegratorHealth
from debar.sanction.app.watch import WatchStats
from debar.sanction.domain.decisions import Decision

log = logging.getLogger("debar.metrics")


_LABELS = operator.attrgetter("query.measure.code", "outcome._value_", "degradation._value_")


class CheckMetrics:
    """The Checker's observer (see checker.CheckObserver), and the count of Redis errors by operation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.checks = Counter(
            "debar_checks",
            "Check decisions, by measure, outcome (ALLOW, DENY) and degradation (none, failed_open_spooled)",
            ["measure", "outcome", "degradation"],
            registry=registry,
        )
        self.redis_errors = Counter(
            "debar_redis_errors",
            "Store calls that Redis did not answer (StoreUnavailable), by operation",
            ["operation"],
            registry=registry,
        )
        self._children: dict[tuple[str, str, str], Any] = {}

    def decided(self, decisions: Sequence[Decision]) -> None:
        # A batch's decisions fall in a few label sets: one label lookup and increment per set, not per decision;
        # each set's child is kept (prometheus_client's labels() takes a lock and builds a key every time).
        if len(decisions) == 1:
            d = decisions[0]
            self._child((d.query.measure.code, d.outcome.value, d.degradation.value)).inc()
            return
        counts = collections.Counter(map(_LABELS, decisions))  # in C: no Python frame per decision
        for labels, count in counts.items():
            self._child(labels).inc(count)

    def _child(self, labels: tuple[str, str, str]) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.checks.labels(*labels)
        return child

    def store_unavailable(self) -> None:
        self.redis_errors.labels("check").inc()

    def redis_error(self, operation: str) -> None:
        self.redis_errors.labels(operation).inc()


class StatsCollector(Collector):
    """Exposes the plain counters the use cases keep (SpoolStats, AccessStats), read at scrape time."""

    def __init__(self, spool: SpoolStats, access: AccessStats) -> None:
        self._spool = spool
        self._access = access

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "debar_spooled_decisions", "Fail-open decisions allowed and spooled while Redis was unreachable",
            value=self._spool.spooled,
        )  # fmt: skip
        yield CounterMetricFamily(
            "debar_replayed_decisions", "Spooled decisions replayed into the decision log", value=self._spool.replayed
        )
        a = self._access
        yield CounterMetricFamily(
            "debar_access_unauthenticated", "Calls refused as UNAUTHENTICATED", value=a.unauthenticated
        )
        denied = CounterMetricFamily(
            "debar_access_denied",
            "PERMISSION_DENIED: a method (call), a checked measure (check), on-behalf-of without delegate (delegation)",
            labels=["kind"],
        )
        denied.add_metric(["call"], a.denied_calls)
        denied.add_metric(["check"], a.denied_checks)
        denied.add_metric(["delegation"], a.denied_delegations)
        yield denied
        yield CounterMetricFamily(
            "debar_rate_limited", "Calls refused by the caller's check rate (RESOURCE_EXHAUSTED)", value=a.rate_limited
        )
        flagged = CounterMetricFamily(
            "debar_rate_limited_by_caller", "Rate-limited calls per caller", labels=["caller"]
        )
        for caller, count in sorted(a.flagged.items()):
            flagged.add_metric([caller], count)
        yield flagged
        yield CounterMetricFamily(
            "debar_rate_limiter_failures",
            "Calls the rate counters did not answer for (let through, or UNAVAILABLE with the policy closed)",
            value=a.limiter_failures,
        )  # fmt: skip


ObjectionCounts = tuple[dict[str, int], int]  # per state, and overdue
T = TypeVar("T")


class ReadWhenScraped(Collector, Generic[T]):
    """Figures read from Redis when scraped. The scrape runs in the metrics server's thread: the reading is handed
    to the service's event loop, and its result kept for `ttl_s` so that frequent scrapes cost nothing; a failed
    read serves the previous figures, and is logged (a figure that stops moving must say why)."""

    def __init__(
        self,
        read: Callable[[], Coroutine[Any, Any, T]],
        loop: asyncio.AbstractEventLoop,
        ttl_s: float = 15.0,
        timeout_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._loop = loop
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._counts: T | None = None
        self._read_at = float("-inf")

    def counts(self) -> T | None:
        with self._lock:
            if self._clock() - self._read_at >= self._ttl_s:
                self._read_at = self._clock()
                try:
                    future = asyncio.run_coroutine_threadsafe(self._read(), self._loop)
                    self._counts = future.result(self._timeout_s)
                except Exception as error:  # keep the previous figures; the next scrape after the ttl tries again
                    log.warning("%s: reading the figures failed: %r", type(self).__name__, error)
            return self._counts

    def collect(self) -> Iterator[Metric]:
        counts = self.counts()
        if counts is not None:
            yield from self.families(counts)

    def families(self, counts: T) -> Iterator[Metric]:
        raise NotImplementedError


class ObjectionCollector(ReadWhenScraped[ObjectionCounts]):
    """Objections by state, and how many are overdue now."""

    def families(self, counts: ObjectionCounts) -> Iterator[Metric]:
        by_state, overdue = counts
        gauge = GaugeMetricFamily("debar_objections", "Objections by state", labels=["state"])
        for state, count in by_state.items():
            gauge.add_metric([state], count)
        yield gauge
        yield GaugeMetricFamily("debar_objections_overdue", "Objections past a deadline now", value=overdue)


class ImportCollector(ReadWhenScraped[dict[str, int]]):
    """Import lines by result, over every `debar import` (and `debar up`'s demo data) into this Redis: imports are
    short commands without a metrics port, so they add their counts to Redis and the sanction service exports
    them."""

    def families(self, counts: dict[str, int]) -> Iterator[Metric]:
        lines = CounterMetricFamily("debar_import_lines", "Import lines, by result", labels=["result"])
        for result in ("added", "updated", "unchanged", "rejected"):
            lines.add_metric([result], counts.get(result, 0))
        yield lines


class LogCollector(Collector):
    """The log integrator's figures (IntegratorHealth), read at scrape time: missing cosignatures by witness and
    kind, the tree's size, the latest checkpoint's size and age, leaves integrated and the CPU time spent on them,
    and whether the integrator is healthy (0 while it refuses a tree or the store does not answer)."""

    def __init__(self, health: IntegratorHealth, clock: Callable[[], float] = time.time) -> None:
        self._health = health
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        h = self._health
        failures = CounterMetricFamily(
            "debar_log_witness_failures",
            "Checkpoints a witness gave no cosignature for, by witness and kind (unreachable, timeout, refused, "
            "conflict, bad_answer, no_proof); the checkpoint was stored without it",
            labels=["witness", "kind"],
        )
        for (witness, kind), count in sorted(h.failures.items()):
            failures.add_metric([witness, kind.value], count)
        yield failures
        yield GaugeMetricFamily("debar_log_tree_size", "Leaves in the log's Merkle tree", value=h.tree_size)
        yield GaugeMetricFamily(
            "debar_log_checkpoint_size", "Tree size of the latest signed checkpoint", value=h.checkpoint_size or 0
        )
        age = GaugeMetricFamily("debar_log_checkpoint_age_seconds", "Seconds since this process signed a checkpoint")
        if h.checkpoint_at is not None:
            age.add_metric([], max(0.0, self._clock() - h.checkpoint_at))
        yield age
        yield GaugeMetricFamily("debar_log_integrator_healthy", "1 unless refusing or unavailable", value=h.healthy)
        yield CounterMetricFamily("debar_log_integrated_leaves", "Leaves integrated by this process", value=h.leaves)
        yield CounterMetricFamily(
            "debar_log_unreadable_records",
            "Stream records no reader could turn into log entries (written behind the service's back), integrated "
            "by this process as one opaque entry each; debar log verify names them",
            value=h.unreadable,
        )
        yield CounterMetricFamily(
            "debar_log_integrator_cpu_seconds", "Process CPU time of integration steps that added leaves", value=h.cpu_s
        )


class DistinctCollector(ReadWhenScraped[dict[str, int]]):
    """Distinct subjects each caller checked or read this hour, across replicas (app/distinct.py): the figure the
    enumeration alert watches (deploy/prometheus/debar-alerts.yaml). Every replica exports the same Redis figure:
    aggregate with max, not sum."""

    def families(self, counts: dict[str, int]) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "debar_distinct_subjects",
            "Distinct subjects checked or read per caller in the current hour (HyperLogLog, about 1% error)",
            labels=["caller"],
        )
        for caller, count in sorted(counts.items()):
            gauge.add_metric([caller], count)
        yield gauge


class WatchCollector(Collector):
    """Subscriptions (WatchStats), read at scrape time: this process's counts."""

    def __init__(self, stats: WatchStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        w = self._stats
        yield CounterMetricFamily("debar_watch_subscribed", "Subscriptions made", value=w.subscribed)
        yield CounterMetricFamily("debar_watch_judged", "Watched subjects judged (a write or a window)", value=w.judged)
        yield CounterMetricFamily(
            "debar_watch_decisions", "Logged checks made for subscriptions whose standing seemed to change",
            value=w.decided,
        )  # fmt: skip
        told = CounterMetricFamily("debar_watch_changes", "Changes told, by kind", labels=["kind"])
        told.add_metric(["became_restricted"], w.restricted)
        told.add_metric(["no_longer_restricted"], w.lifted)
        yield told
        yield GaugeMetricFamily("debar_watch_streams", "Changes streams open", value=w.streams)


class ReplicationCollector(Collector):
    """Writes refused because fewer replicas than DEBAR_REDIS_MIN_REPLICAS confirmed them in time (Adapters.
    writes_unreplicated), read at scrape time: this process's count. Each was answered UNAVAILABLE (or spooled, a
    fail-open check), never acknowledged."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "debar_writes_unreplicated",
            "Writes refused because too few replicas confirmed them in time (DEBAR_REDIS_MIN_REPLICAS)",
            value=self._count(),
        )
