"""Two registry writes to one record at once, on a private Redis that holds every write until both have read the
record: each was made of the record as read, and the second to be stored overwrote the first (a confirmed lift
undone by an Impose restating the record, or the restatement lost to the lift), though both were answered OK. A
write is now stored only over the record it was made of (lua/write.lua compares), and one that another write beat
is made again of the record as that one left it (app/registry.py: _unraced)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import msgpack
import pytest
import redis as redis_client
from redis.cluster import RedisCluster

from debar.common.errors import Aborted
from debar.common.identifiers import IdKind, Placement, Pseudonymiser, parse_keys, validate_identifier
from debar.common.settings import DEV_BUCKET_KEY, Settings
from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_cluster import LocalCluster
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.app.ports import Adapters
from debar.sanction.bootstrap import Core, build_core
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decisions import Decision
from debar.sanction.domain.model import Outcome, Restriction, Role, restriction_id
from debar.sanction.domain.objections import ObjectionOutcome, ObjectionState
from debar.sanction.domain.subjects import SubjectResolver
from debar.v1 import common_pb2, registry_pb2, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.requests import LIFT_DOCUMENT, SECOND_REGISTRY, check_request, impose_request
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric, new_uscc
from tests.support.use_cases import CLERK, DAY, SECOND_CLERK, check_input, impose_input

KEYS = "t1:x-test-secret-of-at-least-32-bytes"
TIMEOUT = 30
AMENDED = LIFT_DOCUMENT + " (amended)"
SOURCE = "court_consumption_order"


@pytest.fixture(params=["single", "cluster"])
def held(request, tmp_path: Path, logs_dir: Path) -> Iterator[tuple[grpc.Channel, list[redis_client.Redis]]]:
    """A service whose Redis calls wait for a Redis that holds writes (no integrator: its writes would be held
    too), and an admin connection to each of its servers: one, or a 3-master Cluster's, where the record, the
    subject's index and its log are on different nodes and a write claims the record first (lua/claim.lua)."""
    server = EmbeddedRedis(tmp_path / "redis") if request.param == "single" else LocalCluster(tmp_path / "cluster")
    server.start()
    nodes = [server] if isinstance(server, EmbeddedRedis) else server.nodes
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_REDIS_CLUSTER": str(request.param == "cluster").lower(),
           "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path), "DEBAR_PLAINTEXT": "true",
           "DEBAR_LOG_INTEGRATOR": "off", "DEBAR_REDIS_TIMEOUT_S": str(TIMEOUT),
           "DEBAR_REDIS_COMMAND_TIMEOUT_S": str(TIMEOUT)}  # fmt: skip
    service = start_service("sanction", env, logs_dir)
    admins = [redis_client.Redis.from_url(node.url) for node in nodes]
    try:
        with grpc.insecure_channel(service.address) as channel:
            yield channel, admins
    finally:
        for admin in admins:
            admin.execute_command("CLIENT", "UNPAUSE")
        service.stop()
        server.stop()


def _blocked(admins: list[redis_client.Redis]) -> int:
    return sum(admin.info("clients")["blocked_clients"] for admin in admins)


def _stale_refusals(admins: list[redis_client.Redis]) -> int:
    """The writes the scripts refused as made of a record that changed (their `STALE` error replies)."""
    return sum(int(admin.info("errorstats").get("errorstat_STALE", {}).get("count", 0)) for admin in admins)


def _held_then_released(admins: list[redis_client.Redis], *calls) -> list[Future]:  # type: ignore[no-untyped-def,type-arg]
    """Starts each call while Redis holds writes, the next once the one before waits for its write (it has read the
    record), then lets the writes go: every call has read the record as it was before any of them wrote."""
    for admin in admins:
        admin.execute_command("CLIENT", "PAUSE", TIMEOUT * 1000, "WRITE")
    futures: list[Future] = []  # type: ignore[type-arg]
    for call in calls:
        before = _blocked(admins)
        futures.append(call())
        assert wait_for(lambda seen=before, call=futures[-1]: _blocked(admins) > seen or call.done())
        if futures[-1].done():  # answered without writing: its answer says why
            futures[-1].result()
        time.sleep(0.2)
    for admin in admins:
        admin.execute_command("CLIENT", "UNPAUSE")
    return futures


def _both_read_first(admins: list[redis_client.Redis], *calls) -> list[Any]:  # type: ignore[no-untyped-def]
    return [f.result(timeout=TIMEOUT) for f in _held_then_released(admins, *calls)]


