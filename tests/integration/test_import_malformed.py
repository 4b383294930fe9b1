"""`debar import` under malformed files: every bad line is reported with its number and a clear reason, the rest
is imported, and nothing is written for a rejected line (not even part of it: e.g. its subject's index entry)."""

from __future__ import annotations

import json
from pathlib import Path

import redis

from debar.local.embedded_redis import EmbeddedRedis
from debar.sanction.adapters.keys import Keys
from debar.sanction.domain.model import restriction_id
from tests.integration.test_import import _import, _line, private_redis  # noqa: F401  (a fixture)
from tests.support.subjects import bad_checksum, new_ric, new_uscc

SOURCE = "court_consumption_order"


def rejected_lines(stderr: str) -> dict[int, str]:
    found = {}
    for line in stderr.splitlines():
        if ": rejected: " in line:
            found[int(line.split(":")[1])] = line.partition(": rejected: ")[2]
    return found


def stored(url: str, source_id: str) -> bool:
    client = redis.Redis.from_url(url)
    try:
        return bool(client.exists(Keys("debar").restrictions(restriction_id(SOURCE, source_id))))
    finally:
        client.close()


def revision(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return int(client.get("debar:rev") or 0)
    finally:
        client.close()


def test_malformed_lines_are_rejected_one_by_one_and_the_rest_imported(
    tmp_path: Path,
    private_redis: EmbeddedRedis,  # noqa: F811
) -> None:
    good = {f"M-{i}": new_ric() for i in range(4)}
    company, person = new_uscc(), new_ric()
    lines: list[bytes] = [
        b"\xef\xbb\xbf" + _line(good["M-0"], "M-0").encode(),  # 1: a UTF-8 BOM on line 1 is accepted
        _line(good["M-1"], "M-1").encode() + b"\r",  # 2: CRLF
        _line(new_ric(), "M-X1")[:40].encode(),  # 3: truncated
        _line(new_ric(), "M-X2", name="Müller").replace("\\u00fc", "ü").encode("latin-1"),  # 4: latin-1
        b"\xef\xbb\xbf" + _line(new_ric(), "M-X3").encode(),  # 5: a UTF-8 BOM past line 1
        "\ufeff".encode("utf-16-le") + _line(new_ric(), "M-X4").encode("utf-16-le"),  # 6: UTF-16 with BOM
        _line(new_ric(), "M-X5", name="a\u0000b").encode().replace(b"\\u0000", b"\x00"),  # 7: a raw NUL
        _line(new_ric(), "M-X6", name="x" * (70 * 1024)).encode(),  # 8: a line over 64 KiB
        _line(good["M-2"], "M-0").encode(),  # 9: a duplicate id within the file
        # 10: a company with one good and one bad principal: the whole line is rejected, nothing of it written
        _line(
            company,
            "M-X7",
            principals=[
                {"subject": {"id_type": "RIC", "id": person}, "role": "LEGAL_REPRESENTATIVE"},
                {"subject": {"id_type": "RIC", "id": bad_checksum(new_ric())}, "role": "PRINCIPAL"},
            ],
        ).encode(),
        _line(new_ric(), "M-X8", effective_from=-1).encode(),  # 11: a time out of range
        b"",  # 12: blank
        _line(good["M-3"], "M-3").encode(),  # 13: the last line, without a trailing newline
    ]
    path = tmp_path / "malformed.jsonl"
    path.write_bytes(b"\n".join(lines))

    result = _import(path, private_redis.url)
    assert result.returncode == 1, result.stderr
    assert "added 3, updated 0, unchanged 0, rejected 9" in result.stdout, result.stdout + result.stderr
    rejected = rejected_lines(result.stderr)
    assert set(rejected) == {3, 4, 5, 6, 7, 8, 9, 10, 11}, result.stderr
    assert "not valid JSON" in rejected[3]
    assert "not UTF-8" in rejected[4]
    assert "UTF-8 byte order mark" in rejected[5]
    assert "UTF-16" in rejected[6]
    assert "NUL byte" in rejected[7]
    assert "longer than 65536 bytes" in rejected[8]
    assert "duplicates line 1" in rejected[9]
    assert rejected[10].startswith("principals[1].subject.id:")
    assert rejected[11].startswith("effective_from:")
    for source_id in ["M-0", "M-1", "M-3"]:
        assert stored(private_redis.url, source_id), source_id
    for i in range(1, 9):
        assert not stored(private_redis.url, f"M-X{i}")
    # The valid principal of the rejected company line got no index entry: nothing of the line was written.
    client = redis.Redis.from_url(private_redis.url)
    try:
        index_keys = [k for k in client.scan_iter(match="debar:s:*", count=1000)]
    finally:
        client.close()
    assert len(index_keys) <= 3  # one subject index hash per imported (single-subject) record at most


def test_an_empty_file_and_a_file_of_blank_lines_import_nothing(
    tmp_path: Path,
    private_redis: EmbeddedRedis,  # noqa: F811
) -> None:
    for content in [b"", b"\n\n\r\n", b"\xef\xbb\xbf"]:
        path = tmp_path / "empty.jsonl"
        path.write_bytes(content)
        result = _import(path, private_redis.url)
        assert result.returncode == 0, result.stderr
        assert "added 0, updated 0, unchanged 0, rejected 0" in result.stdout
    assert revision(private_redis.url) == 0


def test_a_whole_utf16_file_is_rejected_line_by_line_with_a_reason(
    tmp_path: Path,
    private_redis: EmbeddedRedis,  # noqa: F811
) -> None:
    text = "\n".join(_line(new_ric(), f"U-{i}") for i in range(3)) + "\n"
    path = tmp_path / "utf16.jsonl"
    path.write_bytes(text.encode("utf-16"))  # with a BOM
    result = _import(path, private_redis.url)
    assert result.returncode == 1
    assert "added 0" in result.stdout
    rejected = rejected_lines(result.stderr)
    assert "UTF-16" in rejected[1]
    assert all("UTF-16" in reason or "NUL" in reason for reason in rejected.values()), rejected
    assert revision(private_redis.url) == 0


def test_a_json_value_that_is_not_a_record_is_rejected(
    tmp_path: Path,
    private_redis: EmbeddedRedis,  # noqa: F811
) -> None:
    lines = ["null", "42", '"text"', "{}", json.dumps({"subject": []}), "[" * 5000 + "]" * 5000]
    path = tmp_path / "values.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = _import(path, private_redis.url)
    assert result.returncode == 1
    assert set(rejected_lines(result.stderr)) == set(range(1, len(lines) + 1)), result.stderr
    assert "Traceback" not in result.stderr
    assert revision(private_redis.url) == 0
