"""A Redis insider (write access to Redis, no key) against the decisions of the log: decisions are decided inside
Redis and carry no signature, so before decision seals a decision record XADDed into a bucket's stream (a refusal
of a person no platform asked about) or a genuine record copied again was integrated, and `debar log verify`
passed. Each decided group's question is now sealed by the server (domain/decision_seals.py) and verify names
every decision no seal covers, every seal that does not match, and every nonce used twice. Played on a real
sanction service's Redis (single, and the 3-master cluster with DEBAR_TEST_REDIS=cluster) on its own key prefix."""

from __future__ import annotations

import os
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from debar.common.identifiers import IdKind
from debar.common.settings import Settings
from debar.sanction.adapters.file_spool import FileSpool, spool_folder
from debar.sanction.adapters.keys import Keys, hash_tag
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.app.failopen import FailOpen, SpoolStats
from debar.sanction.app.ports import RateAsk
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decision_seals import parse_seals, seal_key, seal_matches
from debar.sanction.domain.decisions import CheckQuery, DecisionAddress, LoggedCheck
from debar.sanction.domain.model import SubjectRef
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.integration.test_tlog_attacks import (
    REFUSED,
    LogSystem,
    integrate_forgery,
    records_of,
    registry_records,
    rewrite_stream,
    system,
    verify,
)
from tests.support.keys import TEST_BUCKET_KEY, where
from tests.support.requests import check_request, impose_request
from tests.support.servers import wait_for
from tests.support.subjects import new_ric

__all__ = ["system"]  # the fixture, from the attacks' module

TIMEOUT = 30
CATALOGUE = load_default_catalogue()
FS = b"\x1c"


def broken(system: LogSystem) -> str:
    done = verify(system.env)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr


def sealed_count(stdout: str) -> int:
    found = re.search(r"(\d+) decisions sealed by the service", stdout)
    assert found is not None, stdout
    return int(found[1])


def a_refusal(system: LogSystem) -> tuple[str, bytes, dict[bytes, bytes]]:
    r = system.redis()
    for stream in system.streams():
        for sid, fields in records_of(r, stream):
            if REFUSED in fields.get(b"d", b"") and b"sp" not in fields:
                return stream, sid, fields
    raise AssertionError("no refusal logged")


def made_up(fields: dict[bytes, bytes], pseudonym: bytes) -> dict[bytes, bytes]:
    """The genuine record's first decision, about another person (of the same bucket: the stream's)."""
    first = fields[b"d"].split(b"\x1d")[0].split(FS)
    first[3] = pseudonym
    return {**fields, b"d": FS.join(first)}


def other_pseudonym(system: LogSystem, stream: str) -> bytes:
    """A pseudonym of the stream's bucket, like one the insider read off a decision list key."""
    r = system.redis()
    for _, fields in records_of(r, stream):
        for decision in fields.get(b"d", b"").split(b"\x1d"):
            parts = decision.split(FS)
            if len(parts) > 5 and parts[5] == b"ALLOW":
                return parts[3]
    return b"t1.ffffffffffffffffffffffff"


def add_forged(system: LogSystem, stream: str, fields: dict[bytes, bytes]) -> str:
    """XADDs the record, and lists its decision on its subject's decision list as the check script would (so that
    ListDecisions shows it, and only its seal can tell)."""
    r = system.redis()
    record_id = r.xadd(stream, fields).decode()
    bucket, keys, own = hash_tag(stream), Keys(system.prefix), fields.get(b"sb", b"").decode()
    for i, decision in enumerate(d for d in fields[b"d"].split(b"\x1d") if d):
        pseudonym = decision.split(FS)[3].decode()
        subject_bucket = own[3 * i : 3 * i + 3] or bucket
        r.lpush(keys.subject_decisions(subject_bucket, pseudonym), f"{record_id}-{bucket}-{i}")
    return record_id


