"""An insider with write access to Redis but no key (neither the log's signing key nor a pseudonym key) against
what was added to the log since tests/integration/test_tlog_attacks.py: an import's chunk records (one stream record
of up to 256 registry entries, field `rs`), the archived-tiles bitmap, a decision record's `sb` field, and a
record no reader can decode. Each is played on a real sanction service's Redis (single, and the 3-master cluster
with DEBAR_TEST_REDIS=cluster) on its own key prefix, then `debar log verify` is run as an auditor would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from debar.local.embedded_redis import free_port
from debar.sanction.adapters.keys import Keys, TreeKeys
from debar.v1 import decision_pb2_grpc, sanction_pb2_grpc
from tests.integration.test_tlog_attacks import (
    LogSystem,
    checkpoint_size,
    integrate_forgery,
    records_of,
    rewrite_stream,
    system,
    verify,
)
from tests.support.log import receipt_when_ready, write_court_feed
from tests.support.metrics import scrape_text
from tests.support.requests import check_request
from tests.support.servers import wait_for
from tests.support.subjects import new_ric

__all__ = ["system"]  # the fixture, from the attacks' module

TIMEOUT = 30
READER = [("x-debar-caller", "reviewer:li")]
TILE = 256


def debar(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", *args],
        capture_output=True, text=True, timeout=180, env={**os.environ, **env},
    )  # fmt: skip


def import_feed(system: LogSystem, tmp_path: Path, count: int) -> None:
    """`debar import` as the operator runs it (with the log's key, so every entry is signed)."""
    feed = write_court_feed(tmp_path / f"feed-{time.monotonic_ns()}.jsonl", count, f"C-{time.monotonic_ns()}")
    done = debar(system.env, "import", str(feed), "--quiet")
    assert done.returncode == 0, done.stderr


def chunks(system: LogSystem) -> list[tuple[str, bytes, dict[bytes, bytes]]]:
    """The import's chunk records (field rs), biggest first: (stream, record id, fields)."""
    r = system.redis()
    found = [(s, sid, f) for s in system.streams() for sid, f in records_of(r, s) if b"rs" in f]
    return sorted(found, key=lambda c: -len(json.loads(c[2][b"rs"])))


def split_chunk(raw: bytes) -> tuple[list[Any], list[Any]]:
    """A chunk's packed entries, and whatever follows them (the chunk's own signature, where there is one)."""
    data = json.loads(raw)
    return [e for e in data if isinstance(e, list)], [e for e in data if not isinstance(e, list)]


def packed(entries: list[Any], tail: list[Any]) -> bytes:
    return json.dumps([*entries, *tail], ensure_ascii=False, separators=(",", ":")).encode()


def replace_record(system: LogSystem, stream: str, record_id: bytes, fields: dict[bytes, bytes]) -> None:
    """A stream record rewritten under its own id (the stream rewritten around it)."""
    r = system.redis()
    records = records_of(r, stream)
    rewrite_stream(r, stream, [(sid, fields if sid == record_id else f) for sid, f in records])


def erase_restriction(system: LogSystem, entry: list[Any]) -> None:
    """Everything Redis holds of an imported restriction besides its entry: its record, its subject's index entry
    and its history (all of which the insider can find: the entry names the target and the pseudonym)."""
    r = system.redis()
    keys = Keys(system.prefix)
    target, pseudonym = entry[5], entry[6]
    assert r.hdel(keys.restrictions(target), target) == 1
    removed = sum(int(r.hdel(k, pseudonym)) for k in r.scan_iter(match=f"{system.prefix}:s:*", count=1000))
    assert removed == 1
    for k in r.scan_iter(match=f"{system.prefix}:rh:*", count=1000):
        r.hdel(k, target)


def broken(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr


# -- 1. an import's chunk records, tampered with before the integrator reads them -----------------------------


def test_an_untampered_import_verifies(system: LogSystem, logs_dir: Path, tmp_path: Path):
    import_feed(system, tmp_path, 300)
    integrate_forgery(system, logs_dir)
    done = verify(system.env, "--require-signatures")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(0 unsigned" in done.stdout, done.stdout
    # The chunk's signature covers its entries: they carry none of their own (92 bytes and an Ed25519 signature
    # each, saved).
    entries, tail = split_chunk(chunks(system)[0][2][b"rs"])
    assert len(tail) == 1 and all(len(e) == 12 for e in entries), (len(tail), {len(e) for e in entries})


def test_an_entry_altered_inside_a_chunk_is_detected(system: LogSystem, logs_dir: Path, tmp_path: Path):
    """An entry's reason rewritten (the record is not compared with it): its entry carries no signature of its
    own, and the chunk's, over each entry's hash, tells."""
    import_feed(system, tmp_path, 300)
    stream, record_id, fields = chunks(system)[0]
    entries, tail = split_chunk(fields[b"rs"])
    entries[9][8] = "altered"  # the entry's reason
    replace_record(system, stream, record_id, {**fields, b"rs": packed(entries, tail)})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env))
    assert f"record {record_id.decode()} of {stream}" in stderr and "not those its writer signed" in stderr, stderr


def test_an_entry_dropped_from_a_chunk_with_its_restriction_is_detected(
    system: LogSystem, logs_dir: Path, tmp_path: Path
):
    """The chunk loses one entry and Redis every trace of its restriction: a court order never imported, on the
    record's say-so. Each remaining entry is still signed by its writer; only the chunk as a whole can tell."""
    import_feed(system, tmp_path, 300)
    stream, record_id, fields = chunks(system)[0]
    entries, tail = split_chunk(fields[b"rs"])
    erase_restriction(system, entries[7])
    replace_record(system, stream, record_id, {**fields, b"rs": packed(entries[:7] + entries[8:], tail)})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env))
    assert f"record {record_id.decode()} of {stream}" in stderr and "chunk" in stderr, stderr


