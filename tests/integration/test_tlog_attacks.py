"""The insider attacks of issue 10, each played on a real sanction service's Redis (single, and the 3-master
cluster with DEBAR_TEST_REDIS=cluster), each detected by `debar log verify` (exit 1, naming what broke) while an
untouched log verifies (exit 0). The insider has write access to all of Redis, and here even the log's signing key:
after tampering with the entries it rebuilds every Redis-side structure (leaf order, tiles, tree state, cursors,
latest checkpoint, the subject's decision list) with a fresh integrator, so Redis is consistent with itself. What it
cannot rewrite is the checkpoint store outside Redis. Each test runs on its own key prefix of the suite's Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis as redis_client

from debar.common.settings import Settings
from debar.sanction.adapters import codec
from debar.sanction.adapters.keys import TreeKeys
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.app.integrator import Integrator
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.model import PendingLift
from debar.tlog.keys import parse_signer_key
from debar.v1 import decision_pb2, decision_pb2_grpc, registry_pb2, registry_pb2_grpc, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.support.keys import TEST_LOG_SIGNER_KEY, where
from tests.support.memory_tlog import MemoryCheckpoints, NoWitnesses
from tests.support.requests import (
    check_request,
    confirm_resolution,
    exemption_confirmed,
    impose_request,
    lift_confirmed,
    subject,
    ts,
)
from tests.support.servers import ServiceProcess, start_service, wait_for
from tests.support.subjects import new_ric, new_uscc

TIMEOUT = 30


@dataclass
class LogSystem:
    env: dict[str, str]
    prefix: str
    url: str
    service: ServiceProcess | None
    decision_ids: list[str]
    refused: list[str]

    def redis(self) -> Any:
        return (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(self.url)

    def streams(self) -> list[str]:
        r = self.redis()
        found = sorted({k.decode() for k in r.scan_iter(match=f"{self.prefix}:log:*", count=1000)})
        return sorted(found, key=lambda k: -int(r.xlen(k)))

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def start(self, logs_dir: Path) -> ServiceProcess:
        self.service = start_service("sanction", self.env, logs_dir)
        return self.service


def verify(env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "log", "verify", *extra],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip


def checkpoint_size(service: ServiceProcess) -> int:
    with grpc.insecure_channel(service.address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        try:
            return stub.GetCheckpoint(
                decision_pb2.GetCheckpointRequest(), metadata=[("x-debar-caller", "portal")], timeout=TIMEOUT
            ).size
        except grpc.RpcError:
            return -1


def wait_integrated(system: LogSystem) -> None:
    """Until the newest decision has a receipt and the checkpoint stops growing."""
    assert system.service is not None
    service = system.service
    with grpc.insecure_channel(service.address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)

        def proven() -> bool:
            try:
                stub.GetDecisionProof(
                    decision_pb2.GetDecisionProofRequest(decision_id=system.decision_ids[-1]),
                    metadata=[("x-debar-caller", "reviewer:li")], timeout=TIMEOUT,
                )  # fmt: skip
                return True
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                return False

        assert wait_for(proven, timeout_s=30, interval_s=0.1), service.log()
    last = -2
    while (size := checkpoint_size(service)) != last:
        last = size
        time.sleep(1.2)


def make_decisions(service: ServiceProcess, people: int = 6, checks_each: int = 3) -> tuple[list[str], list[str]]:
    ids, refused = [], []
    with grpc.insecure_channel(service.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        for n in range(people):
            person = new_ric()
            if n % 2 == 0:
                registry.Impose(impose_request(person), timeout=TIMEOUT)
            for _ in range(checks_each):
                answer = checks.Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT)
                ids.append(answer.decision_id)
                if n % 2 == 0:
                    refused.append(answer.decision_id)
    return ids, refused


@pytest.fixture
def system(service_env: dict[str, str], logs_dir: Path, tmp_path: Path) -> Iterator[LogSystem]:
    prefix = f"tla{uuid.uuid4().hex[:8]}"
    env = {**service_env, "DEBAR_REDIS_PREFIX": prefix, "DEBAR_DATA_DIR": str(tmp_path / "data")}
    found = LogSystem(env, prefix, service_env["DEBAR_REDIS_URL"], None, [], [])
    service = found.start(logs_dir)
    for _ in range(2):  # two rounds: more than one checkpoint, one between them
        ids, refused = make_decisions(service, people=4)
        found.decision_ids += ids
        found.refused += refused
        wait_integrated(found)
    found.stop()
    yield found
    found.stop()


# -- the insider's tools -----------------------------------------------------------------------------------


def rewrite_stream(r: Any, key: str, records: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
    """Streams only append: a tamperer rewrites the whole stream, keeping the ids it wants."""
    r.delete(key)
    for stream_id, fields in records:
        r.xadd(key, fields, id=stream_id)


def rebuild_tree(system: LogSystem) -> None:
    """Everything Redis holds about the tree, recomputed from the (tampered) entries, with the log's own key: the
    leaf order, tiles, state, cursors and the latest checkpoint agree with the entries again."""
    r = system.redis()
    keys = TreeKeys(system.prefix)
    for key in [keys.lease, keys.state, keys.cursors, keys.records, keys.leaf, keys.checkpoint]:
        r.delete(key)
    for tile in list(r.scan_iter(match=keys.tile_pattern(), count=1000)):
        r.delete(tile)

    async def integrate() -> None:
        settings = Settings.from_env({**os.environ, **system.env})
        adapters = redis_adapters(settings, system.url, load_default_catalogue())
        integrator = Integrator(
            adapters.sequenced_log, adapters.tree, MemoryCheckpoints(), parse_signer_key(TEST_LOG_SIGNER_KEY),
            NoWitnesses(),
        )  # fmt: skip
        try:
            while True:
                await integrator.step()
                if not integrator.more_pending:
                    break
        finally:
            await adapters.close()

    asyncio.run(integrate())


def drop_from_decision_lists(system: LogSystem, decision_id: str) -> None:
    """The subject's decision list forgets the decision too (the lists hold its location, which the insider can
    read from the stream record; the external id is what the person was given)."""
    address = where(decision_id)
    location = f"{address.stream_id}-{address.bucket}-{address.index}"
    r = system.redis()
    removed = sum(int(r.lrem(key, 0, location)) for key in r.scan_iter(match=f"{system.prefix}:ds:*", count=1000))
    assert removed == 1, f"{decision_id} ({location}) was in {removed} decision lists"


def records_of(r: Any, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return [(sid, dict(fields)) for sid, fields in r.xrange(key)]


REFUSED = b"\x1cDENY\x1c"  # a decision's outcome field, as the check script packs it


def change_a_field(fields: dict[bytes, bytes]) -> dict[bytes, bytes]:
    """A refusal made an allow."""
    changed = dict(fields)
    assert REFUSED in changed[b"d"]
    changed[b"d"] = changed[b"d"].replace(REFUSED, b"\x1cALLOW\x1c", 1)
    return changed


def refused_record(system: LogSystem) -> tuple[str, int]:
    """A stream holding a refusal, and that record's position in it."""
    r = system.redis()
    for stream in system.streams():
        for i, (_, fields) in enumerate(records_of(r, stream)):
            if REFUSED in fields.get(b"d", b""):
                return stream, i
    raise AssertionError("no refusal logged")


