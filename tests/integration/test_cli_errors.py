"""A command that cannot run says why in one line on stderr and exits 2: no Redis, a bad setting, a bad argument.
No traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from debar.local.embedded_redis import free_port

KEYS = "t1:test-secret-one-at-least-32-bytes"
DEMO = Path(__file__).parents[2] / "services" / "debar" / "data" / "demo.jsonl"


def _debar(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", *args], capture_output=True, text=True, timeout=60,
        env={"DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("debar"), line
    for word in words:
        assert word in line


@pytest.mark.parametrize(
    "command",
    [["import", "--quiet", str(DEMO)], ["log", "verify"], ["log", "archive", "--dir", "ARCHIVE"], ["rekey"]],
    ids=["import", "log-verify", "log-archive", "rekey"],
)
def test_a_redis_that_does_not_answer_is_one_line(tmp_path, command):
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    args = [str(tmp_path / "archive") if arg == "ARCHIVE" else arg for arg in command]
    _one_line_error(_debar(tmp_path, "--redis-url", down, *args), "Redis unavailable")


@pytest.mark.parametrize("command", [["log", "verify"], ["serve", "sanction"]], ids=["log-verify", "serve"])
def test_a_redis_url_that_is_not_one_is_a_settings_error(tmp_path, command):
    _one_line_error(_debar(tmp_path, "--redis-url", "notaurl", *command), "DEBAR_REDIS_URL")
    _one_line_error(_debar(tmp_path, *command, DEBAR_REDIS_URL="notaurl"), "DEBAR_REDIS_URL")


def test_a_malformed_key_ring_is_a_settings_error(tmp_path):
    _one_line_error(_debar(tmp_path, "serve", "sanction", DEBAR_PSEUDONYM_KEYS="bad"), "DEBAR_PSEUDONYM_KEYS")


def test_check_at_a_moment_that_is_not_one_names_the_argument(tmp_path):
    done = _debar(tmp_path, "check", "--id-type", "RIC", "--id", "x", "--measure", "RAIL_G_TRAIN", "--at", "notadate")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "argument --at: not an ISO date-time: 'notadate'" in done.stderr
