"""Each Redis (and key prefix) has its own spool folder under a shared data folder."""

from __future__ import annotations

from pathlib import Path

from debar.sanction.adapters.file_spool import spool_folder
from debar.sanction.main import _warn_of_unsorted_spool


def test_a_spool_folder_is_named_by_its_redis_and_prefix_not_its_password(tmp_path):
    def folder(url: str, prefix: str = "debar") -> Path:
        return spool_folder(tmp_path, url, prefix)

    here = folder("redis://127.0.0.1:6400/0")
    assert here.parent == tmp_path / "spool"
    assert folder("redis://127.0.0.1:6400/0") == here
    assert folder("redis://:old@127.0.0.1:6400/0") == folder("redis://:new@127.0.0.1:6400/0") == here
    assert folder("redis://127.0.0.1:6401/0") != here
    assert folder("redis://127.0.0.1:6400/1") != here
    assert folder("redis://127.0.0.1:6400/0", prefix="other") != here


def test_spool_files_from_before_per_redis_folders_are_reported_not_replayed(tmp_path, caplog):
    (tmp_path / "spool").mkdir()
    (tmp_path / "spool" / "decisions.jsonl").write_text("{}\n")
    ours = spool_folder(tmp_path, "redis://127.0.0.1:6400/0", "debar")
    _warn_of_unsorted_spool(tmp_path, ours)
    assert f"1 spool file(s) in {tmp_path / 'spool'} are not replayed" in caplog.text
    assert str(ours) in caplog.text