def test_a_made_up_refusal_without_a_seal_is_named(system: LogSystem, logs_dir: Path):
    stream, _, fields = a_refusal(system)
    forged = made_up(fields, other_pseudonym(system, stream))
    forged.pop(b"q", None)  # what there was before seals: the record's layout without one
    record_id = add_forged(system, stream, forged)
    integrate_forgery(system, logs_dir)
    stderr = broken(system)
    assert f"record {record_id} of {stream}, decision 0: not sealed by the service (made up in Redis?)" in stderr, (
        stderr
    )
    assert stderr.count("BROKEN") == 1, stderr


def test_a_made_up_refusal_under_a_genuine_seal_is_named(system: LogSystem, logs_dir: Path):
    """The insider keeps a genuine record's seal (it cannot make one): it covers another question."""
    stream, _, fields = a_refusal(system)
    first_seal = fields[b"q"].split(b"\x1d")[0].split(b":")
    forged = made_up(fields, other_pseudonym(system, stream))
    forged[b"q"] = b":".join([b"1", *first_seal[1:]])
    record_id = add_forged(system, stream, forged)
    integrate_forgery(system, logs_dir)
    stderr = broken(system)
    assert f"record {record_id} of {stream}, decision 0: the seal does not match" in stderr, stderr


def test_a_genuine_decision_record_copied_again_is_named(system: LogSystem, logs_dir: Path):
    stream, genuine, fields = a_refusal(system)
    record_id = add_forged(system, stream, fields)
    integrate_forgery(system, logs_dir)
    stderr = broken(system)
    assert f"record {record_id} of {stream}, decision 0: sealed with the nonce of record {genuine.decode()}" in stderr
    assert "a genuine decision copied in Redis" in stderr, stderr


