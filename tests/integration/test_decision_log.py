"""Every decision is logged with its why, readable back, and the log's hash chain exposes tampering."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import redis as redis_client
import redis.asyncio

from debar.common.settings import DEV_BUCKET_KEY
from debar.local.embedded_redis import EmbeddedRedis
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.sequenced_log import RedisSequencedLog
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.log_entries import DecisionEntry, EntryKind, decode
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.keys import log_verify_env, where
from tests.support.requests import check_request, impose_request, subject
from tests.support.servers import start_service
from tests.support.subjects import new_ric, new_uscc

KEYS = "t1:test-secret-one-at-least-32-bytes"


def test_a_refusal_can_be_fetched_with_the_grounds_it_was_given(checks, registry, decisions):
    company, person = new_uscc(), new_ric()
    registry.Impose(impose_request(company, principals=[(person, common_pb2.ROLE_LEGAL_REPRESENTATIVE)]))
    refused = checks.Check(check_request(person, "HOTEL_STAR_RATED"), metadata=[("x-debar-caller", "hotel")])
    logged = decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=refused.decision_id))
    assert logged.decision_id == refused.decision_id
    assert logged.outcome == common_pb2.OUTCOME_DENY
    assert logged.measure == "HOTEL_STAR_RATED"
    assert logged.caller == "hotel"
    assert list(logged.grounds) == list(refused.grounds)
    assert logged.revision == refused.revision
    assert logged.catalogue_version == refused.catalogue_version
    assert person not in str(logged)


def test_a_person_can_list_the_decisions_about_them_newest_first(checks, decisions):
    person = new_ric()
    ids = [
        checks.Check(check_request(person, m)).decision_id for m in ("RAIL_G_TRAIN", "HOTEL_STAR_RATED", "AIR_TRAVEL")
    ]
    first = decisions.ListDecisions(decision_pb2.ListDecisionsRequest(subject=subject(person), page_size=2))
    assert [d.decision_id for d in first.decisions] == ids[::-1][:2]
    second = decisions.ListDecisions(
        decision_pb2.ListDecisionsRequest(subject=subject(person), page_size=2, page_token=first.next_page_token)
    )
    assert [d.decision_id for d in second.decisions] == ids[:1]
    assert not second.next_page_token


@pytest.mark.parametrize("bad", ["", "nonsense", "1-2-zzz"])
def test_a_malformed_decision_id_is_invalid_argument(decisions, bad):
    with pytest.raises(grpc.RpcError) as raised:
        decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=bad))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("decision_id:")


def test_an_unknown_decision_is_not_found(decisions):
    with pytest.raises(grpc.RpcError) as raised:
        decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id="aaaaaaaaaaaaaaaaaaaaaaaaaa"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_decision_ids_reveal_nothing_and_a_neighbour_or_changed_id_is_not_found(checks, registry, decisions):
    """The attack of issue 11: from one id, read the neighbouring decisions of other people. Ids are a keyed
    permutation of where the decision is: consecutive decisions' ids share no structure, and every id made by
    changing one character of a real one, or by counting up from it, is NOT_FOUND (as an unknown id is)."""
    person = new_ric()
    registry.Impose(impose_request(person))
    ids = [checks.Check(check_request(p, "RAIL_G_TRAIN")).decision_id for p in (person, new_ric(), new_ric(), person)]
    assert len(set(ids)) == 4 and all(len(i) == 26 for i in ids)
    assert len({i[:3] for i in ids}) == 4 and len({i[-3:] for i in ids}) == 4  # no shared prefix or suffix
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    real = ids[0]
    neighbours = [real[:p] + alphabet[(alphabet.index(real[p]) + 1) % 32] + real[p + 1 :] for p in range(26)]
    for guess in neighbours:
        with pytest.raises(grpc.RpcError) as raised:
            decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=guess))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND, guess
        assert guess not in raised.value.details() or "no decision" in raised.value.details()
    # The real ones are found, listed under the same ids.
    for i in ids:
        assert decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=i)).decision_id == i
    listed = decisions.ListDecisions(decision_pb2.ListDecisionsRequest(subject=subject(person)))
    assert [d.decision_id for d in listed.decisions] == [ids[3], ids[0]]


@pytest.fixture
def private_system(tmp_path, logs_dir):
    server = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    yield server, service
    service.stop()
    server.stop()


def _verify(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """`debar log verify` against the server's stored checkpoints (the tampering it catches:
    tests/integration/test_tlog_attacks.py)."""
    env = {"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin", **log_verify_env(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "log", "verify"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def _logged(url: str) -> list[DecisionEntry]:
    """Every decision entry of every stream, as the Merkle log's integrator reads them."""

    async def read() -> list[DecisionEntry]:
        client = redis_client.asyncio.Redis.from_url(url)
        log = RedisSequencedLog(client, Keys(), DecisionIds.for_bucket_key(DEV_BUCKET_KEY))
        found = []
        for stream in await log.streams():
            for record in await log.read_after(stream, "", 100_000):
                found += [DecisionEntry.decode(e) for e in record.entries if decode(e).kind is EntryKind.DECISION]
        await client.aclose()
        return found

    return asyncio.run(read())