@pytest.mark.parametrize("confirm_first", [True, False], ids=["lift-then-restate", "restate-then-lift"])
def test_a_lift_confirmed_while_the_record_is_restated_keeps_both(held, confirm_first):
    channel, admins = held
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    checks = sanction_pb2_grpc.SanctionServiceStub(channel)
    person = new_ric()
    order = impose_request(person, measures=["RAIL_G_TRAIN"])
    imposed = registry.Impose(order, timeout=TIMEOUT).restriction
    lift = registry_pb2.LiftRequest(restriction_id=imposed.id, reason="debt paid", document_number=LIFT_DOCUMENT)
    assert registry.Lift(lift, timeout=TIMEOUT).restriction.HasField("pending_lift")  # a court list: two identities
    restated = registry_pb2.ImposeRequest()
    restated.CopyFrom(order)  # the same record (its start too: a later one would weaken it), one measure more
    restated.measures.append("AIR_TRAVEL")

    def confirm() -> Future:  # type: ignore[type-arg]
        request = registry_pb2.ConfirmLiftRequest(restriction_id=imposed.id, document_number=LIFT_DOCUMENT)
        return registry.ConfirmLift.future(request, metadata=SECOND_REGISTRY, timeout=TIMEOUT)  # type: ignore[no-any-return]

    def restate() -> Future:  # type: ignore[type-arg]
        return registry.Impose.future(restated, timeout=TIMEOUT)  # type: ignore[no-any-return]

    answers = _both_read_first(admins, *((confirm, restate) if confirm_first else (restate, confirm)))
    confirmed, imposed_again = answers if confirm_first else answers[::-1]
    assert confirmed.restriction.status == registry_pb2.RESTRICTION_STATUS_LIFTED  # both answered OK
    assert imposed_again.effect == registry_pb2.WRITE_EFFECT_UPDATED
    assert imposed_again.restriction.id == imposed.id

    stored = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=imposed.id), timeout=TIMEOUT)
    assert stored.status == registry_pb2.RESTRICTION_STATUS_LIFTED, "the confirmed lift was lost"
    assert stored.lift_confirmed_by == "clerk:zhao"
    assert list(stored.measures) == ["RAIL_G_TRAIN", "AIR_TRAVEL"], "the restatement was lost"
    assert _stale_refusals(admins) >= 1  # the later write was refused and made again, not merely last
    for measure in ("RAIL_G_TRAIN", "AIR_TRAVEL"):  # the index says what the record says: lifted, for both
        answer = checks.Check(check_request(person, measure), timeout=TIMEOUT)
        assert answer.outcome == common_pb2.OUTCOME_ALLOW, measure


def _record_apart_from_its_subject(admins: list[redis_client.Redis], person: str) -> str:
    """A source id whose record lives on another node than the person's index, on a Cluster (a write then spans
    nodes: the index entries first, the record last); any on one server."""
    if len(admins) == 1:
        return f"T-{time.time_ns()}"
    kwargs = admins[0].connection_pool.connection_kwargs
    cluster = RedisCluster(host=kwargs["host"], port=kwargs["port"])
    try:
        bucket = Placement(DEV_BUCKET_KEY.encode()).bucket(validate_identifier(IdKind.RIC, person))
        index_node = cluster.get_node_from_key(Keys().log(bucket)).port  # the index and log share the bucket's slot
        while True:
            source_id = f"T-{time.time_ns()}"
            record = Keys().restrictions(restriction_id("court_consumption_order", source_id))
            if cluster.get_node_from_key(record).port != index_node:
                return source_id
    finally:
        cluster.close()


