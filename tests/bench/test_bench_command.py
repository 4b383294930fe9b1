"""`debar bench` and `debar bench railway` run end to end for a moment and print every figure they promise. A
smoke test of the instrument: the figures themselves are for `debar bench`, not for assertions."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

SHORT = ["--seconds", "0.5", "--rounds", "1"]  # a window a slow fsync on a CI disk does not empty
# a table row: target, in flight, calls/s, (min-max)
ROW = re.compile(r"(?P<target>bare aio|bare sync|floor: aio \+ 1 script call|debar, integrator off|debar|direct Check"
                 r"|direct BatchCheck\(2\)"
                 r"|railway CheckTicket)\s+(?P<in_flight>\d+)\s+(?P<rate>[\d,]+)\s+\([\d,]+-[\d,]+\)")  # fmt: skip


def _bench(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "debar.cli.main", "bench", *args, *SHORT],
                          capture_output=True, text=True, timeout=100)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _rows(out: str) -> list[tuple[str, int, float]]:
    return [(m["target"], int(m["in_flight"]), float(m["rate"].replace(",", ""))) for m in ROW.finditer(out)]


@pytest.mark.timeout(110)
def test_bench_prints_every_mix_beside_both_bare_baselines_and_the_generator_check() -> None:
    out = _bench("--generator", "python")  # the generator every machine has; railway below takes h2load if there
    rows = _rows(out)
    plain = ("bare aio", "bare sync", "floor: aio + 1 script call", "debar")
    with_unlogged = (*plain, "debar, integrator off")  # the first Check mix and BatchCheck(100)
    assert [(target, n) for target, n, _ in rows] == [
        (target, n) for n, mix in ((16, with_unlogged), (16, plain), (1, plain), (16, with_unlogged)) for target in mix
    ]
    assert all(rate > 0 for _, _, rate in rows)
    assert "subjects/s" in out and "vs fastest bare" in out and "vs bare aio" in out and "vs integrator off" in out
    # the log's cost, beside the other figures: debar against the same service with DEBAR_LOG_INTEGRATOR=off
    costs = [("Check, unrestricted, 16 in flight", "calls/s"), ("BatchCheck(100), 16 in flight", "subjects/s")]
    for mix, unit in costs:
        assert re.search(rf"the log's cost, {re.escape(mix)}: with the integrator [\d.]+ of without \([\d,]+ vs "
                         rf"[\d,]+ {re.escape(unit)}", out), mix  # fmt: skip
    assert re.search(r"generator check .*\n  bare aio: 1 generator [\d,]+/s, 2: [\d,]+/s, x[\d.]+ round by round", out)
    assert re.search(r"\n  bare sync: 1 generator [\d,]+/s, 2: [\d,]+/s, x[\d.]+ round by round", out)
    assert re.search(r"using [123]\b|may be the bottleneck", out)
    assert re.search(r"integration delay .*: p50 \d+ ms, p99 \d+ ms", out), out
    assert re.search(r"integrator CPU: [\d.]+ ms per 1000 entries", out), out
    for target in ("Check, unrestricted, 16 in flight: ", "Check, restricted, 16 in flight: ",
                   "Check, unrestricted, 1 in flight: p50 ", "BatchCheck(100): "):  # fmt: skip
        assert re.search(re.escape(target) + r".*: (met|NOT met)$", out, re.MULTILINE), target
    # the floor of a handler that waits on Redis once, beside each Check target at 16 in flight
    floors = re.findall(r"^    the floor of a handler that waits on Redis once \(floor: aio \+ 1 script call\): "
                        r"[\d.]+ of bare (aio|sync); debar [\d.]+ of the floor$", out, re.MULTILINE)  # fmt: skip
    assert len(floors) == 2, out
    assert "callers: Check as railway (check:railway, delegate; rate 5,000 checks per 1 s)" in out
    assert "generator: python (grpc.aio, identity serializers)" in out
    assert re.search(r"^redis: (valkey|redis)-server v=\d+\.\d+\.\d+, appendfsync always", out, re.MULTILINE), out


@pytest.mark.timeout(110)
def test_bench_railway_prints_checkticket_beside_a_direct_check_for_both_passengers() -> None:
    out = _bench("railway")
    rows = _rows(out)
    expected = ["direct Check", "direct BatchCheck(2)", "railway CheckTicket"]
    assert [target for target, _, _ in rows] == expected * 2
    assert all(rate > 0 for _, _, rate in rows)
    assert re.search(r"unrestricted passenger: CheckTicket [\d.]+ of a direct Check .*: (met|NOT met)", out)
    assert re.search(r"restricted passenger: CheckTicket [\d.]+ of a direct Check .*: (met|NOT met)", out)
    assert re.search(r"^generator: (h2load|python)", out, re.MULTILINE)


@pytest.mark.timeout(110)
def test_bench_replicas_prints_each_mix_acknowledged_after_0_and_after_1_replica() -> None:
    out = _bench("replicas")
    rows = re.findall(r"(0 replicas|1 replica)\s+(\d+)\s+([\d,]+)\s+\(", out)
    assert [(target, n) for target, n, _ in rows] == [("0 replicas", "16"), ("1 replica", "16"),
                                                     ("0 replicas", "1"), ("1 replica", "1"),
                                                     ("0 replicas", "16"), ("1 replica", "16")]  # fmt: skip
    assert all(float(rate.replace(",", "")) > 0 for _, _, rate in rows)
    assert "vs 0 replicas" in out and "replica us/call" in out and "subjects/s" in out
