"""`debar bench`: debar's sanction service beside the fastest empty handler this machine can serve for the same
messages, in alternating rounds of one run, with the load generator in processes of its own.

- The baseline (bare_server.py): generic handlers answering debar's own answer bytes, captured before the run;
  grpc.aio and the sync server on a thread pool, both measured, ratios against whichever is faster.
- The requests are serialized before the clock starts; the generator sends those bytes as they are and parses
  nothing: h2load (h2load.py, a C client) when installed, else grpc.aio with identity serializers (generator.py),
  in processes of their own; before the mixes, the run checks that one more generator process does not raise
  the baseline (rounds.check_generators), and uses as many as that takes.
- Mixes: Check at 16 in flight of an unrestricted subject and of a restricted one (every answer a refusal),
  Check at 1 in flight (p50/p99), BatchCheck of 100 subjects (1 in 10 restricted) at 16 in flight.
- The log (log_delay.py): under the first Check mix, the integration delay (answer -> in a signed checkpoint,
  p50/p99) and the integrator's CPU per 1000 entries; every debar round runs with the integrator, as served.
- The log's cost: for the first Check mix and for BatchCheck(100), a second debar on a private Redis of its own
  with DEBAR_LOG_INTEGRATOR=off (every decision still sequenced, none integrated) alternates in the same rounds
  ("debar, integrator off"); the ratio of debar's throughput to it (with/without) is printed beside the others.
- Callers are the ones data/scopes.json knows: a Check is asked as a domain service would (`railway` by
  default, whose rate makes every Check count in Redis too); a BatchCheck of 100 as `bench` (no rate: railway's
  5,000 checks/s would refuse most of the load it is meant to measure).

`debar bench railway`: RailwayService.CheckTicket (one BatchCheck of two measures per ticket) beside a direct
Check and a direct BatchCheck(2) asked as `railway`, the same way, in one run.

`debar bench replicas`: what acknowledged-means-replicated costs: Check (16 and 1 in flight) and BatchCheck of 100
on a master with one replica, acknowledged after 0 and after 1 replica (two servers, alternating rounds)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import grpc

from debar.bench import h2load, targets
from debar.bench.generator import Generators, Load, LoadGenerator
from debar.bench.log_delay import CatchUp, measure_log
from debar.bench.rounds import MOST_GENERATORS, GeneratorCheck, Summary, Target, alternate, check_generators, fastest
from debar.rpc.callers import CALLER_HEADER
from debar.v1 import common_pb2, railway_pb2, registry_pb2, registry_pb2_grpc, sanction_pb2, verdict_pb2

CHECK = "/debar.v1.SanctionService/Check"
BATCH_CHECK = "/debar.v1.SanctionService/BatchCheck"
CHECK_TICKET = "/debar.v1.RailwayService/CheckTicket"
BATCH_SIZE = 100
MEASURE = "RAIL_G_TRAIN"
CALL_TIMEOUT_S = 10.0
WITHOUT_LOG = "debar, integrator off"
VS_WITHOUT_LOG = "vs integrator off"

# issue 12's targets, each said met or not at the end of a run
TARGET_RATIO = 0.8
TARGET_P50_MS, TARGET_P99_MS = 1.3, 3.0
TARGET_BATCH_SUBJECTS = 100_000
TARGET_TICKET_RATIO = 0.5


@dataclass(frozen=True)
class Mix:
    """One request, sent over and over; `wrong(answer)` says what is wrong with an answer, or None."""

    name: str
    method: str
    request: bytes
    in_flight: int
    caller: str | None
    wrong: Callable[[bytes], str | None]
    subjects_per_call: int = 1

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return ((CALLER_HEADER, self.caller),) if self.caller else ()

    def load(self, address: str) -> Load:
        return Load(address, self.method, self.request, self.in_flight, self.metadata)


def make_people(subjects: int) -> list[str]:
    """`subjects` distinct, valid resident identity numbers."""
    from stdnum.cn import ric

    people = []
    for i in range(subjects):
        body = f"110105{19500101 + (i % 28) + 100 * ((i // 28) % 12) + 10000 * (i // 336 % 50):08d}{i % 1000:03d}"
        people.append(body + ric.calc_check_digit(body + "0"))
    return people


def subject(person: str) -> common_pb2.Subject:
    return common_pb2.Subject(id_type=common_pb2.ID_TYPE_RIC, id=person)


def impose(sanction: str, people: Sequence[str]) -> None:
    """A court consumption order (RAIL_G_TRAIN among its default measures) on each of `people`, as `registry`."""
    with grpc.insecure_channel(sanction) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        for i, person in enumerate(people):
            request = registry_pb2.ImposeRequest(
                source="court_consumption_order", source_id=f"bench-{i}", subject=subject(person),
                legal_basis="SPC Art. 3", authority="Bench Court", case_number=f"B-{i}")  # fmt: skip
            registry.Impose(request, timeout=CALL_TIMEOUT_S, metadata=((CALLER_HEADER, "clerk:bench"),))


def ask(address: str, mix: Mix) -> bytes:
    """One call of the mix, bytes in and out; its answer must be what the mix is about."""
    with grpc.insecure_channel(address) as channel:
        answer: bytes = channel.unary_unary(mix.method)(mix.request, timeout=CALL_TIMEOUT_S, metadata=mix.metadata)
    if problem := mix.wrong(answer):
        raise RuntimeError(f"bench: {mix.name}: {problem}")
    return answer


def check_request(person: str) -> sanction_pb2.CheckRequest:
    return sanction_pb2.CheckRequest(subject=subject(person), measure=MEASURE)


def outcome_is(expected: common_pb2.Outcome.ValueType) -> Callable[[bytes], str | None]:
    def wrong(answer: bytes) -> str | None:
        response = sanction_pb2.CheckResponse.FromString(answer)
        if response.outcome != expected:
            return f"answered {common_pb2.Outcome.Name(response.outcome)}, not {common_pb2.Outcome.Name(expected)}"
        if expected == common_pb2.OUTCOME_DENY and not response.grounds:
            return "a refusal without grounds"
        return None

    return wrong


def _batch(size: int, denials: int) -> Callable[[bytes], str | None]:
    def wrong(answer: bytes) -> str | None:
        results = sanction_pb2.BatchCheckResponse.FromString(answer).results
        failed = [r.error.message for r in results if r.WhichOneof("result") != "response"]
        denied = sum(r.response.outcome == common_pb2.OUTCOME_DENY for r in results)
        if len(results) != size or failed or denied != denials:
            return f"{len(results)} results, {denied} refusals (expected {size}, {denials}); failed: {failed[:2]}"
        return None

    return wrong


def _verdict(allowed: bool) -> Callable[[bytes], str | None]:
    def wrong(answer: bytes) -> str | None:
        verdict = verdict_pb2.Verdict.FromString(answer)
        return None if verdict.allowed == allowed else f"allowed={verdict.allowed}, expected {allowed}"

    return wrong


def _scopes_of(caller: str) -> str:
    callers = json.loads(resources.files("debar").joinpath("data/scopes.json").read_text(encoding="utf-8"))["callers"]
    if caller not in callers:
        raise SystemExit(f"bench: --caller {caller!r} is not in data/scopes.json (callers: {', '.join(callers)})")
    grant = callers[caller]
    rate = grant.get("rate")
    limit = f"rate {rate['checks']:,} checks per {rate['window_s']} s" if rate else "no rate"
    return f"{caller} ({', '.join(grant['scopes'])}; {limit})"


def _progress(line: str) -> None:
    print(f"  ... {line}", file=sys.stderr, flush=True)


def _load_line() -> str:
    one, five, _ = os.getloadavg()
    line = f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"
    try:  # Linux pressure stall information: the share of time some runnable task waited for a core
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0].split()
        line += f", CPU pressure {float(dict(f.split('=') for f in some[1:])['avg60']):.0f} % (60 s)"
    except (OSError, KeyError, ValueError):
        pass
    return line


def _redis_line() -> str:
    return f"redis: {targets.redis_server()}, appendfsync always (the embedded server `debar up` starts)"


def _check_answers(summaries: dict[str, Summary], mix: Mix, address: dict[str, str]) -> None:
    """The last answer each target gave (asked again when the generator keeps none) is what the mix is about."""
    for label, summary in summaries.items():
        answer = summary.last_response or ask(address[label], mix)
        if problem := mix.wrong(answer):
            raise RuntimeError(f"bench: {mix.name}, {label}: {problem}")


@contextmanager
def load_generator(which: str) -> Iterator[LoadGenerator]:
    """`auto`: h2load when it is installed (it costs the shared cores far less per call), else the Python one."""
    path = h2load.binary()
    if which == "h2load" and path is None:
        raise SystemExit("bench: --generator h2load: no h2load on PATH (Debian: apt-get install nghttp2-client)")
    if which == "python" or path is None:
        with Generators(MOST_GENERATORS) as generators:
            yield generators
    else:
        with h2load.H2Load(path) as generator:
            yield generator


def _describe(generator: LoadGenerator) -> str:
    if generator.name == "h2load":
        return (f"h2load, a C HTTP/2 client, in a process of its own ({h2load.describe(h2load.binary() or '')}); "
                "failed calls counted from debar's own per-status counters")  # fmt: skip
    missing = (
        "" if h2load.binary() else "; h2load (Debian: nghttp2-client) would cost the shared cores far less per call"
    )
    return f"python (grpc.aio, identity serializers) in processes of their own{missing}"


def _generator_check(generators: LoadGenerator, mix: Mix, bare: dict[str, targets.Server], rounds: int,
                     seconds: float) -> GeneratorCheck:  # fmt: skip
    baselines = [Target(s.label, mix.load(s.address), {"server": s.pid}) for s in bare.values()]
    return check_generators(generators, baselines, rounds, seconds, progress=_progress)


@dataclass
class Row:
    mix: str
    summary: Summary
    subjects_per_call: int
    ratios: Mapping[str, float | None]  # header -> ratio


def print_table(rows: Sequence[Row], cpu_names: Sequence[str], ratio_headers: Sequence[str]) -> None:
    mix_width = max(len(r.mix) for r in rows) + 2
    target_width = max(len(r.summary.label) for r in rows) + 2
    batch = any(r.subjects_per_call > 1 for r in rows)
    head = (f"{'mix':<{mix_width}}{'target':<{target_width}}{'in flight':>9}{'calls/s':>9}{'(min-max)':>15}"
            + (f"{'subjects/s':>12}" if batch else "") + f"{'p50 ms':>8}{'p99 ms':>8}"
            + "".join(f"{name + ' us/call':>{max(15, len(name) + 10)}}" for name in cpu_names)
            + "".join(f"{h:>{max(10, len(h) + 2)}}" for h in ratio_headers) + f"{'others':>8}")  # fmt: skip
    print(head)
    last_mix = ""
    for row in rows:
        s = row.summary
        spread = f"({min(s.rates):,.0f}-{max(s.rates):,.0f})"
        subjects = f"{s.rate * row.subjects_per_call:>12,.0f}" if row.subjects_per_call > 1 else " " * 12
        cpu = ""
        for name in cpu_names:
            spent = s.cpu_us_per_call(name)
            cpu += f"{'' if spent is None else f'{spent:,.0f}':>{max(15, len(name) + 10)}}"
        ratios = "".join(
            f"{'' if row.ratios.get(h) is None else f'{row.ratios[h]:.2f}':>{max(10, len(h) + 2)}}"
            for h in ratio_headers
        )
        others = "" if s.others_cores is None else f"{s.others_cores:.2f}"
        print(f"{row.mix if row.mix != last_mix else '':<{mix_width}}{s.label:<{target_width}}{s.in_flight:>9}"
              f"{s.rate:>9,.0f}{spread:>15}{subjects if batch else ''}{s.latency_ms(0.5):>8.2f}"
              f"{s.latency_ms(0.99):>8.2f}{cpu}{ratios}{others:>8}")  # fmt: skip
        last_mix = row.mix
    for row in rows:
        if row.summary.errors:
            print(f"{row.mix}, {row.summary.label}: failed calls, not counted above: {row.summary.errors}")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def sanction_mixes(in_flight: int, caller: str, people: Sequence[str]) -> tuple[list[Mix], list[str]]:
    """The mixes, and the people to restrict for them."""
    free, restricted, batch = people[1], people[0], people[100 : 100 + BATCH_SIZE]
    batch_restricted = batch[::10]
    batch_request = sanction_pb2.BatchCheckRequest(items=[check_request(p) for p in batch])
    mixes = [
        Mix("Check, unrestricted", CHECK, check_request(free).SerializeToString(), in_flight, caller,
            outcome_is(common_pb2.OUTCOME_ALLOW)),
        Mix("Check, restricted", CHECK, check_request(restricted).SerializeToString(), in_flight, caller,
            outcome_is(common_pb2.OUTCOME_DENY)),
        Mix("Check, unrestricted", CHECK, check_request(free).SerializeToString(), 1, caller,
            outcome_is(common_pb2.OUTCOME_ALLOW)),
        Mix(f"BatchCheck({BATCH_SIZE})", BATCH_CHECK, batch_request.SerializeToString(), in_flight, "bench",
            _batch(BATCH_SIZE, len(batch_restricted)), BATCH_SIZE),
    ]  # fmt: skip
    return mixes, [restricted, *batch_restricted]


def _debar_target(
    label: str, service: targets.Debar, mix: Mix, processes: int, settle: Callable[[], None] | None = None
) -> Target:
    pids = {"server": service.sanction.pid, "redis": service.redis_pid}
    answered = partial(targets.handled, service.sanction, mix.method)
    return Target(label, mix.load(service.sanction.address), pids, processes, answered, settle)


def run(
    seconds: float = 3.0, in_flight: int = 16, rounds: int = 5, caller: str = "railway", generator: str = "auto"
) -> int:
    print(f"debar bench: {rounds} alternating rounds of {seconds:g} s per target and mix; {_load_line()}")
    print(_redis_line())
    print(f"callers: Check as {_scopes_of(caller)}; BatchCheck as {_scopes_of('bench')}")
    mixes, to_restrict = sanction_mixes(in_flight, caller, make_people(100 + BATCH_SIZE))
    results: list[tuple[Mix, dict[str, Summary]]] = []
    with targets.debar() as service, targets.debar(integrator=False) as unlogged:
        answers: dict[str, dict[bytes, bytes]] = {}
        for server in (unlogged, service):
            impose(server.sanction.address, to_restrict)
            for mix in mixes:
                answers.setdefault(mix.method, {})[mix.request] = ask(server.sanction.address, mix)
        with (
            targets.bare_servers(answers) as bare,
            targets.floor_server(answers, service.redis_url) as floor,
            load_generator(generator) as generators,
        ):
            print(f"generator: {_describe(generators)}")
            check = _generator_check(generators, mixes[0], bare, rounds, seconds)
            catch_up = CatchUp(service.sanction, mixes[0].request)
            address = {**{s.label: s.address for s in bare.values()}, floor.label: floor.address,
                       "debar": service.sanction.address, WITHOUT_LOG: unlogged.sanction.address}  # fmt: skip
            for mix in mixes:
                _progress(f"{mix.name}, {mix.in_flight} in flight")
                n = check.chosen
                measured = [Target(s.label, mix.load(s.address), {"server": s.pid}, n) for s in bare.values()]
                # debar's Redis serves the floor's script calls too (idle in the floor's rounds)
                measured.append(Target(floor.label, mix.load(floor.address),
                                       {"server": floor.pid, "redis": service.redis_pid}, n))  # fmt: skip
                if mix in (mixes[0], mixes[3]):
                    # Each of their rounds after debar's integrator has caught up: none pays for earlier rounds,
                    # and none without the log shares the machine with integration.
                    measured.append(_debar_target("debar", service, mix, n, catch_up))
                    measured.insert(0, _debar_target(WITHOUT_LOG, unlogged, mix, n, catch_up))
                else:
                    measured.append(_debar_target("debar", service, mix, n))
                summaries = alternate(generators, measured, rounds, seconds, _progress)
                _check_answers(summaries, mix, address)
                results.append((mix, {label: summaries[label] for label in address if label in summaries}))
            log = measure_log(
                generators, mixes[0].load(service.sanction.address), check.chosen, service.sanction,
                max(seconds * rounds / 2, 5.0), _progress,
            )  # fmt: skip
    rows: list[Row] = []
    for mix, summaries in results:
        best = fastest([s for label, s in summaries.items() if label.startswith("bare")])
        for summary in summaries.values():
            ratios: dict[str, float | None] = {
                "vs fastest bare": summary.ratio_to(best), "vs bare aio": summary.ratio_to(summaries["bare aio"])
            }  # fmt: skip
            if summary.label == "debar" and WITHOUT_LOG in summaries:
                ratios[VS_WITHOUT_LOG] = summary.ratio_to(summaries[WITHOUT_LOG])
            rows.append(Row(mix.name, summary, mix.subjects_per_call, ratios))
    print()
    print_table(rows, ["server", "redis"], ["vs fastest bare", "vs bare aio", VS_WITHOUT_LOG])
    print(f"\ngenerator check (bare handlers, {mixes[0].name}, {in_flight} in flight split across the processes):")
    print("\n".join(check.lines()))
    _print_sanction_targets(results)
    print("\n".join(log.lines()))
    print("\n".join(_log_cost_lines(results, catch_up.waits_s)))
    print(f"\n(ratios: medians of round-by-round ratios; p50/p99 over every timed call of the rounds; us/call: CPU of "
          f"that process over the timed window per answered call; others: cores kept busy meanwhile by processes "
          f"not in the benchmark (median over rounds); every decision logged, Redis appendfsync "
          f"always; after the run: {_load_line()})")  # fmt: skip
    return 0


def _print_sanction_targets(results: Sequence[tuple[Mix, dict[str, Summary]]]) -> None:
    print("\ntargets:")
    for mix, summaries in results:
        debar = summaries["debar"]
        best = fastest([s for label, s in summaries.items() if label.startswith("bare")])
        ratio = debar.ratio_to(best)
        if mix.method == BATCH_CHECK:
            subjects = debar.rate * mix.subjects_per_call
            ok = subjects >= TARGET_BATCH_SUBJECTS
            print(f"  {mix.name}: {subjects:,.0f} subjects/s (>= {TARGET_BATCH_SUBJECTS:,}): {_met(ok)}")
        elif mix.in_flight == 1:
            p50, p99 = debar.latency_ms(0.5), debar.latency_ms(0.99)
            ok = p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS
            print(f"  {mix.name}, 1 in flight: p50 {p50:.2f} ms (<= {TARGET_P50_MS}), p99 {p99:.2f} ms "
                  f"(<= {TARGET_P99_MS}): {_met(ok)}")  # fmt: skip
        else:
            print(f"  {mix.name}, {mix.in_flight} in flight: {ratio:.2f} of {best.label} "
                  f"(>= {TARGET_RATIO}): {_met(ratio >= TARGET_RATIO)}")  # fmt: skip
        floor = summaries.get(targets.FLOOR)
        if floor is not None and mix.method != BATCH_CHECK and mix.in_flight > 1:
            print(f"    the floor of a handler that waits on Redis once ({targets.FLOOR}): {floor.ratio_to(best):.2f} "
                  f"of {best.label}; debar {debar.ratio_to(floor):.2f} of the floor")  # fmt: skip


def _log_cost_lines(results: Sequence[tuple[Mix, dict[str, Summary]]], waits_s: Sequence[float]) -> list[str]:
    """What the log's integrator costs throughput: debar with it against the same service without it (its own
    Redis, DEBAR_LOG_INTEGRATOR=off), the median of round-by-round ratios, with both medians and CPU per call;
    and how long the rounds waited for debar's integrator to catch up with the rounds before."""
    lines = []
    for mix, summaries in results:
        if WITHOUT_LOG not in summaries:
            continue
        on, off = summaries["debar"], summaries[WITHOUT_LOG]
        unit = "subjects/s" if mix.subjects_per_call > 1 else "calls/s"
        cpu = [[s.cpu_us_per_call("server"), s.cpu_us_per_call("redis")] for s in (on, off)]
        spent = ""
        if all(c is not None for pair in cpu for c in pair):
            with_log, without = (sum(c or 0.0 for c in pair) for pair in cpu)
            spent = f"; server + Redis CPU {with_log:,.0f} vs {without:,.0f} us/call"
        lines.append(
            f"  the log's cost, {mix.name}, {mix.in_flight} in flight: with the integrator {on.ratio_to(off):.2f} "
            f"of without ({on.rate * mix.subjects_per_call:,.0f} vs {off.rate * mix.subjects_per_call:,.0f} "
            f"{unit}{spent})"
        )
    if waits_s:
        lines.append(
            f"  (each of those rounds began once debar's integrator had caught up: waited {min(waits_s):.1f}-"
            f"{max(waits_s):.1f} s; work it left for after a round is not in that round's figures)"
        )
    return lines