def test_a_confirmation_beaten_by_a_restated_lift_leaves_the_index_as_the_record_says(held):
    """The asker restates their pending lift (another document) while a second clerk confirms it as it was, both
    made of the record as it was: the first stored wins, the other is made again (the confirmation, then refused:
    it names a document the lift no longer does; or the restated lift, of a lifted record: nothing to do). On a
    Cluster the refused write had, on its first attempt, ended the
    person's index entry on its node before its record was refused: checks then allowed a person whose record still
    said the lift awaited confirmation. A write spanning nodes now claims its record first (lua/claim.lua)."""
    channel, admins = held
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    checks = sanction_pb2_grpc.SanctionServiceStub(channel)
    person = new_ric()
    apart = _record_apart_from_its_subject(admins, person)
    imposed = registry.Impose(impose_request(person, measures=["RAIL_G_TRAIN"], source_id=apart), timeout=TIMEOUT)
    imposed = imposed.restriction
    lift = registry_pb2.LiftRequest(restriction_id=imposed.id, reason="debt paid", document_number=LIFT_DOCUMENT)
    assert registry.Lift(lift, timeout=TIMEOUT).restriction.HasField("pending_lift")
    restated = registry_pb2.LiftRequest(restriction_id=imposed.id, reason="debt paid in part",
                                        document_number=AMENDED)  # fmt: skip

    def confirm() -> Future:  # type: ignore[type-arg]
        request = registry_pb2.ConfirmLiftRequest(restriction_id=imposed.id, document_number=LIFT_DOCUMENT)
        return registry.ConfirmLift.future(request, metadata=SECOND_REGISTRY, timeout=TIMEOUT)  # type: ignore[no-any-return]

    def restate() -> Future:  # type: ignore[type-arg]
        return registry.Lift.future(restated, timeout=TIMEOUT)  # type: ignore[no-any-return]

    refused = []
    for future in _held_then_released(admins, restate, confirm):
        try:
            future.result(timeout=TIMEOUT)
        except grpc.RpcError as error:
            refused.append(error.code())
    assert refused in ([], [grpc.StatusCode.FAILED_PRECONDITION]), refused
    assert _stale_refusals(admins) >= 1  # the later write was refused and made again

    stored = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=imposed.id), timeout=TIMEOUT)
    answer = checks.Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT)
    if stored.status == registry_pb2.RESTRICTION_STATUS_LIFTED:
        assert not refused and stored.lift_confirmed_by == "clerk:zhao" and answer.outcome == common_pb2.OUTCOME_ALLOW
    else:  # the restated lift awaits confirmation: the restriction is in force
        assert stored.pending_lift.document_number == restated.document_number
        assert answer.outcome == common_pb2.OUTCOME_DENY, "checks allow a person whose lift awaits confirmation"


@asynccontextmanager
async def _core_on_a_cluster(tmp_path: Path) -> AsyncIterator[tuple[LocalCluster, Adapters, Core]]:
    """The sanction core wired in process on a private 3-master Cluster, its adapters closed on the way out."""
    with LocalCluster(tmp_path / "cluster") as cluster:
        env = {"DEBAR_REDIS_URL": cluster.url, "DEBAR_REDIS_CLUSTER": "true", "DEBAR_PSEUDONYM_KEYS": KEYS,
               "DEBAR_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
        adapters = redis_adapters(Settings.from_env(env), cluster.url, load_default_catalogue())
        resolver = SubjectResolver(Pseudonymiser(parse_keys(KEYS)), Placement(DEV_BUCKET_KEY.encode()))
        try:
            yield cluster, adapters, build_core(adapters, load_default_catalogue(), resolver)
        finally:
            await adapters.close()


async def test_on_a_cluster_a_write_made_of_a_record_another_write_holds_is_refused_before_it_writes(tmp_path):
    """The same race, made certain: in process, on a real 3-master Cluster, the asker restates their pending lift
    at the moment the confirmation, having written the person's index entry (on the subject's node), goes to store
    the record (on another). Before claims the restated lift was stored there and then; the confirmation's record
    was refused, and made again it was refused for good (another document): the record said the lift awaited
    confirmation while the index, ended by the confirmation's first attempt, had checks allow the person. Now the
    confirmation claims the record before writing anywhere, and the restatement, refused while it holds it, is
    ABORTED (ask again)."""
    async with _core_on_a_cluster(tmp_path) as (cluster, adapters, core):
        person = new_ric()
        admin = redis_client.Redis.from_url(cluster.url)
        apart = _record_apart_from_its_subject([admin, admin], person)
        item = impose_input(person, start=int(time.time()) - DAY, measures=["RAIL_G_TRAIN"], source_id=apart)
        restriction, _, _ = await core.registry.impose(item)
        await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, CLERK)
        store = adapters.store
        evaluate = store._eval
        racing: list[str] = []

        async def restated_meanwhile(name, keys, args, node=None):  # type: ignore[no-untyped-def]
            if name == "write" and not racing and msgpack.unpackb(args[0], raw=True)[0]:  # the record's call
                racing.append("running")
                try:
                    await core.registry.lift(restriction.id, "debt paid in part", AMENDED, CLERK)
                    racing.append("stored")
                except Aborted:
                    racing.append("aborted")
            return await evaluate(name, keys, args, node)

        store._eval = restated_meanwhile  # type: ignore[method-assign]
        confirmed, _ = await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, SECOND_CLERK)
        assert racing == ["running", "aborted"]
        assert confirmed.lifted_at is not None and (await core.registry.get(restriction.id)) == confirmed
        [decision] = await core.checker.check([check_input(person, "RAIL_G_TRAIN")], "railway")
        assert isinstance(decision, Decision) and decision.outcome is Outcome.ALLOW  # as the record says: lifted