def test_the_chunk_cut_short_with_its_restrictions_is_detected(system: LogSystem, logs_dir: Path, tmp_path: Path):
    """The chunk's count changed: its last entries cut (still valid JSON), their restrictions erased."""
    import_feed(system, tmp_path, 300)
    stream, record_id, fields = chunks(system)[0]
    entries, tail = split_chunk(fields[b"rs"])
    for entry in entries[-3:]:
        erase_restriction(system, entry)
    replace_record(system, stream, record_id, {**fields, b"rs": packed(entries[:-3], tail)})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env))
    assert f"record {record_id.decode()} of {stream}" in stderr and "chunk" in stderr, stderr


def test_an_entry_dropped_from_a_chunk_leaving_its_restriction_is_detected(
    system: LogSystem, logs_dir: Path, tmp_path: Path
):
    import_feed(system, tmp_path, 300)
    stream, record_id, fields = chunks(system)[0]
    entries, tail = split_chunk(fields[b"rs"])
    replace_record(system, stream, record_id, {**fields, b"rs": packed(entries[1:], tail)})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env))
    assert f"restriction {entries[0][5]}: held in Redis with no registry entry" in stderr, stderr


def test_entries_reordered_inside_a_chunk_are_detected(system: LogSystem, logs_dir: Path, tmp_path: Path):
    import_feed(system, tmp_path, 300)
    stream, record_id, fields = chunks(system)[0]
    entries, tail = split_chunk(fields[b"rs"])
    entries[2], entries[5] = entries[5], entries[2]
    replace_record(system, stream, record_id, {**fields, b"rs": packed(entries, tail)})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env))
    assert f"record {record_id.decode()} of {stream}" in stderr and "chunk" in stderr, stderr


def test_an_entry_duplicated_inside_a_chunk_is_detected(system: LogSystem, logs_dir: Path, tmp_path: Path):
    import_feed(system, tmp_path, 300)
    stream, record_id, fields = chunks(system)[0]
    entries, tail = split_chunk(fields[b"rs"])
    replace_record(system, stream, record_id, {**fields, b"rs": packed([*entries, entries[3]], tail)})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env))
    assert f"record {record_id.decode()} of {stream}" in stderr and "twice" in stderr, stderr