def test_a_made_up_refusal_added_to_an_integrated_registry_record_is_named_and_never_shown(
    system: LogSystem, logs_dir: Path
):
    """The tree commits to a record's entries, not to its fields: an Impose's record (field `r`, its entry signed
    and integrated) given a field `d` after the fact, a refusal of the restricted person that no platform asked
    about (the stream rewritten with every id kept, the refusal put on the person's decision list), still rebuilds
    every root. Verify read the record as the registry write alone (no seal asked for) while GetDecision read its
    `d`: the made-up refusal was shown and verify exited 0."""
    r = system.redis()
    imposed = {s for s, _, _ in registry_records(r, system)}  # a restricted person's bucket: refused there too
    stream, refusal = next(
        (s, f) for s in system.streams() if s in imposed for _, f in records_of(r, s) if REFUSED in f.get(b"d", b"")
    )
    decision = refusal[b"d"].split(b"\x1d")[0].split(FS)
    decision[6] = str(int(decision[6]) + 86_400).encode()  # a day later: asked by no platform
    pseudonym = decision[3].decode()
    records = records_of(r, stream)
    at = next(i for i, (_, f) in enumerate(records) if b"r" in f)
    carrier = records[at][0].decode()
    records[at] = (records[at][0], {**records[at][1], b"cat": refusal[b"cat"], b"d": FS.join(decision)})
    rewrite_stream(r, stream, records)
    bucket = hash_tag(stream)
    r.lpush(Keys(system.prefix).subject_decisions(bucket, pseudonym), f"{carrier}-{bucket}-0")
    made_up = DecisionIds.for_bucket_key(TEST_BUCKET_KEY).of(DecisionAddress(carrier, bucket, 0))
    service = system.start(logs_dir)
    with grpc.insecure_channel(service.address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        try:
            shown = stub.GetDecision(
                decision_pb2.GetDecisionRequest(decision_id=made_up), metadata=[("x-debar-caller", "reviewer:li")],
                timeout=TIMEOUT,
            )  # fmt: skip
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error
        else:
            assert shown.outcome != common_pb2.OUTCOME_DENY, f"a made-up refusal shown: {shown}"
    system.stop()
    stderr = broken(system)
    assert f"record {carrier} of {stream}: unreadable as log entries" in stderr, stderr


def test_a_spool_field_added_to_an_integrated_refusal_does_not_make_it_a_replayed_allow(
    system: LogSystem, logs_dir: Path
):
    """A decision's entry names its spool id (a fail-open decision replayed); field `sp` holds them. An insider adds
    an `sp` that names none (a lone GS) to an integrated refusal's record: its entries, and every root, stay as they
    were, but GetDecision read the field's presence and said the refusal was made while Redis was unreachable and
    replayed from the spool. What it says now is its entry's."""
    r = system.redis()
    stream, refusal, _ = a_refusal(system)
    records = [(sid, {**f, b"sp": b"\x1d"} if sid == refusal else f) for sid, f in records_of(r, stream)]
    rewrite_stream(r, stream, records)
    made_up = DecisionIds.for_bucket_key(TEST_BUCKET_KEY).of(DecisionAddress(refusal.decode(), hash_tag(stream), 0))
    service = system.start(logs_dir)
    with grpc.insecure_channel(service.address) as channel:
        shown = decision_pb2_grpc.DecisionServiceStub(channel).GetDecision(
            decision_pb2.GetDecisionRequest(decision_id=made_up), metadata=[("x-debar-caller", "reviewer:li")],
            timeout=TIMEOUT,
        )  # fmt: skip
    assert shown.outcome == common_pb2.OUTCOME_DENY and not shown.spooled, shown
    system.stop()
    done = verify(system.env)
    assert done.returncode == 0, done.stdout + done.stderr  # the entries are what they were


def spool_decisions(system: LogSystem, n: int) -> list[str]:
    """Fail-open decisions in the service's spool folder, as a service that lost Redis left them."""
    settings = Settings.from_env(system.env)
    folder = spool_folder(settings.data_dir, system.url, system.prefix)
    measure = CATALOGUE.measure("RAIL_TICKET_BAN")
    checks = [
        LoggedCheck(CheckQuery(SubjectRef(IdKind.RIC, f"t1.{i:024x}", f"{i % 3:03x}"), measure, 1_800_000_000), "t", 0)
        for i in range(n)
    ]
    spooled = FailOpen(FileSpool(folder, CATALOGUE), SpoolStats(), DecisionIds.for_bucket_key(TEST_BUCKET_KEY))
    return [d.decision_id for d in spooled.allow_and_spool(checks, CATALOGUE.version)]


def test_an_untouched_log_of_every_kind_of_decision_verifies(system: LogSystem, logs_dir: Path):
    """No false alarm: Checks (the fixture's), BatchChecks (several items of one subject, several of others),
    concurrent Checks coalesced into shared script calls, and spooled decisions replayed."""
    spooled = spool_decisions(system, 4)
    service = system.start(logs_dir)
    with grpc.insecure_channel(service.address) as channel:
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        people = [new_ric() for _ in range(6)]
        registry.Impose(impose_request(people[0]), timeout=TIMEOUT)
        for size in (1, 3, 40):
            items = [check_request(people[i % len(people)], "RAIL_G_TRAIN") for i in range(size)]
            answer = checks.BatchCheck(sanction_pb2.BatchCheckRequest(items=items), timeout=TIMEOUT)
            assert len(answer.results) == size
        with ThreadPoolExecutor(24) as pool:
            answers = list(
                pool.map(
                    lambda n: checks.Check(check_request(people[n % 6], "RAIL_G_TRAIN"), timeout=TIMEOUT), range(96)
                )
            )
        assert all(a.decision_id for a in answers)
    keys = Keys(system.prefix)
    r = system.redis()
    assert wait_for(
        lambda: sum(r.hlen(keys.spooled_ids(f"{i % 3:03x}")) for i in range(3)) == len(spooled), timeout_s=30
    ), service.log()
    system.stop()
    integrate_forgery(system, logs_dir)
    done = verify(system.env)
    assert done.returncode == 0, done.stdout + done.stderr
    records = [f for s in system.streams() for _, f in records_of(r, s) if b"d" in f]
    logged = sum(len([d for d in f[b"d"].split(b"\x1d") if d]) for f in records)
    assert sealed_count(done.stdout) == logged >= len(system.decision_ids) + 44 + 96 + len(spooled), done.stdout
    replayed = [f for s in system.streams() for _, f in records_of(r, s) if b"sp" in f]
    assert replayed and all(b"q" in f for f in replayed)


def test_a_fail_open_decision_id_pointed_at_another_decision_answers_not_found(system: LogSystem, logs_dir: Path):
    """A fail-open decision's id is found through its bucket's map of spool ids to where the replay put it
    (`debar:spooled:{B}`, outside the log). An insider points a spooled id at a refusal: GetDecision answered that
    refusal under the fail-open allow's id. The decision found must name that spool id in its entry."""
    spooled = spool_decisions(system, 1)
    service = system.start(logs_dir)
    keys, r = Keys(system.prefix), system.redis()
    bucket = DecisionIds.for_bucket_key(TEST_BUCKET_KEY).locate(spooled[0]).spooled_bucket
    assert wait_for(lambda: r.hexists(keys.spooled_ids(bucket), spooled[0]), timeout_s=30), service.log()
    with grpc.insecure_channel(service.address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        reviewer = [("x-debar-caller", "reviewer:li")]
        replayed = stub.GetDecision(decision_pb2.GetDecisionRequest(decision_id=spooled[0]), metadata=reviewer)
        assert replayed.spooled and replayed.outcome == common_pb2.OUTCOME_ALLOW
        r.hset(keys.spooled_ids(bucket), spooled[0], str(where(system.refused[0])))
        try:
            shown = stub.GetDecision(decision_pb2.GetDecisionRequest(decision_id=spooled[0]), metadata=reviewer)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND, error
        else:
            raise AssertionError(f"another decision answered for {spooled[0]}: {shown}")


async def test_a_call_refused_by_its_rate_among_coalesced_ones_leaves_every_logged_decision_sealed(
    service_env: dict[str, str],
):
    """One decide call of three callers' checks (coalesced): the first's two items, the second's one, refused by
    its rate (neither decided nor logged), the third's two without a rate. Its record holds four decisions under
    two seals, each matching the run it covers, and no seal of the refused run."""
    prefix = f"dsl{uuid.uuid4().hex[:8]}"
    env = {**service_env, "DEBAR_REDIS_PREFIX": prefix}
    settings = Settings.from_env({**os.environ, **env})
    adapters = redis_adapters(settings, env["DEBAR_REDIS_URL"], CATALOGUE)
    try:
        measure = CATALOGUE.measure("RAIL_G_TRAIN")
        bucket = "0a1"
        checks = [
            LoggedCheck(CheckQuery(SubjectRef(IdKind.RIC, f"t1.{i:024x}", bucket), measure, 1_800_000_000), caller, 3)
            for i, caller in enumerate(("railway", "railway", "greedy", "airline", "airline"))
        ]
        paid, past = RateAsk("railway", 1, 3600, 2, 10), RateAsk("greedy", 1, 3600, 1, 0)
        decisions = await adapters.store.decide(checks, CATALOGUE.version, [paid, paid, past, None, None])
        assert len(decisions) == 4 and past.refused and not paid.refused
        [record] = await adapters.sequenced_log.read_after(Keys(prefix).log(bucket), "", 10)
    finally:
        await adapters.close()
    sealed = record.sealed
    assert sealed is not None and sealed.bucket == bucket
    assert [q[0] for q in sealed.questions] == ["railway", "railway", "airline", "airline"]
    seals = parse_seals(sealed.seals)
    key = seal_key(TEST_BUCKET_KEY)
    if ON_CLUSTER:  # the rates were counted first (a counter's key may be on another node): one run of the rest
        assert [s.count for s in seals] == [4] and seal_matches(key, bucket, seals[0], sealed.questions)
        return
    assert [s.count for s in seals] == [2, 2]
    assert seal_matches(key, bucket, seals[0], sealed.questions[:2])
    assert seal_matches(key, bucket, seals[1], sealed.questions[2:])
