"""`debar rekey` never loses a decision list: a subject's list of 20,000 decisions (more than one Lua call can
unpack, which emptied both lists before) moves whole, a run that dies between chunks leaves every decision readable
where it was, and running it again finishes the move. On a single Redis and, with DEBAR_TEST_REDIS=cluster, on a
3-master cluster (the session's shared server, under its own key prefix)."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
import redis as redis_client

from debar.common.identifiers import IdKind, Placement, Pseudonymiser, parse_keys, validate_identifier
from debar.sanction.adapters.decision_log import RedisDecisionLog
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.rekey_store import LIST_CHUNK, RedisRekey
from debar.sanction.app.rekey import rekey
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.subjects import SubjectResolver
from debar.v1 import decision_pb2, decision_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.support.requests import check_request, subject
from tests.support.servers import start_service
from tests.support.subjects import new_ric

PREFIX = "rekeylists"
FIRST, SECOND = "k1:first-secret-at-least-32-bytes-long", "k2:second-secret-at-least-32-bytes-long"
OLD_RING, NEW_RING = FIRST, f"{SECOND},{FIRST}"
DECISIONS = 20_000
CHUNKS_BEFORE_THE_CRASH = 7


class Crash(Exception):
    pass


class RekeyThatDies(RedisRekey):
    """Dies between two chunks of a list, as a killed `debar rekey` would."""

    def __init__(self, *args, chunks: int, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self._chunks_left = chunks

    async def _move_chunk(self, old_key: str, new_key: str) -> tuple[int, int]:
        if not self._chunks_left:
            raise Crash()
        self._chunks_left -= 1
        return await super()._move_chunk(old_key, new_key)


def _sync_client(url: str):  # type: ignore[no-untyped-def]
    return (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(url)


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "DEBAR_PSEUDONYM_KEYS": NEW_RING, "DEBAR_REDIS_PREFIX": PREFIX, "PATH": "/usr/bin:/bin",
        "DEBAR_REDIS_CLUSTER": "true" if ON_CLUSTER else "false",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def _decide(address: str, person: str, count: int) -> list[str]:
    """`count` real decisions about `person`, logged by the service (BatchChecks of 1000), newest first."""
    ids: list[str] = []
    with grpc.insecure_channel(address) as channel:
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        for _ in range(count // 1000):
            items = [check_request(person, "RAIL_G_TRAIN") for _ in range(1000)]
            answered = checks.BatchCheck(sanction_pb2.BatchCheckRequest(items=items), timeout=30)
            ids += [r.response.decision_id for r in answered.results]
    return list(reversed(ids))


def _listed(address: str, person: str, page_token: str = "") -> list[str]:
    with grpc.insecure_channel(address) as channel:
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        request = decision_pb2.ListDecisionsRequest(subject=subject(person), page_size=100, page_token=page_token)
        return [d.decision_id for d in decisions.ListDecisions(request, timeout=30).decisions]


@pytest.fixture(scope="module")
def service_env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, "DEBAR_REDIS_PREFIX": PREFIX}


async def test_a_long_list_survives_a_crash_mid_way_and_a_rerun_finishes_it(redis_server, service_env, logs_dir):
    person = new_ric()
    before_rotation = start_service("sanction", {**service_env, "DEBAR_PSEUDONYM_KEYS": OLD_RING}, logs_dir)
    try:
        older = _decide(before_rotation.address, person, DECISIONS)
    finally:
        before_rotation.stop()
    after_rotation = start_service("sanction", {**service_env, "DEBAR_PSEUDONYM_KEYS": NEW_RING}, logs_dir)
    try:
        newer = _decide(after_rotation.address, person, 1000)  # written under the new key since the rotation
        everything = newer + older
        # The lists keep each decision's location; callers see its external id.
        ids = DecisionIds.for_bucket_key(service_env["DEBAR_BUCKET_KEY"])

        def kept(external: list[str]) -> list[str]:
            return [str(located.address) for i in external if (located := ids.locate(i)) is not None]

        identifier = validate_identifier(IdKind.RIC, person)
        new, old = Pseudonymiser(parse_keys(NEW_RING)).chain(identifier)
        placement = Placement(service_env["DEBAR_BUCKET_KEY"].encode())  # the service's
        bucket = placement.bucket(identifier)
        keys = Keys(PREFIX)
        new_list, old_list = keys.subject_decisions(bucket, new), keys.subject_decisions(bucket, old)
        resolver = SubjectResolver(Pseudonymiser(parse_keys(NEW_RING)), placement)
        client = make_client(redis_server.url, cluster=ON_CLUSTER, timeout_s=5, connections=4)
        sync = _sync_client(redis_server.url)
        try:
            with pytest.raises(Crash):
                await rekey(RekeyThatDies(client, keys, chunks=CHUNKS_BEFORE_THE_CRASH), resolver)
            moved = CHUNKS_BEFORE_THE_CRASH * LIST_CHUNK
            # Nothing lost, nothing twice: the chunks moved so far are behind the newer ids, the rest is where it
            # was, and the person's listing (under both names) is the whole, in order.
            assert [i.decode() for i in sync.lrange(new_list, 0, -1)] == kept(newer + older[:moved])
            assert [i.decode() for i in sync.lrange(old_list, 0, -1)] == kept(older[moved:])
            log = RedisDecisionLog(client, keys)
            assert await log.ids_for_subject(bucket, [new, old], 0, len(everything) + 1) == kept(everything)
            assert _listed(after_rotation.address, person) == everything[:100]
            assert _listed(after_rotation.address, person, str(len(everything) - 50)) == everything[-50:]

            finished = _cli(redis_server.url, "rekey")
            assert finished.returncode == 0, finished.stderr
            assert "1 decision lists" in finished.stdout
            assert [i.decode() for i in sync.lrange(new_list, 0, -1)] == kept(everything)
            assert not sync.exists(old_list)
            assert _listed(after_rotation.address, person, str(len(everything) - 50)) == everything[-50:]

            again = _cli(redis_server.url, "rekey")
            assert again.returncode == 0 and "0 decision lists" in again.stdout, again.stdout
            assert sync.llen(new_list) == len(everything)
        finally:
            await client.aclose()
            sync.close()
    finally:
        after_rotation.stop()
