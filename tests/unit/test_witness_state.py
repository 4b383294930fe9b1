"""The witness's state folder on a real file system: what it commits it reads back, a commit from a state that has
changed since is refused with nothing written, one witness holds the folder at a time, a crash's temporary files
are never mistaken for state, and an unreadable state stops it rather than starting over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from debar.tlog.merkle import EMPTY_ROOT
from debar.tlog.witness import LogRecord, WitnessState
from debar.witness.state_store import StateChanged, StateFolder, StateStoreError, origin_hash

ROOT = bytes(range(32))


def test_a_new_folder_is_empty_and_a_commit_reads_back(tmp_path: Path):
    folder = StateFolder.open(tmp_path / "w")
    try:
        state, raw = folder.read()
        assert (state, raw) == (WitnessState(), b"")
        new = state.with_record("log", LogRecord(5, ROOT))
        folder.commit(raw, new, "log", b"the note\n")
        assert folder.read() == (new, new.to_json())
        assert folder.cosigned_note(origin_hash("log")) == b"the note\n"
        assert json.loads((tmp_path / "w" / "state.json").read_bytes())["logs"]["log"]["size"] == 5
    finally:
        folder.close()


def test_a_commit_from_a_stale_read_writes_nothing(tmp_path: Path):
    folder = StateFolder.open(tmp_path)
    try:
        state, raw = folder.read()
        folder.commit(raw, state.with_record("log", LogRecord(5, ROOT)), "log", b"five\n")
        # A second decision made from the same (now stale) read must not roll the size back.
        with pytest.raises(StateChanged):
            folder.commit(raw, state.with_record("log", LogRecord(3, EMPTY_ROOT)), "log", b"three\n")
        assert folder.read()[0].latest("log") == LogRecord(5, ROOT)
        assert folder.cosigned_note(origin_hash("log")) == b"five\n"
    finally:
        folder.close()


def test_one_witness_holds_a_folder_at_a_time(tmp_path: Path):
    first = StateFolder.open(tmp_path)
    with pytest.raises(StateStoreError, match="another witness uses"):
        StateFolder.open(tmp_path)
    first.close()
    StateFolder.open(tmp_path).close()


def test_temporary_files_of_a_crash_are_removed_and_never_read(tmp_path: Path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / ".state.json.0123abcd.tmp").write_bytes(b"garbage")
    (tmp_path / "checkpoints" / f".{origin_hash('log')}.77.tmp").write_bytes(b"garbage")
    folder = StateFolder.open(tmp_path)
    try:
        assert folder.read()[0] == WitnessState()
        assert sorted(p.name for p in tmp_path.rglob(".*.tmp")) == []
    finally:
        folder.close()


@pytest.mark.parametrize(
    "content", [b"{", b'{"version": 2, "logs": {}}', b'{"version": 1, "logs": {"l": {"size": 1}}}']
)
def test_an_unreadable_state_stops_the_witness(tmp_path: Path, content: bytes):
    (tmp_path / "state.json").write_bytes(content)
    with pytest.raises(StateStoreError, match=r"state\.json"):
        StateFolder.open(tmp_path)
    # The lock was let go: fixing the file is enough.
    (tmp_path / "state.json").unlink()
    StateFolder.open(tmp_path).close()


def test_monitoring_names_are_hashes_only(tmp_path: Path):
    folder = StateFolder.open(tmp_path)
    try:
        assert folder.cosigned_note("../state.json") is None
        assert folder.cosigned_note("lock") is None
        assert folder.cosigned_note("0" * 64) is None
    finally:
        folder.close()