async def test_on_a_cluster_a_write_of_one_call_does_not_write_past_another_writes_claim(tmp_path):
    """A company's record in its own node's slot, its legal representative's index on another: a ConfirmLift spans
    both nodes and claims the record, while an objection's dispute mark (the record and the company's log: one
    call on one node) comes between. Before, the mark compared only the record's bytes, was stored past the claim,
    and the confirmation, refused at its record after ending the representative's entry on the other node, had to
    be made again (its first attempt logged though it never took effect). Now the mark is refused while the claim
    holds (made again after it; here, held by the test, ABORTED)."""
    async with _core_on_a_cluster(tmp_path) as (cluster, adapters, core):
        mapped = RedisCluster.from_url(cluster.url)
        try:
            placement, keys = Placement(DEV_BUCKET_KEY.encode()), Keys()

            def node_of(kind: IdKind, number: str) -> int:
                return int(mapped.get_node_from_key(keys.log(placement.bucket(validate_identifier(kind, number)))).port)

            company, representative = new_uscc(), new_ric()
            while node_of(IdKind.USCC, company) == node_of(IdKind.RIC, representative):
                representative = new_ric()
            source_id = next(s for s in (f"T-{time.time_ns()}-{i}" for i in range(10_000))
                             if mapped.get_node_from_key(keys.restrictions(restriction_id(SOURCE, s))).port
                             == node_of(IdKind.USCC, company))  # fmt: skip
            item = impose_input(company, start=int(time.time()) - DAY, measures=["RAIL_G_TRAIN"], source_id=source_id,
                                principals=[(representative, Role.LEGAL_REPRESENTATIVE)])  # fmt: skip
            restriction, _, _ = await core.registry.impose(item)
            await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, CLERK)
            store = adapters.store
            evaluate = store._eval
            marked: list[str] = []

            async def disputed_meanwhile(name, keys, args, node=None):  # type: ignore[no-untyped-def]
                if name == "write" and not marked and msgpack.unpackb(args[0], raw=True)[4]:  # the claimed record's
                    marked.append("running")
                    try:
                        await core.registry.set_disputed([restriction.id], True, "objections", "objection filed")
                        marked.append("stored")
                    except Aborted:
                        marked.append("aborted")
                return await evaluate(name, keys, args, node)

            store._eval = disputed_meanwhile  # type: ignore[method-assign]
            logged = await adapters.store.registry_history(restriction.subject.bucket, restriction.id)
            confirmed, _ = await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, SECOND_CLERK)
            assert marked == ["running", "aborted"]
            assert confirmed.lifted_at is not None and (await core.registry.get(restriction.id)) == confirmed
            history = await adapters.store.registry_history(restriction.subject.bucket, restriction.id)
            assert len(history) == len(logged) + 1  # the confirmation's one entry: its one attempt
        finally:
            mapped.close()


@pytest.mark.parametrize("planted", ["no expiry", "an hour"])
async def test_on_a_cluster_a_claim_no_writer_made_holds_no_write_off(tmp_path, planted):
    """An operator with Redis write access plants a claim on a record (its claim key, with no expiry or one longer
    than any debar writer gives a claim). Before, every write of the record was ABORTED for as long as the key
    stayed, ConfirmLift past any claim's life as well, and nothing said why. Now a key debar would not have made
    is no claim: the confirmation, spanning nodes (the record claimed, so the planted key replaced) or in one call
    (the key disregarded), is stored."""
    async with _core_on_a_cluster(tmp_path) as (cluster, _, core):
        mapped = RedisCluster.from_url(cluster.url)
        try:
            for spanning in (True, False):
                person = new_ric()
                admin = redis_client.Redis.from_url(cluster.url)
                source_id = _record_apart_from_its_subject([admin, admin], person) if spanning else None
                item = impose_input(person, start=int(time.time()) - DAY, measures=["RAIL_G_TRAIN"],
                                    **({"source_id": source_id} if source_id else {}))  # fmt: skip
                restriction, _, _ = await core.registry.impose(item)
                await core.registry.lift(restriction.id, "debt paid", LIFT_DOCUMENT, CLERK)
                claim = Keys().record_claim(Keys().restrictions(restriction.id), restriction.id)
                if planted == "no expiry":
                    mapped.set(claim, "operator")
                else:
                    mapped.set(claim, "operator", px=3_600_000)
                confirmed, _ = await core.registry.confirm_lift(restriction.id, LIFT_DOCUMENT, SECOND_CLERK)
                assert confirmed.lifted_at is not None and (await core.registry.get(restriction.id)) == confirmed
                [decision] = await core.checker.check([check_input(person, "RAIL_G_TRAIN")], "railway")
                assert isinstance(decision, Decision) and decision.outcome is Outcome.ALLOW
                mapped.delete(claim)
        finally:
            mapped.close()