def railway_mixes(in_flight: int, people: Sequence[str]) -> list[tuple[str, list[Mix]]]:
    """Per passenger (unrestricted, restricted): a direct Check, the BatchCheck railway asks for one G-train
    ticket, and the CheckTicket itself."""
    out = []
    for name, person, allowed in (("unrestricted", people[1], True), ("restricted", people[0], False)):
        pair = sanction_pb2.BatchCheckRequest(items=[check_request(person), sanction_pb2.CheckRequest(
            subject=subject(person), measure="RAIL_TICKET_BAN")])  # fmt: skip
        ticket = railway_pb2.CheckTicketRequest(passenger=subject(person), train_number="G123",
                                                seat_class=railway_pb2.SEAT_CLASS_SECOND)  # fmt: skip
        expected = common_pb2.OUTCOME_ALLOW if allowed else common_pb2.OUTCOME_DENY
        out.append((name, [
            Mix("direct Check", CHECK, check_request(person).SerializeToString(), in_flight, "railway",
                outcome_is(expected)),
            Mix("direct BatchCheck(2)", BATCH_CHECK, pair.SerializeToString(), in_flight, "railway",
                _batch(2, 0 if allowed else 1), 2),
            Mix("railway CheckTicket", CHECK_TICKET, ticket.SerializeToString(), in_flight, None, _verdict(allowed)),
        ]))  # fmt: skip
    return out


