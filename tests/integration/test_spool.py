"""The spool's replay is idempotent, and a torn last line (a crash mid-write) is skipped, not fatal."""

from __future__ import annotations

from debar.common.embedded_redis import EmbeddedRedis
from debar.common.identifiers import IdKind
from debar.sanction.adapters.file_spool import FileSpool
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.redis_store import RedisStore
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decisions import CheckQuery, LoggedCheck
from debar.sanction.domain.model import SubjectRef
from debar.sanction.failopen import FailOpen, SpoolReplay, SpoolStats

CATALOGUE = load_default_catalogue()


def _checks(n: int) -> list[LoggedCheck]:
    measure = CATALOGUE.measure("RAIL_TICKET_BAN")
    return [
        LoggedCheck(CheckQuery(SubjectRef(IdKind.RIC, f"t1.{i:024x}", f"{i % 3:03x}"), measure, 1_800_000_000), "t", 0)
        for i in range(n)
    ]


async def test_replaying_the_same_spool_twice_logs_each_decision_once(tmp_path):
    spool = FileSpool(tmp_path / "spool", CATALOGUE)
    stats = SpoolStats()
    decisions = FailOpen(spool, stats).allow_and_spool(_checks(7), CATALOGUE.version)
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
        await store.close()
    assert stats.replayed == 7