async def _a_refusal(core: Core) -> tuple[Restriction, Decision]:
    """A new person's restriction, and a Check it refused: what an objection is filed against."""
    person = new_ric()
    item = impose_input(person, start=int(time.time()) - DAY, measures=["RAIL_G_TRAIN"])
    restriction, _, _ = await core.registry.impose(item)
    [decision] = await core.checker.check([check_input(person, "RAIL_G_TRAIN")], "railway")
    assert isinstance(decision, Decision) and decision.outcome is Outcome.DENY
    return restriction, decision


async def test_an_objection_filed_while_its_record_is_held_is_filed_and_marked_by_its_next_step(tmp_path):
    """Another write holds the refusal's restriction (a claim within a claim's life) for as long as FileObjection
    tries to mark it disputed. Before, FileObjection answered ABORTED ("it did not take effect: ask again") though
    the objection was stored, open, and filing again was ABORTED too. Now the filing answers the objection; the mark
    is made by the objection's next step once the record is free."""
    async with _core_on_a_cluster(tmp_path) as (cluster, _, core):
        mapped = RedisCluster.from_url(cluster.url)
        try:
            restriction, decision = await _a_refusal(core)
            claim = Keys().record_claim(Keys().restrictions(restriction.id), restriction.id)
            mapped.set(claim, "another write", px=60_000)
            filed = await core.objections.file(decision.decision_id, "I paid in March", "me@example.com")
            assert filed.is_open and filed.decision_id == decision.decision_id
            assert not (await core.registry.get(restriction.id)).disputed  # the mark waits for the record
            mapped.delete(claim)
            await core.objections.review(filed.id, "reviewer:li")
            assert (await core.registry.get(restriction.id)).disputed
        finally:
            mapped.close()


async def test_an_objection_upheld_while_its_record_is_held_says_the_mark_stayed_and_clears_it_when_asked_again(
    tmp_path,
):
    """Upholding an objection clears its restriction's dispute mark; another write holds the record meanwhile. The
    objection is upheld, and has no next step to clear the mark later: the reviewer is told (ABORTED, naming the
    marks that stayed), and upholding it again, once the record is free, clears them, where it was refused (the
    objection already upheld) and the record stayed disputed for good."""
    async with _core_on_a_cluster(tmp_path) as (cluster, _, core):
        mapped = RedisCluster.from_url(cluster.url)
        try:
            restriction, decision = await _a_refusal(core)
            filed = await core.objections.file(decision.decision_id, "I paid in March", "me@example.com")
            await core.objections.review(filed.id, "reviewer:li")
            assert (await core.registry.get(restriction.id)).disputed
            claim = Keys().record_claim(Keys().restrictions(restriction.id), restriction.id)
            mapped.set(claim, "another write", px=60_000)
            with pytest.raises(Aborted, match="still marked disputed: ask again"):
                await core.objections.resolve(filed.id, ObjectionOutcome.UPHELD, "reviewer:li", "no proof of payment")
            assert (await core.objections.get(filed.id)).state is ObjectionState.UPHELD
            assert (await core.registry.get(restriction.id)).disputed
            mapped.delete(claim)
            again = await core.objections.resolve(filed.id, ObjectionOutcome.UPHELD, "reviewer:li", "no proof")
            assert (
                again.state is ObjectionState.UPHELD
                and again.resolution
                and again.resolution.reason == ("no proof of payment")
            )  # the resolution as made, not restated
            assert not (await core.registry.get(restriction.id)).disputed
        finally:
            mapped.close()