def run_railway(seconds: float = 3.0, in_flight: int = 16, rounds: int = 5, generator: str = "auto") -> int:
    print(f"debar bench railway: {rounds} alternating rounds of {seconds:g} s per target; {_load_line()}")
    print(_redis_line())
    print(f"callers: direct calls as {_scopes_of('railway')}, as the railway service asks; CheckTicket as the "
          "default local caller (the railway service has no scopes)")  # fmt: skip
    people = make_people(2)
    mixes = railway_mixes(in_flight, people)
    results: list[tuple[str, dict[str, Summary]]] = []
    with targets.debar(railway=True) as service:
        assert service.railway is not None
        impose(service.sanction.address, [people[0]])
        address = {CHECK: service.sanction.address, BATCH_CHECK: service.sanction.address,
                   CHECK_TICKET: service.railway.address}  # fmt: skip
        pids = {"sanction": service.sanction.pid, "redis": service.redis_pid}
        for _, group in mixes:
            for mix in group:
                ask(address[mix.method], mix)
        direct = mixes[0][1][0]
        answers = {CHECK: {direct.request: ask(service.sanction.address, direct)}}
        server = {CHECK: service.sanction, BATCH_CHECK: service.sanction, CHECK_TICKET: service.railway}
        with targets.bare_servers(answers) as bare, load_generator(generator) as generators:
            print(f"generator: {_describe(generators)}")
            check = _generator_check(generators, direct, bare, rounds, seconds)
            for name, group in mixes:
                _progress(f"{name} passenger")
                measured = [
                    Target(mix.name, mix.load(address[mix.method]),
                           {**pids, "railway": service.railway.pid} if mix.method == CHECK_TICKET else pids,
                           check.chosen, partial(targets.handled, server[mix.method], mix.method))
                    for mix in group
                ]  # fmt: skip
                summaries = alternate(generators, measured, rounds, seconds, _progress)
                for mix in group:
                    _check_answers({mix.name: summaries[mix.name]}, mix, {mix.name: address[mix.method]})
                results.append((name, summaries))
    rows = [
        Row(f"{name} passenger", summary, 1, {"vs direct Check": summary.ratio_to(summaries["direct Check"])})
        for name, summaries in results
        for summary in summaries.values()
    ]
    print()
    print_table(rows, ["railway", "sanction", "redis"], ["vs direct Check"])
    print(f"\ngenerator check (bare handlers, direct Check, {in_flight} in flight split across the processes):")
    print("\n".join(check.lines()))
    print("\ntargets:")
    for name, summaries in results:
        ratio = summaries["railway CheckTicket"].ratio_to(summaries["direct Check"])
        print(f"  {name} passenger: CheckTicket {ratio:.2f} of a direct Check (>= {TARGET_TICKET_RATIO}): "
              f"{_met(ratio >= TARGET_TICKET_RATIO)}")  # fmt: skip
    print(f"\n(G-train second class: each CheckTicket is one BatchCheck of {MEASURE} + RAIL_TICKET_BAN; every "
          "decision logged; us/call: CPU of that process per answered call; others: cores kept busy meanwhile by "
          f"processes not in the benchmark; after the run: {_load_line()})")  # fmt: skip
    return 0