# -- the attacks ---------------------------------------------------------------------------------------------


def test_an_untouched_log_verifies(system: LogSystem):
    done = verify(system.env)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "0 broken" in done.stdout
    assert "entries rebuilt" in done.stdout
    signed = re.search(
        r"(\d+) registry, objection and rekey entries signed by their writer \((\d+) unsigned", done.stdout
    )
    assert signed is not None and int(signed[1]) >= 4 and signed[2] == "0", done.stdout  # the fixture's Imposes


def test_deleting_a_refusal_and_fixing_up_every_redis_side_state_is_detected(system: LogSystem):
    r = system.redis()
    stream, victim = refused_record(system)
    records = records_of(r, stream)
    del records[victim]
    rewrite_stream(r, stream, records)
    for decision_id in system.refused:
        drop_from_decision_lists(system, decision_id)
    rebuild_tree(system)
    done = verify(system.env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN checkpoint of size" in done.stderr
    assert "is not the root of the tree rebuilt from the entries" in done.stderr


def test_deleting_a_record_without_fixing_up_names_the_record(system: LogSystem):
    r = system.redis()
    stream = system.streams()[0]
    records = records_of(r, stream)
    gone = records.pop(1)
    rewrite_stream(r, stream, records)
    done = verify(system.env)
    assert done.returncode == 1
    assert f"record {gone[0].decode()} of {stream}" in done.stderr and "is missing" in done.stderr


def test_rewriting_a_field_is_detected(system: LogSystem):
    r = system.redis()
    stream, victim = refused_record(system)
    records = records_of(r, stream)
    records[victim] = (records[victim][0], change_a_field(records[victim][1]))
    rewrite_stream(r, stream, records)
    plain = verify(system.env)
    assert plain.returncode == 1
    assert "the entry does not hash to the stored leaf" in plain.stderr
    rebuild_tree(system)
    fixed_up = verify(system.env)
    assert fixed_up.returncode == 1
    assert "is not the root of the tree rebuilt from the entries" in fixed_up.stderr


def test_reordering_two_entries_is_detected(system: LogSystem):
    r = system.redis()
    stream = system.streams()[0]
    records = records_of(r, stream)
    (id0, f0), (id1, f1) = records[0], records[1]
    assert f0 != f1
    records[0], records[1] = (id0, f1), (id1, f0)
    rewrite_stream(r, stream, records)
    rebuild_tree(system)
    done = verify(system.env)
    assert done.returncode == 1
    assert "is not the root of the tree rebuilt from the entries" in done.stderr


def test_cutting_the_tail_is_detected(system: LogSystem):
    r = system.redis()
    for stream in system.streams():
        records = records_of(r, stream)
        rewrite_stream(r, stream, records[:-1])
    rebuild_tree(system)
    done = verify(system.env)
    assert done.returncode == 1
    assert "BROKEN checkpoint of size" in done.stderr


def test_dropping_a_bucket_is_detected(system: LogSystem):
    r = system.redis()
    stream = system.streams()[-1]
    r.delete(stream)
    rebuild_tree(system)
    done = verify(system.env)
    assert done.returncode == 1
    assert "BROKEN checkpoint of size" in done.stderr
    # Without the fix-up, the dropped stream's records are named.
    r.delete(stream)


def test_trimming_the_front_and_fixing_up_pointers_is_detected(system: LogSystem):
    r = system.redis()
    stream = system.streams()[0]
    records = records_of(r, stream)
    first_kept = records[1][0].decode()
    assert r.xtrim(stream, minid=first_kept, approximate=False) == 1
    base_key = f"{system.prefix}:logbase:{stream[stream.index('{') :]}"
    r.set(base_key, f"{records[0][0].decode()} {'0' * 40}")  # where the chain "continues", as archiving sets it
    plain = verify(system.env)
    assert plain.returncode == 1
    assert f"record {records[0][0].decode()} of {stream}" in plain.stderr
    rebuild_tree(system)
    fixed_up = verify(system.env)
    assert fixed_up.returncode == 1
    assert "BROKEN checkpoint of size" in fixed_up.stderr


@pytest.mark.parametrize("what", ["a leaf", "the tree state", "the leaf order"])
def test_rewriting_stored_tree_state_is_detected(system: LogSystem, what: str):
    r = system.redis()
    keys = TreeKeys(system.prefix)
    if what == "a leaf":
        tile = keys.tile(0, 0)
        data = bytearray(r.get(tile))
        data[40] ^= 0x01
        r.set(tile, bytes(data))
        expected = "does not hash to the stored leaf"
    elif what == "the tree state":
        r.hset(keys.state, "root", "00" * 32)
        r.hset(keys.state, "size", "1")
        expected = "stored tree state"
    else:
        items = r.lrange(keys.records, 0, -1)
        r.delete(keys.records)
        r.rpush(keys.records, items[1], items[0], *items[2:])
        expected = "the leaf order puts it at leaf"
    done = verify(system.env)
    assert done.returncode == 1, done.stdout
    assert expected in done.stderr


def test_verify_cannot_run_without_checkpoints_or_key(system: LogSystem, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_checkpoints = verify(system.env, "--checkpoints", str(empty))
    assert no_checkpoints.returncode == 2 and "no stored checkpoint" in no_checkpoints.stderr
    no_key = verify({**system.env, "DEBAR_LOG_SIGNING_KEY": str(tmp_path / "missing.key")})
    assert no_key.returncode == 2 and "DEBAR_LOG_SIGNING_KEY" in no_key.stderr


# -- forged records: written into a sequencing stream behind the service's back, then integrated and signed by the
# genuine integrator (the insider holds Redis, not the signing key) -------------------------------------------------


def integrate_forgery(system: LogSystem, logs_dir: Path) -> None:
    """Starts the service again and waits until a checkpoint it signs covers every record in Redis."""
    before = checkpoint_size_of(system)
    service = system.start(logs_dir)
    keys = TreeKeys(system.prefix)
    r = system.redis()

    def covered() -> bool:
        size = checkpoint_size(service)
        state = r.hget(keys.state, "size")
        return size > before and state is not None and int(state) == size

    assert wait_for(covered, timeout_s=30, interval_s=0.2), service.log()
    system.stop()


def checkpoint_size_of(system: LogSystem) -> int:
    size = system.redis().hget(TreeKeys(system.prefix).checkpoint, "size")
    return int(size) if size is not None else 0


def registry_records(r: Any, system: LogSystem) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
    return [(s, sid, f) for s in system.streams() for sid, f in records_of(r, s) if b"r" in f]


def forged_lift(genuine: bytes, caller: str, action: str, changed: str) -> bytes:
    """A registry record as write.lua stores it (field r: the packed entry, adapters/codec.py), made from a
    genuine one by someone who can read the packing: another identity, another action, no signature (or the
    genuine record's, which signs other bytes)."""
    packed = json.loads(genuine)[:12]  # without the genuine record's signature (test_..._changed_under_... keeps one)
    packed[1] = int(time.time())
    packed[2], packed[4], packed[7], packed[8] = caller, action, "(2026) Jing 0105 Zhi Yi 9", "debt paid"
    packed[9], packed[10], packed[11] = [changed], [], []
    return json.dumps(packed, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_forged_four_eyes_lift_is_detected(system: LogSystem, logs_dir: Path):
    """A clerk's lift and another clerk's confirmation, neither of which happened, XADDed to the restriction's
    bucket stream: the integrator signs them into the tree like any record. Only the writing service's signature
    on each registry entry (the log's key, never in Redis) tells them apart."""
    r = system.redis()
    stream, _, fields = registry_records(r, system)[0]
    lift = forged_lift(fields[b"r"], "clerk:wang", "lift", "lift_pending")
    confirm = forged_lift(fields[b"r"], "clerk:zhao", "confirm_lift", "lift_confirmed")
    ids = [r.xadd(stream, {b"r": lift}).decode(), r.xadd(stream, {b"r": confirm}).decode()]
    integrate_forgery(system, logs_dir)
    done = verify(system.env)
    assert done.returncode == 1, done.stdout + done.stderr
    for record_id in ids:
        assert f"record {record_id} of {stream}" in done.stderr, done.stderr
    assert "not signed by the log's key" in done.stderr


def test_a_genuine_registry_entry_changed_under_its_signature_is_detected(system: LogSystem, logs_dir: Path):
    r = system.redis()
    stream, _, fields = registry_records(r, system)[0]
    packed = json.loads(fields[b"r"])
    packed[2] = "clerk:zhao"  # the same write, attributed to someone else, its signature kept
    record_id = r.xadd(stream, {b"r": json.dumps(packed, separators=(",", ":"))}).decode()
    integrate_forgery(system, logs_dir)
    done = verify(system.env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"record {record_id} of {stream}" in done.stderr and "not signed by the log's key" in done.stderr


def test_a_genuine_registry_entry_replayed_is_detected(system: LogSystem, logs_dir: Path):
    """A signed entry copied into the stream again (a second Impose, lift or confirmation that never happened)."""
    r = system.redis()
    stream, _, fields = registry_records(r, system)[0]
    record_id = r.xadd(stream, dict(fields)).decode()
    integrate_forgery(system, logs_dir)
    done = verify(system.env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"record {record_id} of {stream}" in done.stderr and "twice" in done.stderr


def test_a_forged_objection_overturn_is_detected(system: LogSystem, logs_dir: Path):
    """An overturn confirmed by a second reviewer, XADDed to the objection log: a four-eyes correction on paper."""
    r = system.redis()
    log = f"{system.prefix}:objlog"  # adapters/keys.py: ObjectionKeys.log
    record_id = r.xadd(log, {
        b"o": b"O" + uuid.uuid4().hex[:16].upper().encode(), b"d": system.refused[0].encode(),
        b"f": b"awaiting_confirmation", b"t": b"overturned", b"a": b"reviewer:zhang", b"r": b"confirmed",
        b"at": str(int(time.time())).encode(),
    }).decode()  # fmt: skip
    integrate_forgery(system, logs_dir)
    done = verify(system.env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"record {record_id} of {log}" in done.stderr and "not signed by the log's key" in done.stderr


# -- the records themselves, rewritten in place with no entry at all ------------------------------------------------


def restriction_keys(r: Any, system: LogSystem) -> list[bytes]:
    return sorted(r.scan_iter(match=f"{system.prefix}:r:*", count=1000))


@pytest.mark.parametrize("how", ["lifted in place", "deleted", "created"])
def test_a_restriction_changed_in_place_is_detected(system: LogSystem, logs_dir: Path, how: str):
    """The insider skips the log altogether: it lifts a court order by rewriting the stored record (checks then
    allow), deletes one, or stores one no registry write made. The log is sound; the records disagree with it."""
    r = system.redis()
    key = restriction_keys(r, system)[0]
    rid, raw = next(iter(r.hgetall(key).items()))
    if how == "lifted in place":
        catalogue = load_default_catalogue()
        texts = {k.decode(): v.decode() for k, v in r.hgetall(f"{system.prefix}:txt").items()}
        record = codec.decode_restriction(rid.decode(), raw, texts, catalogue)
        lifted = dataclasses.replace(record, lifted_at=int(time.time()) - 60, lift_reason="debt paid")
        r.hset(key, rid, codec.encode_restriction(lifted, catalogue, {v: k for k, v in texts.items()}))
        expected = f"restriction {rid.decode()}: lifted_at is"
    elif how == "deleted":
        r.hdel(key, rid)
        expected = f"restriction {rid.decode()}: created by its registry entries, not held in Redis"
    else:
        r.hset(key, rid.decode()[:-1] + "Z", raw)
        expected = f"restriction {rid.decode()[:-1]}Z: held in Redis with no registry entry"
    done = verify(system.env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stderr, done.stderr


def test_every_kind_of_registry_write_verifies_against_the_records(system: LogSystem, logs_dir: Path):
    """Not a false alarm: lifts and their confirmation, an Impose that extends, permits granted and confirmed, a
    principal link, an objection's dispute marks and its confirmed correction: each record as held is what its
    entries leave it."""
    service = system.start(logs_dir)
    with grpc.insecure_channel(service.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        lifted, extended, permitted, objecting, principal = (new_ric() for _ in range(5))
        rid = registry.Impose(impose_request(lifted), timeout=TIMEOUT).restriction.id
        lift_confirmed(registry, rid)
        first = impose_request(extended, end=time.time() + 100 * 86400)
        registry.Impose(first, timeout=TIMEOUT)
        first.effective_until.CopyFrom(ts(time.time() + 400 * 86400))
        registry.Impose(first, timeout=TIMEOUT)
        registry.Impose(impose_request(permitted), timeout=TIMEOUT)
        exemption_confirmed(registry, registry_pb2.GrantExemptionRequest(
            subject=subject(permitted), measure="HOTEL_STAR_RATED", effective_from=ts(time.time() - 86400),
            effective_until=ts(time.time() + 86400), authority="Chaoyang Court", reason="funeral",
            document_number="(2026) Jing 0105 Zhi Yi 1",
        ))  # fmt: skip
        registry.Impose(impose_request(new_uscc(), principals=[(principal, 2)]), timeout=TIMEOUT)
        registry.Impose(impose_request(objecting), timeout=TIMEOUT)
        refusal = checks.Check(check_request(objecting, "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
        system.decision_ids.append(refusal)
        filed = decisions.FileObjection(decision_pb2.FileObjectionRequest(
            decision_id=refusal, statement="Not me.", contact="me@example.com", subject=subject(objecting)
        ), timeout=TIMEOUT)  # fmt: skip
        decisions.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=filed.objection_id))
        decisions.ResolveObjection(decision_pb2.ResolveObjectionRequest(
            objection_id=filed.objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="mistaken"
        ))  # fmt: skip
        confirm_resolution(decisions, filed.objection_id)
    wait_integrated(system)
    system.stop()
    done = verify(system.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
    held = re.search(r"(\d+) restrictions and permits held compared with their registry entries", done.stdout)
    assert held is not None and int(held[1]) >= 4 + 6, done.stdout  # the fixture's, these five and the permit


def test_a_forged_import_entry_is_counted_unsigned_and_broken_where_tools_sign(system: LogSystem, logs_dir: Path):
    """An entry naming the caller `import` without a signature is what `debar import` run without the log's key
    writes: counted, not broken, unless the deployment says its tools always sign (deploy/ runs them in the
    sanction pod, with the key)."""
    r = system.redis()
    stream, _, fields = registry_records(r, system)[0]
    packed = json.loads(forged_lift(fields[b"r"], "import", "impose", "field:lift_reason"))
    packed[10], packed[11] = ["lift_reason", ""], ["lift_reason", ""]  # leaves the record as it is (flat pairs)
    record_id = r.xadd(stream, {b"r": json.dumps(packed, separators=(",", ":"))}).decode()
    integrate_forgery(system, logs_dir)
    lenient = verify(system.env)
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    assert "(1 unsigned, of debar import or rekey" in lenient.stdout, lenient.stdout
    strict = verify(system.env, "--require-signatures")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert f"record {record_id} of {stream}" in strict.stderr and "not signed by the log's key" in strict.stderr


def test_a_pending_lift_written_behind_the_log_and_confirmed_by_one_clerk_is_detected(
    system: LogSystem, logs_dir: Path
):
    """Redis write access (no key) and one clerk: the insider stores a pending lift on a court order, "asked by"
    clerk:zhao, who never asked; clerk:wang confirms it, alone, and the order is lifted. Every entry is genuine and
    signed (the Impose, wang's ConfirmLift), and the record is what they leave it. Before: verify exited 0. Now every
    write's `before` is held to what the log left the record (the fields the write names): the ConfirmLift's
    `before` shows a pending lift no entry ever made."""
    service = system.start(logs_dir)
    person = new_ric()
    wang = [("x-debar-caller", "clerk:wang")]
    with grpc.insecure_channel(service.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        rid = registry.Impose(impose_request(person), metadata=wang, timeout=TIMEOUT).restriction.id
        r = system.redis()
        key = next(k for k in restriction_keys(r, system) if r.hexists(k, rid))
        catalogue = load_default_catalogue()
        texts = {k.decode(): v.decode() for k, v in r.hgetall(f"{system.prefix}:txt").items()}
        record = codec.decode_restriction(rid, r.hget(key, rid), texts, catalogue)
        forged = dataclasses.replace(
            record, pending_lift=PendingLift("clerk:zhao", int(time.time()), "debt paid", "(2026) Jing 01 Zhi 9")
        )
        r.hset(key, rid, codec.encode_restriction(forged, catalogue, {v: k for k, v in texts.items()}))
        confirmed = registry.ConfirmLift(
            registry_pb2.ConfirmLiftRequest(restriction_id=rid, document_number="(2026) Jing 01 Zhi 9"),
            metadata=wang, timeout=TIMEOUT,
        )  # fmt: skip
        assert confirmed.restriction.HasField("lifted_at")  # the attack's effect: one clerk lifted a court order
    wait_integrated(system)
    system.stop()
    done = verify(system.env, "--require-signatures")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"restriction {rid}: before" in done.stderr and "pending_lift" in done.stderr, done.stderr


def test_an_objection_rolled_back_to_an_older_sealed_version_is_detected(system: LogSystem, logs_dir: Path):
    """Redis write access (no key): reviewer:li overturns, reviewer:zhang declines the overturn (upheld); the insider
    puts back the sealed record as it was before zhang's step (a genuine version: the seal opens), and reviewer:wang,
    seeing an overturn awaiting confirmation, confirms it: the court's restriction is corrected away although one of
    the two reviewers who saw the overturn refused it. Every entry is genuine. Before: verify exited 0. Now the steps
    of each objection are held to a chain: wang's step starts from awaiting_confirmation, the log left it upheld."""
    from debar.sanction.adapters.keys import ObjectionKeys

    service = system.start(logs_dir)
    person = new_ric()
    as_ = {name: [("x-debar-caller", name)] for name in ("reviewer:li", "reviewer:zhang", "reviewer:wang")}
    with grpc.insecure_channel(service.address) as channel:
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        oid = _objection_to_a_refusal(system, channel, person)
        decisions.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=oid), metadata=as_["reviewer:li"])
        overturn = decision_pb2.ResolveObjectionRequest(
            objection_id=oid, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="mistaken"
        )
        decisions.ResolveObjection(overturn, metadata=as_["reviewer:li"], timeout=TIMEOUT)
        r = system.redis()
        keys = ObjectionKeys(system.prefix)
        awaiting = r.hget(keys.records(oid), oid)
        decisions.ResolveObjection(decision_pb2.ResolveObjectionRequest(
            objection_id=oid, outcome=decision_pb2.OBJECTION_OUTCOME_UPHELD, reason="it is this person"
        ), metadata=as_["reviewer:zhang"], timeout=TIMEOUT)  # fmt: skip
        r.hset(keys.records(oid), oid, awaiting)  # the older sealed version, put back
        done = decisions.ConfirmResolution(decision_pb2.ConfirmResolutionRequest(objection_id=oid),
                                           metadata=as_["reviewer:wang"], timeout=TIMEOUT)  # fmt: skip
        assert done.state == decision_pb2.OBJECTION_STATE_OVERTURNED  # the attack's effect
    wait_integrated(system)
    system.stop()
    done = verify(system.env, "--require-signatures")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"objection {oid}: the step awaiting_confirmation -> overturned by reviewer:wang" in done.stderr, done.stderr


def _objection_to_a_refusal(system: LogSystem, channel: grpc.Channel, person: str) -> str:
    """A court order on `person`, a refused Check, and the person's objection to it: its id."""
    registry = registry_pb2_grpc.RegistryServiceStub(channel)
    checks = sanction_pb2_grpc.SanctionServiceStub(channel)
    decisions = decision_pb2_grpc.DecisionServiceStub(channel)
    registry.Impose(impose_request(person), timeout=TIMEOUT)
    refusal = checks.Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
    system.decision_ids.append(refusal)
    return decisions.FileObjection(decision_pb2.FileObjectionRequest(  # type: ignore[no-any-return]
        decision_id=refusal, statement="Not me.", contact="me@example.com", subject=subject(person)
    ), timeout=TIMEOUT).objection_id  # fmt: skip


def test_an_objection_record_put_under_another_objections_id_is_refused(system: LogSystem, logs_dir: Path):
    """Redis write access (no key): two objections awaiting confirmation, A (overturned by reviewer:li) and B (by
    reviewer:zhang). The insider copies A's sealed record into B's place (same hash, field B): the seal opens (it
    binds the record to the id inside it, A). reviewer:wang, asked to confirm B, confirmed A, whose overturn wang
    never saw: A's court order was corrected away, every entry genuine and A's steps a valid chain (verify exited
    0). A record is now opened only in its own place: anything else is unreadable, and nothing is done with it."""
    from debar.sanction.adapters.keys import ObjectionKeys

    service = system.start(logs_dir)
    as_ = {name: [("x-debar-caller", name)] for name in ("reviewer:li", "reviewer:zhang", "reviewer:wang")}
    objections: list[str] = []
    with grpc.insecure_channel(service.address) as channel:
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        for overturner in ("reviewer:li", "reviewer:zhang"):
            person = new_ric()
            oid = _objection_to_a_refusal(system, channel, person)
            decisions.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=oid), metadata=as_[overturner])
            decisions.ResolveObjection(decision_pb2.ResolveObjectionRequest(
                objection_id=oid, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="mistaken"
            ), metadata=as_[overturner], timeout=TIMEOUT)  # fmt: skip
            objections.append(oid)
        a, b = objections
        r = system.redis()
        keys = ObjectionKeys(system.prefix)
        r.hset(keys.records(b), b, r.hget(keys.records(a), a))
        with pytest.raises(grpc.RpcError) as refused:
            done = decisions.ConfirmResolution(
                decision_pb2.ConfirmResolutionRequest(objection_id=b), metadata=as_["reviewer:wang"], timeout=TIMEOUT
            )
            raise AssertionError(f"confirmed objection {done.objection_id} ({done.state}) when asked for {b}")
        assert refused.value.code() == grpc.StatusCode.INTERNAL, refused.value
        shown = decisions.GetObjection(
            decision_pb2.GetObjectionRequest(objection_id=a), metadata=as_["reviewer:wang"], timeout=TIMEOUT
        )
        assert shown.state == decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION  # A untouched
