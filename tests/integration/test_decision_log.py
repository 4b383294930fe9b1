"""Every decision is logged with its why, readable back, and the log's hash chain exposes tampering."""

from __future__ import annotations

import re
import subprocess
import sys

import grpc
import pytest
import redis as redis_client

from debar.local.embedded_redis import EmbeddedRedis
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.keys import where
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


def _verify(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "log", "verify"],
        capture_output=True, text=True, timeout=60, env={"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def _decide(service, person: str, count: int) -> list[str]:
    with grpc.insecure_channel(service.address) as channel:
        stub = sanction_pb2_grpc.SanctionServiceStub(channel)
        return [stub.Check(check_request(person, "RAIL_G_TRAIN")).decision_id for _ in range(count)]


@pytest.mark.parametrize("tamper", ["change a field", "delete an entry", "reorder two entries", "drop the newest"])
def test_log_verify_detects_tampering(private_system, tamper):
    server, service = private_system
    person = new_ric()
    with grpc.insecure_channel(service.address) as channel:
        registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(person))
    ids = _decide(service, person, 5)
    bucket = where(ids[0]).bucket
    assert all(where(i).bucket == bucket for i in ids)

    clean = _verify(server.url)
    assert clean.returncode == 0, clean.stderr
    assert "5 records holding 5 decisions verified, 0 broken" in clean.stdout

    # Streams only append, so a tamperer with Redis access rewrites the whole stream.
    r = redis_client.Redis.from_url(server.url)
    log = f"debar:log:{{{bucket}}}"
    entries = [(sid, dict(fields)) for sid, fields in r.xrange(log)]
    if tamper == "change a field":
        assert b"\x1cDENY\x1c" in entries[2][1][b"d"]
        entries[2][1][b"d"] = entries[2][1][b"d"].replace(b"\x1cDENY\x1c", b"\x1cALLOW\x1c")
    elif tamper == "delete an entry":
        del entries[2]
    elif tamper == "reorder two entries":
        (id1, f1), (id2, f2) = entries[1], entries[2]
        entries[1], entries[2] = (id1, f2), (id2, f1)
    else:
        del entries[-1]
    r.delete(log)
    for sid, fields in entries:
        r.xadd(log, fields, id=sid)

    broken = _verify(server.url)
    assert broken.returncode == 1
    assert f"BROKEN chain {bucket} at record" in broken.stderr
    if tamper != "drop the newest":
        broken_at = broken.stderr.split("at record ")[1].split(":")[0]
        assert broken_at in [where(i).stream_id for i in ids[1:4]], broken.stderr


def test_concurrent_checks_keep_every_chain_consistent(private_system):
    from concurrent.futures import ThreadPoolExecutor

    server, service = private_system
    people = [new_ric() for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        ids = [i for batch in pool.map(lambda p: _decide(service, p, 25), people) for i in batch]
    assert len(set(ids)) == 200
    result = _verify(server.url)
    assert result.returncode == 0, result.stderr
    # Concurrent checks may share a record (they are coalesced into one script call); none is lost.
    assert re.search(r"\b(\d+) records holding 200 decisions verified, 0 broken", result.stdout), result.stdout


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
    result = _verify(server.url)
    assert result.returncode == 0, result.stderr
    assert "1 chains, 1 records holding 2 decisions verified, 0 broken" in result.stdout


async def test_concurrent_unary_checks_are_all_logged_and_verify(private_system):
    import asyncio

    from debar.v1 import sanction_pb2_grpc as stubs

    server, service = private_system
    people = [new_ric() for _ in range(32)]
    async with grpc.aio.insecure_channel(service.address) as channel:
        stub = stubs.SanctionServiceStub(channel)
        answers = await asyncio.gather(*(stub.Check(check_request(p, "RAIL_G_TRAIN")) for p in people))
    ids = [a.decision_id for a in answers]
    assert len(set(ids)) == 32
    result = _verify(server.url)
    assert result.returncode == 0, result.stderr
    assert "holding 32 decisions verified, 0 broken" in result.stdout