def run_replicas(seconds: float = 3.0, in_flight: int = 16, rounds: int = 5, generator: str = "auto") -> int:
    print(f"debar bench replicas: {rounds} alternating rounds of {seconds:g} s per target and mix; {_load_line()}")
    print(_redis_line())
    mixes, to_restrict = sanction_mixes(in_flight, "bench", make_people(100 + BATCH_SIZE))
    chosen = [mixes[0], mixes[2], mixes[3]]  # Check unrestricted at in_flight and at 1, BatchCheck
    results: list[tuple[Mix, dict[str, Summary]]] = []
    with targets.replicated() as service:
        impose(service.sanction[1].address, to_restrict)
        labels = {required: f"{required} replica{'s' if required != 1 else ''}" for required in service.sanction}
        address = {labels[r]: s.address for r, s in service.sanction.items()}
        for mix in chosen:
            for server in service.sanction.values():
                ask(server.address, mix)
        with load_generator(generator) as generators:
            print(f"generator: {_describe(generators)}")
            for mix in chosen:
                _progress(f"{mix.name}, {mix.in_flight} in flight")
                measured = [
                    Target(labels[r], mix.load(s.address),
                           {"server": s.pid, "redis": service.redis_pid, "replica": service.replica_pid}, 1,
                           partial(targets.handled, s, mix.method))
                    for r, s in service.sanction.items()
                ]  # fmt: skip
                summaries = alternate(generators, measured, rounds, seconds, _progress)
                _check_answers(summaries, mix, address)
                results.append((mix, summaries))
    rows = [
        Row(mix.name, summary, mix.subjects_per_call, {"vs 0 replicas": summary.ratio_to(summaries["0 replicas"])})
        for mix, summaries in results
        for summary in summaries.values()
    ]
    print()
    print_table(rows, ["server", "redis", "replica"], ["vs 0 replicas"])
    print("\n(each write pipelined with WAIT 1 (and WAITAOF 1 0 where the server has it) on the same connection; "
          f"Checks and BatchCheck asked as bench (no rate); after the run: {_load_line()})")  # fmt: skip
    return 0
