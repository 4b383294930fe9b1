"""`debar log archive` moves the Merkle tree's full level-0 tiles whose leaves are all archived records out of
Redis to the archive folder, on a real service's Redis (single, and the 3-master cluster with
DEBAR_TEST_REDIS=cluster, on its own key prefix): their keys are gone and the tree's bytes in Redis drop; a tile
holding a leaf still in Redis stays; receipts of recent decisions and a witness's consistency proof from a recent
checkpoint still verify, while a proof that would need an archived tile is FAILED_PRECONDITION naming it; `debar
log verify --archive` passes, and fails on an archived tile rewritten or removed."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis as redis_client

from debar.sanction.adapters.keys import TreeKeys
from debar.sanction.domain.receipts import verify_receipt
from debar.tlog.keys import parse_verifier_key
from debar.tlog.proofs import verify_consistency
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2_grpc
from tests.conftest import ON_CLUSTER
from tests.support.keys import TEST_LOG_VERIFIER_KEY
from tests.support.requests import check_request, impose_request
from tests.support.servers import start_service, wait_for
from tests.support.subjects import new_ric

TIMEOUT = 30
LOG_KEY = parse_verifier_key(TEST_LOG_VERIFIER_KEY)
READER = [("x-debar-caller", "reviewer:li")]
TILE = 256


def _debar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "log", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip


def _head(stub: Any) -> Any:
    return stub.GetCheckpoint(decision_pb2.GetCheckpointRequest(), metadata=READER, timeout=TIMEOUT)


def _integrated(stub: Any, decision_id: str, size: int = 0) -> Any:
    """Waits for a checkpoint holding `decision_id` (and of at least `size` leaves)."""
    got: list[Any] = []

    def proven() -> bool:
        try:
            proof = stub.GetDecisionProof(
                decision_pb2.GetDecisionProofRequest(decision_id=decision_id), metadata=READER, timeout=TIMEOUT
            )
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            return False
        if proof.checkpoint.size < size:
            return False
        got.append(proof)
        return True

    assert wait_for(proven, timeout_s=60, interval_s=0.2)
    return got[0]


def _tlog_bytes(r: Any, keys: TreeKeys) -> int:
    return sum(int(r.memory_usage(k) or 0) for k in r.scan_iter(match=f"{keys.prefix}:{{tlog}}:*", count=1000))


def _tile_bytes(r: Any, keys: TreeKeys) -> tuple[set[int], int]:
    """The level-0 tiles in Redis and the bytes Redis uses for every tile key (MEMORY USAGE)."""
    found = [k.decode() for k in r.scan_iter(match=keys.tile_pattern(), count=1000)]
    level0 = {int(k.rsplit(":", 1)[1]) for k in found if k.split(":")[-2] == "0"}
    return level0, sum(int(r.memory_usage(k) or 0) for k in found)


def test_archive_moves_full_archived_tiles_out_of_redis_and_proofs_and_verify_still_hold(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path
):
    prefix = f"tt{uuid.uuid4().hex[:8]}"
    env = {**service_env, "DEBAR_REDIS_PREFIX": prefix, "DEBAR_DATA_DIR": str(tmp_path / "data")}
    keys = TreeKeys(prefix)
    r: Any = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(env["DEBAR_REDIS_URL"])
    archive = tmp_path / "archive"
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)
            person = new_ric()
            imposed = registry.Impose(impose_request(person), timeout=TIMEOUT)  # no end: its refusal stays
            refusal = checks.Check(
                check_request(person, "RAIL_G_TRAIN", min_revision=imposed.revision), timeout=TIMEOUT
            )
            assert refusal.outcome == common_pb2.OUTCOME_DENY
            kept_refusal = refusal.decision_id
            allowed = [
                checks.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
                # Six full tiles: the Impose's and the refusal's tiles stay, and so does any with an allow after the
                # refusal in its bucket; on Cluster streams integrate in any order, so with four those were once
                # three and only one tile moved.
                for _ in range(6 * TILE + 40)
            ]
            # Every record in (streams of different buckets are integrated in no fixed order between them).
            refusal_leaf = _integrated(decisions, kept_refusal, size=2 + len(allowed)).leaf_index
            size = int(r.hget(keys.state, "size"))
            assert size == 2 + len(allowed)
            before, bytes_before = _tile_bytes(r, keys)
            assert set(range(size // TILE + 1)) <= before
            tlog_before = _tlog_bytes(r, keys)

            done = _debar(env, "archive", "--dir", str(archive), "--keep-days", "0")
            assert done.returncode == 0, done.stderr
            after, bytes_after = _tile_bytes(r, keys)
            moved = before - after
            # The open-ended refusal's tile stays (it is still in Redis); the last, growing tile is never full. Of
            # the other full tiles, those of archived records go (one with an allow in the refusal's bucket after
            # it would stay: that bucket's stream is archived only up to the refusal).
            assert refusal_leaf // TILE in after and size // TILE in after
            assert len(moved) >= 2 and moved <= set(range(size // TILE)) - {refusal_leaf // TILE}, (before, after)
            assert f"and {len(moved)} tiles" in done.stdout, done.stdout
            assert r.getbit(keys.archived, min(moved)) == 1 and r.getbit(keys.archived, refusal_leaf // TILE) == 0
            assert bytes_after <= bytes_before - len(moved) * TILE * 32, (bytes_before, bytes_after)
            tlog_after = _tlog_bytes(r, keys)
            print(
                f"{size} leaves, {len(moved)} of {size // TILE} full tiles archived: tile keys {bytes_before} -> "
                f"{bytes_after} B, all {{tlog}} keys {tlog_before} -> {tlog_after} B "
                f"({tlog_before / size:.1f} -> {tlog_after / size:.1f} B a leaf; of which the leaf order "
                f"{r.memory_usage(keys.records)} B and the leaf index {r.memory_usage(keys.leaf)} B)"
            )
            # The leaf order up to the cursor and the archived records' leaf index left with the tiles; the kept
            # refusal's record stays in `unarchived`, its leaf index with it.
            base = int(r.get(keys.order_base))
            assert base >= len(moved) * TILE // 2 and r.llen(keys.records) < size - base + 1, (base, size)
            assert f"and {base} items of its leaf order" in done.stdout, done.stdout
            refusal_fields = [
                f for f, v in r.hgetall(keys.unarchived).items() if v.startswith(f"{refusal_leaf} ".encode())
            ]
            assert len(refusal_fields) == 1 and r.hexists(keys.leaf, refusal_fields[0])
            assert r.hlen(keys.leaf) < size - len(moved) * TILE, r.hlen(keys.leaf)
            assert list((archive / "tile" / "order").glob("*.jsonl.gz"))
            again = _debar(env, "archive", "--dir", str(archive), "--keep-days", "0")
            assert again.returncode == 0 and "and 0 tiles" in again.stdout, (again.stdout, again.stderr)
            assert "and 0 items of its leaf order" in again.stdout, again.stdout
            assert int(r.get(keys.order_base)) == base

            witnessed = _head(decisions)  # a witness's last cosigned checkpoint, from before the archive run
            recent = [
                checks.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
                for _ in range(TILE + 10)
            ]
            _integrated(decisions, recent[-1], size=witnessed.size + TILE + 10)

            # The kept refusal's receipt, and a recent allow's, verify against the current head.
            head = _head(decisions)
            for decision_id in (kept_refusal, recent[-1]):
                proof = decisions.GetDecisionProof(
                    decision_pb2.GetDecisionProofRequest(decision_id=decision_id), metadata=READER, timeout=TIMEOUT
                )
                verified = verify_receipt(proof.receipt, LOG_KEY)
                assert verified.receipt.leaf_index == proof.leaf_index
                assert verified.checkpoint.size == head.size
            # An archived decision answers NOT_FOUND saying so, as before.
            with pytest.raises(grpc.RpcError) as raised:
                decisions.GetDecisionProof(
                    decision_pb2.GetDecisionProofRequest(decision_id=allowed[TILE + 10]), metadata=READER,
                    timeout=TIMEOUT,
                )  # fmt: skip
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND and "archived" in raised.value.details()

            # The witness: from its last cosigned size (in the last tiles, still in Redis) to now.
            consistency = decisions.GetConsistencyProof(
                decision_pb2.GetConsistencyProofRequest(from_size=witnessed.size, to_size=head.size),
                metadata=READER, timeout=TIMEOUT,
            )  # fmt: skip
            verify_consistency(witnessed.size, head.size, witnessed.root_hash, head.root_hash, consistency.hashes)
            # From a size that ends inside an archived tile: the proof would need its leaves, so a clear error.
            inside = min(moved) * TILE + 100
            with pytest.raises(grpc.RpcError) as raised:
                decisions.GetConsistencyProof(
                    decision_pb2.GetConsistencyProofRequest(from_size=inside, to_size=head.size),
                    metadata=READER, timeout=TIMEOUT,
                )  # fmt: skip
            assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION, raised.value
            assert "archive" in raised.value.details()
            # From a tile's end it needs only the levels above, which stay.
            decisions.GetConsistencyProof(
                decision_pb2.GetConsistencyProofRequest(from_size=(min(moved) + 1) * TILE, to_size=head.size),
                metadata=READER, timeout=TIMEOUT,
            )  # fmt: skip
    finally:
        service.stop()

    verified = _debar(env, "verify", "--archive", str(archive))
    assert verified.returncode == 0, verified.stderr
    assert ", 0 broken" in verified.stdout

    # Without the archive, the moved leaf order is named (as the records and tiles are).
    alone = _debar(env, "verify")
    assert (
        alone.returncode == 1 and f"leaf order items 0..{base - 1}: neither in Redis nor in the archive" in alone.stderr
    )
    # Two items of the archived leaf order swapped: the rebuilt tree is not the signed one.
    [order_file] = list((archive / "tile" / "order").glob("*.jsonl.gz"))
    order_original = order_file.read_bytes()
    order_lines = gzip.decompress(order_original).decode().splitlines()
    i, j = order_lines[10], order_lines[11]
    order_lines[10] = j.replace('"i":11', '"i":10')
    order_lines[11] = i.replace('"i":10', '"i":11')
    order_file.write_bytes(gzip.compress(("\n".join(order_lines) + "\n").encode()))
    reordered = _debar(env, "verify", "--archive", str(archive))
    assert reordered.returncode == 1 and "BROKEN" in reordered.stderr, reordered.stdout
    order_file.unlink()
    lost = _debar(env, "verify", "--archive", str(archive))
    assert lost.returncode == 1, lost.stdout
    assert f"leaf order items 0..{base - 1}: neither in Redis nor in the archive" in lost.stderr, lost.stderr
    order_file.write_bytes(order_original)

    [tiles_file] = list((archive / "tile" / "0").glob("*.tiles"))
    original = tiles_file.read_bytes()
    rewritten = bytearray(original)
    rewritten[8 + 5 * 32] ^= 1  # the 6th leaf hash of the first archived tile
    tiles_file.write_bytes(bytes(rewritten))
    tampered = _debar(env, "verify", "--archive", str(archive))
    assert tampered.returncode == 1, tampered.stdout
    assert f"BROKEN leaf {min(moved) * TILE + 5} " in tampered.stderr, tampered.stderr
    assert "does not hash to the stored leaf" in tampered.stderr

    tiles_file.unlink()
    removed = _debar(env, "verify", "--archive", str(archive))
    assert removed.returncode == 1, removed.stdout
    assert f"tile {min(moved)} deleted" in removed.stderr, removed.stderr
    tiles_file.write_bytes(original)
    assert _debar(env, "verify", "--archive", str(archive)).returncode == 0

    # An archived allow rewritten as a refusal: its leaf no longer matches its archived tile, nor the roots.
    for records_file in sorted(archive.glob("*/*.jsonl.gz")):
        lines = gzip.decompress(records_file.read_bytes()).decode().splitlines()
        if any("ALLOW" in line for line in lines):
            break
    changed = next(i for i, line in enumerate(lines) if "ALLOW" in line)
    lines[changed] = lines[changed].replace("ALLOW", "DENY")
    records_file.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    rewritten_entry = _debar(env, "verify", "--archive", str(archive))
    assert rewritten_entry.returncode == 1, rewritten_entry.stdout
    assert "does not hash to the stored leaf" in rewritten_entry.stderr, rewritten_entry.stderr


def _killed_at(env: dict[str, str], method: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`debar log <args>` killed (os._exit, no cleanup) when it calls RedisTreeStore.<method>: after the files
    that step writes first are durable, before the script that deletes."""
    code = (
        "import os, sys\n"
        "from debar.sanction.adapters.tree_store import RedisTreeStore\n"
        f"setattr(RedisTreeStore, {method!r}, lambda *a, **k: os._exit(9))\n"
        "from debar.cli.main import main\n"
        f"sys.argv = ['debar', 'log', *{list(args)!r}]\n"
        "sys.exit(main())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )


def test_an_archive_run_killed_between_its_steps_converges_when_run_again(
    service_env: dict[str, str], logs_dir: Path, tmp_path: Path
):
    prefix = f"tk{uuid.uuid4().hex[:8]}"
    env = {**service_env, "DEBAR_REDIS_PREFIX": prefix, "DEBAR_DATA_DIR": str(tmp_path / "data")}
    keys = TreeKeys(prefix)
    r: Any = (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(env["DEBAR_REDIS_URL"])
    archive = tmp_path / "archive"
    run = ("archive", "--dir", str(archive), "--keep-days", "0")
    service = start_service("sanction", env, logs_dir)
    try:
        with grpc.insecure_channel(service.address) as channel:
            checks = sanction_pb2_grpc.SanctionServiceStub(channel)
            decisions = decision_pb2_grpc.DecisionServiceStub(channel)
            allowed = [
                checks.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
                for _ in range(2 * TILE + 20)
            ]
            _integrated(decisions, allowed[-1], size=len(allowed))
    finally:
        service.stop()
    size = int(r.hget(keys.state, "size"))
    order_before, leaf_before = r.llen(keys.records), r.hlen(keys.leaf)

    # Killed once the tiles are written, before they are deleted: Redis holds everything still.
    first = _killed_at(env, "forget_tiles", *run)
    assert first.returncode == 9, (first.stdout, first.stderr)
    assert list((archive / "tile" / "0").glob("*.tiles")) and r.exists(keys.tile(0, 0))
    assert r.llen(keys.records) == order_before and r.get(keys.order_base) is None
    # Killed once the leaf order is written, before the script that trims it: the tiles went, the order stays.
    second = _killed_at(env, "forget_order", *run)
    assert second.returncode == 9, (second.stdout, second.stderr)
    assert not r.exists(keys.tile(0, 0)) and r.getbit(keys.archived, 0) == 1
    assert list((archive / "tile" / "order").glob("*.jsonl.gz"))
    assert r.llen(keys.records) == order_before and r.hlen(keys.leaf) == leaf_before
    # Run again to the end: it converges (tiles not moved twice, the leaf order moved once).
    done = _debar(env, *run)
    assert done.returncode == 0, done.stderr
    assert "and 0 tiles" in done.stdout, done.stdout
    base = int(r.get(keys.order_base))
    assert base > 0 and r.llen(keys.records) == order_before - base and r.hlen(keys.leaf) == leaf_before - base
    assert r.hlen(keys.unarchived) == 0  # every record before the cursor was archived
    again = _debar(env, *run)
    assert again.returncode == 0 and "and 0 tiles" in again.stdout and "and 0 items" in again.stdout
    verified = _debar(env, "verify", "--archive", str(archive))
    assert verified.returncode == 0 and ", 0 broken" in verified.stdout, (verified.stdout, verified.stderr)
    assert f"{size} entries rebuilt" in verified.stdout, verified.stdout
