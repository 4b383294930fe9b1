"""The worker processes' compact form of a restriction: what the writer makes of it is what `build` made."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from debar.bench.feed import write_feed
from debar.sanction.app.import_workers import BuilderSpec, Unpacker, pack
from debar.sanction.app.importer import decode, parse_line

KEYS = "unit:unit-test-only-pseudonym-secret-of-32-bytes"


def test_unpacked_restrictions_equal_those_built(tmp_path: Path):
    registry = BuilderSpec(KEYS, "unit-bucket-key-unit-bucket-key-").registry()
    lines = write_feed(tmp_path / "feed.jsonl", 400).read_bytes().splitlines()
    built = [registry.build(parse_line(decode(line))) for line in lines]
    assert any(r.principals for r in built) and any(not r.principals for r in built)
    unpacker, texts = Unpacker(), {}
    unpacked = [unpacker.restriction(pack(r, texts)) for r in built]
    assert unpacked == built
    assert [repr(r) for r in unpacked] == [repr(r) for r in built]  # every field, the subject's alias too
    assert replace(unpacked[0], case_number="other") != built[0]  # a real dataclass: replace, compare
