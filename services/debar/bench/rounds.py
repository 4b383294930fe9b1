"""Alternating rounds: every target gets the same load in turn, round after round within one run (ABC, CBA, ...,
so that drift in the machine's load falls on all alike), and what is reported is medians over rounds. Also the
check that the load generator is not what limits the fastest target."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from debar.bench.generator import Load, LoadGenerator, Sample
from debar.bench.targets import cpu_seconds, machine_busy_seconds

RISE = 1.05  # a second generator process that raises the baseline by more than this: one was the bottleneck
MOST_GENERATORS = 3
SETTLE_S, SETTLE_READS = 0.05, 20  # the server's counters read again until two reads agree (at most 1 s more)


@dataclass(frozen=True)
class Target:
    """A load on one server; `pids` names the processes whose CPU is counted per call (e.g. server, redis)."""

    label: str
    load: Load
    pids: dict[str, int] = field(default_factory=dict)
    processes: int = 1  # generator processes sharing the load's calls in flight
    # the server's own count of answered calls by status code, for a generator that cannot see gRPC statuses
    answered: Callable[[], dict[str, float]] | None = None
    settle: Callable[[], None] | None = None  # called before each of its rounds, before the clock starts


@dataclass
class Round:
    samples: list[Sample]
    seconds: float
    cpu_s: dict[str, float | None]
    others_cores: float | None  # what the rest of the machine kept busy meanwhile (other people's work)

    @property
    def calls(self) -> int:
        return sum(s.calls for s in self.samples)

    @property
    def rate(self) -> float:
        return sum(s.rate for s in self.samples)

    @property
    def generator_busy(self) -> float:
        """The busiest generator process's CPU, as a share of one core."""
        return max(s.cpu_s / s.seconds for s in self.samples if s.seconds)