def _decide(service, person: str, count: int) -> list[str]:
    with grpc.insecure_channel(service.address) as channel:
        stub = sanction_pb2_grpc.SanctionServiceStub(channel)
        return [stub.Check(check_request(person, "RAIL_G_TRAIN")).decision_id for _ in range(count)]


def test_concurrent_checks_are_each_one_entry_of_the_log(private_system, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    server, service = private_system
    people = [new_ric() for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        ids = [i for batch in pool.map(lambda p: _decide(service, p, 25), people) for i in batch]
    assert len(set(ids)) == 200
    # Concurrent checks may share a record (they are coalesced into one script call); none is lost or doubled.
    logged = [e.decision_id for e in _logged(server.url)]
    assert sorted(logged) == sorted(ids)
    result = _verify(server.url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert ", 0 broken" in result.stdout, result.stdout


def test_each_item_of_a_batch_is_its_own_decision_in_one_log_record(private_system):
    from debar.v1 import sanction_pb2

    server, service = private_system
    denied, allowed = new_ric(), new_ric()
    with grpc.insecure_channel(service.address) as channel:
        registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(denied))
        batch = sanction_pb2_grpc.SanctionServiceStub(channel).BatchCheck(
            sanction_pb2.BatchCheckRequest(
                items=[check_request(allowed, "RAIL_G_TRAIN"), check_request(denied, "RAIL_G_TRAIN")]
            )
        )
        ids = [r.response.decision_id for r in batch.results]
        assert where(ids[0]).stream_id == where(ids[1]).stream_id  # one record, two decisions
        assert (where(ids[0]).index, where(ids[1]).index) == (0, 1)
        log = decision_pb2_grpc.DecisionServiceStub(channel)
        first, second = (log.GetDecision(decision_pb2.GetDecisionRequest(decision_id=i)) for i in ids)
    assert first.outcome == common_pb2.OUTCOME_ALLOW and not first.grounds
    assert second.outcome == common_pb2.OUTCOME_DENY and second.grounds[0].measure == "RAIL_G_TRAIN"
    assert first.subject_pseudonym != second.subject_pseudonym
    logged = _logged(server.url)
    assert [e.decision_id for e in logged] == ids and [e.outcome for e in logged] == ["ALLOW", "DENY"]


async def test_concurrent_unary_checks_are_all_logged(private_system):
    import asyncio

    from debar.v1 import sanction_pb2_grpc as stubs

    server, service = private_system
    people = [new_ric() for _ in range(32)]
    async with grpc.aio.insecure_channel(service.address) as channel:
        stub = stubs.SanctionServiceStub(channel)
        answers = await asyncio.gather(*(stub.Check(check_request(p, "RAIL_G_TRAIN")) for p in people))
    ids = [a.decision_id for a in answers]
    assert len(set(ids)) == 32
    logged = await asyncio.to_thread(_logged, server.url)
    assert sorted(e.decision_id for e in logged) == sorted(ids)
