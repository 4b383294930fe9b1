"""The import with worker processes gives the same outcome as line by line: the same summary, the same rejected
lines with the same reasons, the same stored records and index entries, and re-imports count as unchanged."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import redis

from debar.bench.feed import records
from debar.cli.sanction_core import sanction_core
from debar.common.settings import DEV_BUCKET_KEY, Settings
from debar.local.embedded_redis import EmbeddedRedis
from debar.sanction.app.import_workers import BuilderSpec
from debar.sanction.app.importer import ImportSummary, WorkerPlan, import_lines
from tests.integration.test_import import _line
from tests.support.subjects import bad_checksum, new_ric, new_uscc

KEYS = "t1:test-secret-one-at-least-32-bytes"


def _feed() -> list[bytes]:
    lines = [b"\xef\xbb\xbf" + orjson.dumps(r) for r in records(1, seed=5)]
    lines += [orjson.dumps(r) + b"\r" for r in records(400, seed=6)]
    person, company = new_ric(), new_uscc()
    lines += [
        b"",
        b"   ",
        _line(new_ric(), "W-1")[:40].encode(),
        _line(bad_checksum(new_ric()), "W-2").encode(),
        _line(new_ric(), "W-3", measures=["NOPE"]).encode(),
        _line(person, "W-4").encode(),
        _line(person, "W-4").encode(),  # a duplicate id
        _line(new_ric(), "W-5", name="Müller").encode("latin-1"),
        b"\xef\xbb\xbf" + _line(new_ric(), "W-6").encode(),
        _line(new_ric(), "W-7", name="a\u0000b").encode().replace(b"\\u0000", b"\x00"),
        _line(
            company,
            "W-8",
            principals=[
                {"subject": {"id_type": "RIC", "id": new_ric()}, "role": "PRINCIPAL"},
                {"subject": {"id_type": "RIC", "id": bad_checksum(new_ric())}, "role": "PRINCIPAL"},
            ],
        ).encode(),
        _line(new_ric(), "W-8").encode(),  # duplicates a rejected line
        b"[1, 2]",
        _line(
            new_uscc(),
            "W-9",
            principals=[
                {"subject": {"id_type": "RIC", "id": person}, "role": "PRINCIPAL"},
                {"subject": {"id_type": "RIC", "id": person}, "role": "PRINCIPAL"},
            ],
        ).encode(),  # one person twice in one role: the merged index path
    ]
    lines += [orjson.dumps(r) for r in records(300, seed=7)]
    return lines


def _run(url: str, lines: list[bytes], plan: WorkerPlan | None) -> ImportSummary:
    settings = Settings.from_env({"DEBAR_REDIS_URL": url, "DEBAR_PSEUDONYM_KEYS": KEYS})

    async def go() -> ImportSummary:
        async with sanction_core(settings) as core:
            return await import_lines(iter(lines), core.registry, chunk_lines=37, workers=plan)

    return asyncio.run(go())


def _dump(url: str) -> dict[bytes, object]:
    """Every key's value; records without their bookkeeping times (the clock differs between runs)."""
    client = redis.Redis.from_url(url)
    try:
        out: dict[bytes, object] = {}
        for key in client.scan_iter():
            if key.endswith(b":rev") or b":loghead:" in key:  # the log's head names a time
                continue
            kind = client.type(key)
            if kind == b"stream":  # the registry log: its entries, without their times, in any order
                # adapters/codec.py: pack_registry (`r`, one write's entry), pack_registry_batch (`rs`, a chunk's)
                packed = [e for _, f in client.xrange(key) for e in ([json.loads(f[b"r"])] if b"r" in f else
                                                                     json.loads(f[b"rs"]))]  # fmt: skip
                out[key] = sorted(json.dumps([p[0], *p[2:]]) for p in packed)
            elif b":rh:" in key:  # each record's history: stream ids, which name times
                out[key] = sorted(client.hkeys(key))
            elif kind == b"hash":
                value = client.hgetall(key)
                if b":r:" in key:
                    import msgpack

                    value = {f: msgpack.unpackb(v)[:12] + msgpack.unpackb(v)[14:] for f, v in value.items()}
                out[key] = value
            else:
                out[key] = client.dump(key)
        return out
    finally:
        client.close()


def test_workers_give_the_same_outcome_as_line_by_line(tmp_path: Path) -> None:
    lines = _feed()
    plan = WorkerPlan(BuilderSpec(KEYS, DEV_BUCKET_KEY), processes=2, lines_per_task=29, tasks_ahead=2)
    with EmbeddedRedis(tmp_path / "a") as a, EmbeddedRedis(tmp_path / "b") as b:
        serial = _run(a.url, lines, None)
        parallel = _run(b.url, lines, plan)
        assert serial.line() == parallel.line()
        assert serial.rejected == parallel.rejected
        assert serial.added > 600 and len(serial.rejected) >= 10
        assert _dump(a.url) == _dump(b.url)
        again_serial, again_parallel = _run(a.url, lines, None), _run(b.url, lines, plan)
        assert again_serial.line() == again_parallel.line()
        assert again_parallel.added == 0 and again_parallel.updated == 0
        assert json.dumps(again_serial.rejected) == json.dumps(parallel.rejected)