@dataclass
class Summary:
    label: str
    in_flight: int
    rounds: list[Round]

    @property
    def rates(self) -> list[float]:
        return [r.rate for r in self.rounds]

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def latency_ms(self, q: float) -> float:
        ordered = sorted(latency for r in self.rounds for s in r.samples for latency in s.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")

    def cpu_us_per_call(self, name: str) -> float | None:
        spent = [r.cpu_s.get(name) for r in self.rounds]
        if not spent or any(s is None for s in spent):
            return None
        calls = sum(r.calls for r in self.rounds)
        return sum(s for s in spent if s is not None) / calls * 1e6 if calls else None

    @property
    def errors(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for r in self.rounds:
            for s in r.samples:
                total.update(s.errors)
        return dict(total)

    @property
    def others_cores(self) -> float | None:
        seen = [r.others_cores for r in self.rounds if r.others_cores is not None]
        return statistics.median(seen) if seen else None

    @property
    def last_response(self) -> bytes:
        return self.rounds[-1].samples[-1].last_response

    def ratio_to(self, other: Summary) -> float:
        """The median of the round-by-round ratios: each round's two figures were measured minutes apart at most."""
        return statistics.median(a / b for a, b in zip(self.rates, other.rates, strict=True) if b)


def fastest(summaries: Sequence[Summary]) -> Summary:
    """The one the others fall short of, round by round (the median of each one's ratios to the others); with
    noisy rounds this can differ from the one with the highest median rate, and the ratios reported are paired."""
    if len(summaries) == 1:
        return summaries[0]
    return max(summaries, key=lambda s: statistics.median(s.ratio_to(o) for o in summaries if o is not s))


def measure(generators: LoadGenerator, target: Target, seconds: float) -> Round:
    if target.settle is not None:
        target.settle()
    before: dict[str, float | None] = {}
    counted = target.answered if not generators.sees_grpc_status else None
    answered_before: dict[str, float] = {}

    def read_counters() -> None:
        # The server's counters first: its /metrics scrape (the bench's doing, which no bare handler pays) is then
        # not in the round's CPU per call (it was 7-10 % of a short round's server samples).
        if counted is not None:
            answered_before.update(counted())
        before.update({name: cpu_seconds(pid) for name, pid in target.pids.items()})
        before["machine"] = machine_busy_seconds()

    samples = generators.run(target.load, seconds, target.processes, on_start=read_counters)
    spent: dict[str, float | None] = {}
    for name, pid in target.pids.items():
        now, then = cpu_seconds(pid), before.get(name)
        spent[name] = None if now is None or then is None else now - then
    if counted is not None:
        count_failures(samples, answered_before, settled(counted))
    if not any(s.calls for s in samples):
        errors = Counter[str]()
        for s in samples:
            errors.update(s.errors)
        raise RuntimeError(f"bench: {target.label}: no call was answered ({dict(errors)})")
    window = max(s.seconds for s in samples)
    return Round(samples, window, spent, _others(before.get("machine"), spent, samples, window))


def settled(counted: Callable[[], dict[str, float]]) -> dict[str, float]:
    """The server's per-status counters once they stop moving: a call the handler aborts has its status sent before
    the server counts it (grpc.aio's abort sends, then raises), so a read right after the generator's window could
    miss the last calls' failures and count them as throughput."""
    after = counted()
    for _ in range(SETTLE_READS):
        time.sleep(SETTLE_S)
        again = counted()
        if again == after:
            break
        after = again
    return after


def count_failures(samples: list[Sample], before: dict[str, float], after: dict[str, float]) -> None:
    """What the server answered with a non-OK status in the window is a failure the generator counted as done;
    CANCELLED are the calls the generator itself dropped at the end of its window."""
    failed = {code: int(n - before.get(code, 0)) for code, n in after.items() if code not in ("OK", "CANCELLED")}
    failed = {code: n for code, n in failed.items() if n > 0}
    if failed:
        first = samples[0]
        first.calls = max(0, first.calls - sum(failed.values()))
        first.errors = {**first.errors, **failed}


def _others(machine_before: float | None, spent: dict[str, float | None], samples: list[Sample],
            window: float) -> float | None:  # fmt: skip
    """Cores kept busy by everything but the target's processes and the generators, over the window."""
    machine_now = machine_busy_seconds()
    if machine_before is None or machine_now is None or None in spent.values() or not window:
        return None
    ours = sum(s for s in spent.values() if s is not None) + sum(s.cpu_s for s in samples)
    return max(0.0, (machine_now - machine_before - ours) / window)


def alternate(
    generators: LoadGenerator, targets: Sequence[Target], rounds: int, seconds: float,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Summary]:  # fmt: skip
    summaries = {t.label: Summary(t.label, t.load.in_flight, []) for t in targets}
    for n in range(rounds):
        for target in targets if n % 2 == 0 else reversed(targets):
            summaries[target.label].rounds.append(measure(generators, target, seconds))
        progress(f"round {n + 1}/{rounds}: " + ", ".join(f"{s.label} {s.rounds[-1].rate:,.0f}/s"
                                                         for s in summaries.values()))  # fmt: skip
    return summaries


@dataclass
class Step:
    """One baseline with `processes` and with one more generator process, in the same alternating rounds."""

    label: str
    processes: int
    fewer: Summary
    more: Summary

    @property
    def rise(self) -> float:
        return self.more.ratio_to(self.fewer)


@dataclass
class GeneratorCheck:
    """The bare baselines under 1 and 2 generator processes (the same calls in flight, split among them), then
    the fastest with one more while it still rose; `chosen`: the fewest processes one more of which does not raise
    the fastest baseline by more than RISE (the median of round-by-round ratios)."""

    chosen: int
    steps: list[Step]
    bottleneck: bool  # even the most processes tried still raised the baseline

    def lines(self) -> list[str]:
        out = []
        for step in self.steps:
            n = step.processes
            out.append(
                f"  {step.label}: {n} generator{'s' if n > 1 else ''} {step.fewer.rate:,.0f}/s, {n + 1}: "
                f"{step.more.rate:,.0f}/s, x{step.rise:.2f} round by round (the busiest generator at "
                f"{_busy(step.fewer):.0%} / {_busy(step.more):.0%} of a core)"
            )
        verdict = (
            f"the baseline still rose with {self.chosen} generator processes: the generator may be the "
            "bottleneck, and the ratios below flatter debar" if self.bottleneck
            else f"one more generator process did not raise the fastest baseline by more than {RISE - 1:.0%}: "
            f"{self.chosen} {'is' if self.chosen == 1 else 'are'} not the bottleneck; using {self.chosen}"
        )  # fmt: skip
        return [*out, f"  {verdict}"]


def _busy(summary: Summary) -> float:
    return statistics.median(r.generator_busy for r in summary.rounds)


def check_generators(
    generators: LoadGenerator, bare: Sequence[Target], rounds: int, seconds: float, most: int = MOST_GENERATORS,
    progress: Callable[[str], None] = lambda _: None,
) -> GeneratorCheck:  # fmt: skip
    """Every bare target with 1 and with 2 generator processes, in alternating rounds; while the fastest still
    rises by more than RISE with one more process, it is measured again with as many beside one more (up to
    `most`), so that every comparison is within one set of rounds."""

    def step(target: Target, processes: int, others: Sequence[Target] = ()) -> list[Step]:
        runs = [replace(t, label=f"{t.label}, {n} generator(s)", processes=n)
                for t in (target, *others) for n in (processes, processes + 1)]  # fmt: skip
        figures = list(alternate(generators, runs, rounds, seconds, progress).values())
        return [Step(t.label, processes, figures[2 * i], figures[2 * i + 1]) for i, t in enumerate((target, *others))]

    steps = step(bare[0], 1, bare[1:])
    best = fastest([summary for s in steps for summary in (s.fewer, s.more)])
    last = next(s for s in steps if best in (s.fewer, s.more))
    top = next(t for t in bare if t.label == last.label)
    chosen = 1
    while last.rise > RISE:
        chosen += 1
        if chosen == most:
            break
        last = step(top, chosen)[0]
        steps.append(last)
    return GeneratorCheck(chosen, steps, chosen == most and last.rise > RISE)
