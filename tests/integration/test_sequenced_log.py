"""The sequencing streams as the log integrator reads them (adapters/sequenced_log.py): every decision of a check
call is one entry of its record, in canonical bytes that decode back to the decision answered."""

from __future__ import annotations

import asyncio

from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.sequenced_log import RedisSequencedLog
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.log_entries import DecisionEntry
from debar.v1 import decision_pb2, sanction_pb2
from tests.conftest import ON_CLUSTER
from tests.support.keys import TEST_BUCKET_KEY
from tests.support.requests import check_request, impose_request, subject
from tests.support.subjects import new_ric


def _log(url: str) -> RedisSequencedLog:
    client = make_client(url, cluster=ON_CLUSTER, timeout_s=5, connections=4)
    return RedisSequencedLog(client, Keys(), DecisionIds.for_bucket_key(TEST_BUCKET_KEY))


def test_a_batch_is_one_record_whose_entries_are_its_decisions_in_order(checks, registry, redis_server):
    restricted, free = new_ric(), new_ric()
    registry.Impose(impose_request(restricted))
    answer = checks.BatchCheck(
        sanction_pb2.BatchCheckRequest(items=[check_request(n, "RAIL_G_TRAIN") for n in (restricted, free)]),
        metadata=[("x-debar-caller", "railway")],
    )
    ids = [r.response.decision_id for r in answer.results]

    async def read() -> tuple[list[str], list[tuple[str, str, int] | None], list[bytes]]:
        log = _log(redis_server.url)
        streams = await log.streams()
        located = [await log.locate(i) for i in ids]
        entries: list[bytes] = []
        for where in located:
            assert where is not None
            record = await log.read(where[0], where[1])
            assert record is not None
            entries.append(record.entries[where[2]])
        after = await log.read_after(located[0][0], "", 10_000)  # type: ignore[index]
        assert located[0][1] in [r.record_id for r in after]  # type: ignore[index]
        return streams, located, entries

    streams, located, entries = asyncio.run(read())
    assert located[0] and located[0][0] in streams
    first, second = (DecisionEntry.decode(e) for e in entries)
    assert (first.decision_id, second.decision_id) == tuple(ids)
    assert (first.outcome, second.outcome) == ("DENY", "ALLOW")
    assert first.caller == "railway" and first.measure == "RAIL_G_TRAIN"
    assert [g.restriction_id for g in first.grounds] == [g.restriction_id for g in answer.results[0].response.grounds]
    assert first.grounds[0].legal_basis  # texts resolved, not refs
    assert subject(restricted).id not in entries[0].decode()


def test_a_delegated_decision_names_the_service_and_the_platform(checks, decisions, redis_server):
    answer = checks.Check(
        check_request(new_ric(), "RAIL_G_TRAIN"),
        metadata=[("x-debar-caller", "railway"), ("x-debar-on-behalf-of", "platform:12306")],
    )
    logged = decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=answer.decision_id))
    assert (logged.caller, logged.on_behalf_of) == ("railway", "platform:12306")

    async def entry() -> DecisionEntry:
        log = _log(redis_server.url)
        where = await log.locate(answer.decision_id)
        assert where is not None
        record = await log.read(where[0], where[1])
        assert record is not None
        return DecisionEntry.decode(record.entries[where[2]])

    found = asyncio.run(entry())
    assert (found.caller, found.on_behalf_of, found.decision_id) == ("railway", "platform:12306", answer.decision_id)
