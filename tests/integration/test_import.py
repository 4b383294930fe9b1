"""`debar import` against a private Redis: idempotent, bad lines reported by number, no clear identifier stored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from debar.local.embedded_redis import EmbeddedRedis
from tests.support.subjects import bad_checksum, new_ric, new_uscc

ROOT = Path(__file__).resolve().parents[2]


def _line(number: str, source_id: str, **extra: object) -> str:
    record = {
        "source": "court_consumption_order",
        "source_id": source_id,
        "subject": {"id_type": "USCC" if number.startswith("9") else "RIC", "id": number},
        "name": "Example Name",
        "legal_basis": "SPC Provisions on Restricting High Consumption, Art. 3",
        "authority": "Beijing Chaoyang District People's Court",
        "case_number": f"(2025) Jing 0105 Zhi {source_id}",
        "effective_from": "2025-01-01",
        "effective_until": None,
        "measures": None,
    }
    record.update(extra)
    return json.dumps(record)


@pytest.fixture
def private_redis(tmp_path: Path):
    with EmbeddedRedis(tmp_path / "redis") as server:
        yield server


def _import(path: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "--redis-url", url, "import", str(path), "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"DEBAR_PSEUDONYM_KEYS": "t1:test-secret-one-at-least-32-bytes", "PATH": "/usr/bin:/bin"},
    )


def test_import_reports_bad_lines_and_is_idempotent(tmp_path: Path, private_redis: EmbeddedRedis):
    people = [new_ric() for _ in range(3)]
    company = new_uscc()
    lines = [
        _line(people[0], "A-1"),
        _line(people[1], "A-2"),
        '{"source": "court_consumption_order", "source_id": "A-3", "subj',  # truncated
        _line(bad_checksum(people[2]), "A-4"),
        _line(people[2], "A-5", measures=["NOPE"]),
        _line(
            company,
            "A-6",
            principals=[{"subject": {"id_type": "RIC", "id": people[2]}, "role": "LEGAL_REPRESENTATIVE"}],
        ),
        _line(people[0], "A-1"),  # a duplicate id within the file
        "",
        "[1, 2, 3]",
    ]
    path = tmp_path / "feed.jsonl"
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe not utf-8\n")

    first = _import(path, private_redis.url)
    assert first.returncode == 1, first.stderr
    assert "added 3, updated 0, unchanged 0, rejected 6" in first.stdout
    rejected = {line.split(":")[1]: line for line in first.stderr.splitlines() if ": rejected: " in line}
    assert set(rejected) == {"3", "4", "5", "7", "9", "10"}
    assert "not valid JSON" in rejected["3"]
    assert "subject.id: is not a valid RIC" in rejected["4"]
    assert "measures[0]: unknown measure" in rejected["5"]
    assert "duplicates line 1" in rejected["7"]
    assert "must be a JSON object" in rejected["9"]
    assert "not UTF-8" in rejected["10"]

    second = _import(path, private_redis.url)
    assert "added 0, updated 0, unchanged 3, rejected 6" in second.stdout


def test_redis_holds_no_clear_identifier_after_an_import(tmp_path: Path, private_redis: EmbeddedRedis):
    people = [new_ric() for _ in range(5)]
    company = new_uscc()
    lines = [_line(p, f"B-{i}", name="Wang Xiaoming") for i, p in enumerate(people)]
    representative = {
        "subject": {"id_type": "RIC", "id": people[0]},
        "role": "LEGAL_REPRESENTATIVE",
        "name": "Wang Xiaoming",
    }
    lines.append(_line(company, "B-9", name="Acme Trading Co.", principals=[representative]))
    path = tmp_path / "feed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert _import(path, private_redis.url).returncode == 0

    client = redis.Redis.from_url(private_redis.url)
    dump = bytearray()
    keys = list(client.scan_iter(count=1000))
    assert keys
    for key in keys:
        dump += key
        kind = client.type(key)
        if kind == b"hash":
            for field, value in client.hgetall(key).items():
                dump += field + value
        elif kind == b"string":
            dump += client.get(key) or b""
    for clear in [*people, company, "Wang Xiaoming", "Acme Trading"]:
        assert clear.encode() not in dump, clear
    assert b"W************" in dump  # the masked name is what is kept


def test_demo_file_in_the_repo_imports_cleanly(tmp_path: Path, private_redis: EmbeddedRedis):
    result = _import(ROOT / "services/debar/data/demo.jsonl", private_redis.url)
    assert result.returncode == 0, result.stderr
    assert "rejected 0" in result.stdout