def test_a_signed_entry_spliced_from_one_chunk_into_another_is_detected(
    system: LogSystem, logs_dir: Path, tmp_path: Path
):
    """Moved, not copied: every signed entry is still there once, each with its own valid signature."""
    import_feed(system, tmp_path, 300)
    (s1, id1, f1), (s2, id2, f2) = chunks(system)[:2]
    e1, t1 = split_chunk(f1[b"rs"])
    e2, t2 = split_chunk(f2[b"rs"])
    moved = e1.pop(4)
    e2.insert(1, moved)
    replace_record(system, s1, id1, {**f1, b"rs": packed(e1, t1)})
    replace_record(system, s2, id2, {**f2, b"rs": packed(e2, t2)})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env))
    assert f"record {id1.decode()} of {s1}" in stderr and f"record {id2.decode()} of {s2}" in stderr, stderr


def test_a_chunk_unpacked_into_single_records_less_one_entry_is_detected(
    system: LogSystem, logs_dir: Path, tmp_path: Path
):
    """The chunk's signature binds its entries together only while they stay a chunk: the insider deletes the chunk
    record and sequences its entries again as single registry records (field `r`, what one Impose writes), each
    still carrying its writer's own signature, less one entry, whose restriction is erased. Before the fix every
    entry verified as a single write's (one signature context for both) and verify exited 0: a court order never
    imported. Now a chunk's entries are signed as a chunk's members, which no single record's entry is."""
    import_feed(system, tmp_path, 300)
    stream, record_id, fields = chunks(system)[0]
    entries, _ = split_chunk(fields[b"rs"])
    erase_restriction(system, entries[7])
    r = system.redis()
    kept = [(sid, f) for sid, f in records_of(r, stream) if sid != record_id]
    rewrite_stream(r, stream, kept)
    for entry in entries[:7] + entries[8:]:
        r.xadd(stream, {b"r": json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()})
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env, "--require-signatures"))
    assert f"of {stream}, entry 0: a registry entry not signed by the log's key" in stderr, stderr


# -- 1b. a chunk already integrated: re-signed with the log's key, or replayed -------------------------------


def _resigned(system: LogSystem, entries: list[Any]) -> tuple[list[Any], str]:
    """The chunk's entries, one changed (its `at` a second later) and the chunk signed again with the log's key:
    what an import run, or anyone holding DEBAR_LOG_SIGNING_KEY, can write."""
    from debar.sanction.adapters import codec
    from debar.tlog.entry_signature import sign_chunk
    from debar.tlog.keys import parse_signer_key
    from tests.support.keys import TEST_LOG_SIGNER_KEY

    signer = parse_signer_key(TEST_LOG_SIGNER_KEY)
    texts = {k.decode(): v.decode() for k, v in system.redis().hgetall(f"{system.prefix}:txt").items()}
    changed = [list(e[:12]) for e in entries]
    changed[5][1] += 1
    canonical = [codec._entry_of(e, texts).encode() for e in changed]
    return changed, sign_chunk(signer, canonical)  # a chunk's entries carry no signature of their own


def test_an_integrated_chunk_re_signed_with_the_key_and_the_tree_rebuilt_is_detected(
    system: LogSystem, logs_dir: Path, tmp_path: Path
):
    """Held before and after: the chunk's signatures prove who wrote it, the checkpoints (outside Redis) what was
    integrated. The key and Redis rewrite a chunk already in a signed checkpoint, every signature valid, and even
    the tree in Redis recomputed to agree; its root at the stored checkpoints' sizes is not theirs."""
    from tests.integration.test_tlog_attacks import rebuild_tree

    import_feed(system, tmp_path, 300)
    integrate_forgery(system, logs_dir)
    stream, record_id, fields = chunks(system)[0]
    entries, _ = split_chunk(fields[b"rs"])
    signed, chunk = _resigned(system, entries)
    replace_record(system, stream, record_id, {**fields, b"rs": packed(signed, [chunk])})
    assert verify(system.env, "--require-signatures").returncode == 1  # the stored leaf hashes first
    rebuild_tree(system)
    stderr = broken(verify(system.env, "--require-signatures"))
    assert "its root is not the root of the tree rebuilt from the entries" in stderr, stderr
    assert "not signed" not in stderr and "not those its writer signed" not in stderr, stderr  # signatures valid


