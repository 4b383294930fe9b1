"""The spool's replay is idempotent, a torn last line (a crash mid-write) is skipped, not fatal, and a spool is
replayed only into the Redis it belongs to."""

from __future__ import annotations

import signal
import time

import grpc
import pytest

from debar.common.identifiers import IdKind
from debar.local.embedded_redis import EmbeddedRedis
from debar.sanction.adapters.decision_log import RedisDecisionLog
from debar.sanction.adapters.file_spool import FileSpool, spool_folder
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.redis_store import RedisStore
from debar.sanction.app.failopen import FailOpen, SpoolReplay, SpoolStats
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import CheckQuery, LoggedCheck
from debar.sanction.domain.model import SubjectRef
from debar.v1 import decision_pb2, decision_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.support.keys import TEST_BUCKET_KEY
from tests.support.requests import check_request
from tests.support.servers import health_status, start_service, wait_for
from tests.support.subjects import new_ric

IDS = DecisionIds.for_bucket_key(TEST_BUCKET_KEY)

CATALOGUE = load_default_catalogue()
KEYS = "t1:test-secret-one-at-least-32-bytes"


def _checks(n: int) -> list[LoggedCheck]:
    measure = CATALOGUE.measure("RAIL_TICKET_BAN")
    return [
        LoggedCheck(CheckQuery(SubjectRef(IdKind.RIC, f"t1.{i:024x}", f"{i % 3:03x}"), measure, 1_800_000_000), "t", 0)
        for i in range(n)
    ]


async def test_replaying_the_same_spool_twice_logs_each_decision_once(tmp_path):
    spool = FileSpool(tmp_path / "spool", CATALOGUE)
    stats = SpoolStats()
    decisions = FailOpen(spool, stats, IDS).allow_and_spool(_checks(7), CATALOGUE.version)
    assert stats.spooled == 7
    [path] = spool.pending_files()
    copy = path.read_text()
    with open(path, "a") as handle:
        handle.write('{"id": "S1-torn')  # a crash mid-write: never acknowledged to anyone
    with EmbeddedRedis(tmp_path / "redis") as server:
        store = RedisStore(make_client(server.url, cluster=False, timeout_s=1, connections=2), Keys())
        replay = SpoolReplay(spool, store, stats, CATALOGUE.version)
        assert await replay.replay_pending() == 7
        assert not spool.pending_files()
        (tmp_path / "spool" / "replay-0-again.jsonl").write_text(copy)  # as if the process died before `done`
        assert await replay.replay_pending() == 0
        for decision in decisions:
            bucket = decision.query.subject.bucket
            assert await store.replayed_decision_id(bucket, decision.decision_id)
        # Replayed decisions (one record per bucket, in three buckets) leave their subjects' decision lists when
        # `debar log archive` forgets their records.
        client = make_client(server.url, cluster=False, timeout_s=1, connections=2)
        lists = [Keys().subject_decisions(d.query.subject.bucket, d.query.subject.pseudonym) for d in decisions]
        assert [await client.llen(key) for key in lists] == [1] * 7
        log = RedisDecisionLog(client, Keys())
        for bucket in await log.buckets():
            assert await log.forget_archived(bucket, [r async for r in log.walk(bucket)]) > 0
        assert [await client.llen(key) for key in lists] == [0] * 7
        await client.aclose()
        await store.close()
    assert stats.replayed == 7


def test_services_sharing_a_data_folder_replay_only_their_own_redis_spool(tmp_path, logs_dir):
    first, second = EmbeddedRedis(tmp_path / "first").start(), EmbeddedRedis(tmp_path / "second").start()
    restarted = EmbeddedRedis(first.data_dir, first.port)
    shared = {"DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"), "DEBAR_PLAINTEXT": "true"}
    mine = start_service("sanction", {**shared, "DEBAR_REDIS_URL": first.url}, logs_dir)
    other = start_service("sanction", {**shared, "DEBAR_REDIS_URL": second.url}, logs_dir)
    try:
        with grpc.insecure_channel(mine.address) as mine_channel, grpc.insecure_channel(other.address) as other_channel:
            first.stop(kill=True)
            answer = sanction_pb2_grpc.SanctionServiceStub(mine_channel).Check(
                check_request(new_ric(), "RAIL_TICKET_BAN"), timeout=5
            )
            assert answer.degradation == sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
            time.sleep(3)  # the other service's readiness loop (every second) replays every spool it owns
            assert not _logged(other_channel, answer.decision_id)
            assert list((tmp_path / "data" / "spool").rglob("*.jsonl"))  # still waiting for its own Redis

            restarted.start()
            assert wait_for(lambda: health_status(mine.address) == "SERVING", timeout_s=15)
            assert wait_for(lambda: _logged(mine_channel, answer.decision_id), timeout_s=15)
            assert not _logged(other_channel, answer.decision_id)
    finally:
        mine.stop()
        other.stop()
        restarted.stop()
        first.stop(kill=True)
        second.stop()


def _logged(channel: grpc.Channel, decision_id: str) -> bool:
    try:
        decision_pb2_grpc.DecisionServiceStub(channel).GetDecision(
            decision_pb2.GetDecisionRequest(decision_id=decision_id), timeout=5
        )
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND, error
        return False
    return True


def test_a_spool_that_cannot_be_written_turns_the_fail_open_allow_into_unavailable(tmp_path, logs_dir):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    data = tmp_path / "data"
    blocker = spool_folder(data, redis.url, "debar")  # the spool folder of this Redis (default key prefix)
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the spool folder must be\n")  # root writes through chmod: a file blocks
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(data),
           "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = sanction_pb2_grpc.SanctionServiceStub(channel)
            measures = stub.ListMeasures(sanction_pb2.ListMeasuresRequest(), timeout=5).measures
            assert {m.code: m.failure_policy for m in measures}["RAIL_TICKET_BAN"] == sanction_pb2.FAILURE_POLICY_OPEN

            redis.stop(kill=True)
            assert wait_for(lambda: health_status(service.address) == "NOT_SERVING", timeout_s=15)
            with pytest.raises(grpc.RpcError) as raised:
                stub.Check(check_request(new_ric(), "RAIL_TICKET_BAN"), timeout=10)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            batch = stub.BatchCheck(
                sanction_pb2.BatchCheckRequest(items=[check_request(new_ric(), "RAIL_TICKET_BAN") for _ in range(3)]),
                timeout=10,
            )
            assert [r.WhichOneof("result") for r in batch.results] == ["error"] * 3
            assert {r.error.code for r in batch.results} == {grpc.StatusCode.UNAVAILABLE.value[0]}
        assert blocker.read_text() == "a file where the spool folder must be\n"
        assert not list(data.rglob("*.jsonl"))  # nothing was spooled anywhere else either
    finally:
        service.stop(signal.SIGKILL)
        redis.stop(kill=True)


def test_a_spooled_decision_keeps_who_asked_and_for_whom(tmp_path):
    spool = FileSpool(tmp_path / "spool", CATALOGUE)
    [check] = _checks(1)
    delegated = LoggedCheck(check.query, "railway", 0, on_behalf_of="platform:12306")
    FailOpen(spool, SpoolStats(), IDS).allow_and_spool([delegated, check], CATALOGUE.version)
    [path] = spool.pending_files()
    kept = [(d.check.caller, d.check.on_behalf_of) for d in spool.read(path)]
    assert kept == [("railway", "platform:12306"), ("t", "")]
