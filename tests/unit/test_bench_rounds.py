"""The benchmark's arithmetic and its generator check, on scripted figures: medians of round-by-round ratios,
percentiles, and how many generator processes the check settles on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from debar.bench.generator import Load, Sample
from debar.bench.rounds import RISE, Round, Summary, Target, check_generators, count_failures, fastest

LOAD = Load("127.0.0.1:1", "/debar.v1.SanctionService/Check", b"\n\x02", 16)


def _summary(rates: list[float], latencies_s: list[float] | None = None) -> Summary:
    rounds = [Round([Sample(int(rate), 1.0, latencies_s or [0.001], 0.5)], 1.0, {}, None) for rate in rates]
    return Summary("x", 16, rounds)


def test_a_ratio_is_the_median_of_the_round_by_round_ratios() -> None:
    debar, bare = _summary([100, 200, 300]), _summary([400, 400, 300])
    assert debar.ratio_to(bare) == 0.5  # 0.25, 0.5, 1.0; the ratio of the medians would say 0.67


def test_the_fastest_baseline_is_the_one_the_other_falls_short_of_round_by_round() -> None:
    steady, jumpy = _summary([3000, 3000, 3000]), _summary([3300, 3300, 1000])  # jumpy: one round disturbed
    assert fastest([steady, jumpy]) is jumpy  # faster in two rounds of three
    later = _summary([2900, 2900, 9000])  # a higher mean, yet slower in two rounds of three
    assert fastest([steady, later]) is steady


def test_percentiles_come_from_every_timed_call() -> None:
    summary = _summary([1, 1], [i / 1000 for i in range(1, 101)])  # 1..100 ms, twice
    assert summary.latency_ms(0.5) == 51
    assert summary.latency_ms(0.99) == 100


class ScriptedGenerators:
    """Answers every load at `rate(target address, processes)` calls/s, split evenly over the processes."""

    def __init__(self, rate: Callable[[str, int], float]) -> None:
        self._rate = rate
        self.asked: list[tuple[str, int]] = []

    sees_grpc_status = True
    name = "scripted"

    def run(self, load: Load, seconds: float, processes: int = 1, on_start: Any = None) -> list[Sample]:
        self.asked.append((load.address, processes))
        share = self._rate(load.address, processes) / processes
        return [Sample(int(share), 1.0, [0.001], 0.9) for _ in range(processes)]


def _check(rate: Callable[[str, int], float]) -> tuple[Any, ScriptedGenerators]:
    generators = ScriptedGenerators(rate)
    bare = [Target("bare aio", LOAD), Target("bare sync", Load("127.0.0.1:2", LOAD.method, LOAD.request, 16))]
    return check_generators(generators, bare, rounds=3, seconds=1.0), generators


def test_a_baseline_that_does_not_rise_with_a_second_generator_keeps_one() -> None:
    check, generators = _check(lambda address, n: 3000.0 if address.endswith(":1") else 4000.0)
    assert (check.chosen, check.bottleneck) == (1, False)
    assert {n for _, n in generators.asked} == {1, 2}
    assert "using 1" in check.lines()[-1]


def test_a_baseline_that_rises_with_a_second_generator_uses_two_if_a_third_adds_nothing() -> None:
    check, generators = _check(lambda address, n: 3000.0 * min(n, 2) * RISE)
    assert (check.chosen, check.bottleneck) == (2, False)
    assert ("127.0.0.1:1", 3) in generators.asked  # the fastest was tried with a third


def test_a_baseline_still_rising_at_the_most_generators_is_reported_as_a_bottleneck() -> None:
    check, _ = _check(lambda address, n: 1000.0 * n)
    assert (check.chosen, check.bottleneck) == (3, True)
    assert "may be the bottleneck" in check.lines()[-1]


def test_calls_the_server_answered_with_an_error_are_failures_not_throughput() -> None:
    """For a generator that sees HTTP only (h2load): the server's per-status counts over the window decide."""
    samples = [Sample(1000, 1.0, [0.001] * 1000, 0.1)]
    before = {"OK": 50.0, "RESOURCE_EXHAUSTED": 2.0}
    after = {"OK": 1020.0, "RESOURCE_EXHAUSTED": 22.0, "CANCELLED": 16.0}  # cancelled: dropped at the window's end
    count_failures(samples, before, after)
    assert samples[0].calls == 980
    assert samples[0].errors == {"RESOURCE_EXHAUSTED": 20}


def test_each_step_of_the_check_compares_figures_from_the_same_rounds() -> None:
    """The machine gets busier after the first step: the second compares 2 and 3 generators as measured then,
    not the first step's 2 with a later 3."""
    generators = ScriptedGenerators(lambda address, n: 0.0)
    first_step_calls = 2 * 2 * 3  # two baselines, 1 and 2 generators, three rounds

    def rate(address: str, n: int) -> float:
        busy = len(generators.asked) > first_step_calls
        return 600.0 if busy else 1000.0 * n

    generators._rate = rate
    bare = [Target("bare aio", LOAD), Target("bare sync", Load("127.0.0.1:2", LOAD.method, LOAD.request, 16))]
    check = check_generators(generators, bare, rounds=3, seconds=1.0)
    assert check.chosen == 2 and not check.bottleneck
    lines = check.lines()
    assert "bare aio: 1 generator 1,000/s, 2: 2,000/s, x2.00 round by round" in lines[0]
    assert "bare aio: 2 generators 600/s, 3: 600/s, x1.00 round by round" in lines[2]