def test_an_integrated_chunk_replayed_is_detected(system: LogSystem, logs_dir: Path, tmp_path: Path):
    """Held before and after: a signed chunk copied into a stream again (its restrictions put back as they were,
    after a lift, say) is each of its signed entries twice."""
    import_feed(system, tmp_path, 300)
    integrate_forgery(system, logs_dir)
    stream, _, fields = chunks(system)[0]
    system.redis().xadd(stream, fields)
    integrate_forgery(system, logs_dir)
    stderr = broken(verify(system.env, "--require-signatures"))
    assert "twice: a genuine entry copied" in stderr, stderr


# -- 4. a record nobody can decode: integrated as an opaque entry, the log goes on ----------------------------


@pytest.mark.parametrize("how", ["truncated-chunk", "garbage-decision", "garbage-objection", "not-utf-8"])
def test_an_undecodable_record_is_integrated_opaquely_and_broken_in_verify(
    system: LogSystem, logs_dir: Path, tmp_path: Path, how: str
):
    """Before: the integrator failed the step on it and retried for ever, signing no checkpoint again (records
    after it, any stream's, never integrated). Now its raw bytes are one leaf (the tree stays append-only, the
    evidence is kept), the integrator counts it and goes on, and verify names it."""
    r = system.redis()
    if how == "truncated-chunk":
        import_feed(system, tmp_path, 300)
        stream, record_id, fields = chunks(system)[0]
        replace_record(system, stream, record_id, {**fields, b"rs": fields[b"rs"][: len(fields[b"rs"]) // 2]})
        bad = record_id.decode()
    elif how == "garbage-decision":
        used = set(system.streams())  # a bucket of its own: no kept refusal before it stops its archiving
        stream = next(s for b in range(4096) if (s := f"{system.prefix}:log:{{{b:03x}}}") not in used)
        bad = r.xadd(stream, {b"d": b"not\x1ca\x1cdecision", b"cat": b"x"}).decode()
    elif how == "not-utf-8":
        used = set(system.streams())
        stream = next(s for b in range(4096) if (s := f"{system.prefix}:log:{{{b:03x}}}") not in used)
        bad = r.xadd(stream, {b"d": b"\xff\xfe", b"\xc3": b"\x00"}).decode()
    else:
        stream = f"{system.prefix}:objlog"
        bad = r.xadd(stream, {b"o": b"O1", b"at": b"yesterday"}).decode()
    metrics_port = free_port()
    system.env["DEBAR_METRICS_PORT"] = str(metrics_port)
    service = system.start(logs_dir)
    # A decision after the bad record is still integrated and proven.
    with grpc.insecure_channel(service.address) as channel:
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        later = checks.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id

        receipt_when_ready(decisions, later, timeout_s=30)
        keys = TreeKeys(system.prefix)
        assert wait_for(lambda: r.hget(keys.cursors, stream) is not None, timeout_s=10)
        assert checkpoint_size(service) == int(r.hget(keys.state, "size"))
        counted = "debar_log_unreadable_records_total 1.0"  # the integrator's child reports it within a second
        assert wait_for(lambda: counted in scrape_text(metrics_port), timeout_s=10), scrape_text(metrics_port)
    log_text = service.log()
    system.stop()
    assert f"record {bad} of {stream}" in log_text and "unreadable" in log_text, log_text[-3000:]
    stderr = broken(verify(system.env))
    assert f"record {bad} of {stream}" in stderr and "unreadable" in stderr, stderr
    # `debar log archive` goes on too (before: a record of a field d it could not split stopped the run): the
    # bad record is kept in Redis or archived as it is, and verify --archive still names it.
    archive = tmp_path / "archive"
    archived = debar(system.env, "log", "archive", "--dir", str(archive), "--keep-days", "0")
    assert archived.returncode == 0, archived.stderr
    if how == "garbage-decision":
        assert r.xrange(stream, bad, bad), "an undecodable decision record is kept in Redis"
    stderr = broken(verify(system.env, "--archive", str(archive)))
    assert f"record {bad} of {stream}" in stderr and "unreadable" in stderr, stderr
