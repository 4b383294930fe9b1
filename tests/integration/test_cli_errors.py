"""A command that cannot run says why in one line on stderr and exits 2: no Redis, a bad setting, a bad argument.
No traceback."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from debar.local.embedded_redis import EmbeddedRedis, free_port

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


@pytest.mark.parametrize("command", [["log", "archive", "--dir", "ARCHIVE"], ["import", "--quiet", str(DEMO)]],
                         ids=["log-archive", "import"])  # fmt: skip
def test_a_command_waits_for_a_busy_redis_the_check_path_would_give_up_on(tmp_path, command):
    """A Redis held up by a slow fsync or a long script (here CLIENT PAUSE, 3 s) is a wait for a batch command,
    not "Redis unavailable": DEBAR_REDIS_TIMEOUT_S (0.5 s) is the check path's, DEBAR_REDIS_COMMAND_TIMEOUT_S
    (10 s by default) a command's."""
    server = EmbeddedRedis(tmp_path / "redis").start()
    try:
        admin = redis.Redis.from_url(server.url)
        admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        paused = time.monotonic()
        args = [str(tmp_path / "archive") if arg == "ARCHIVE" else arg for arg in command]
        done = _debar(tmp_path, "--redis-url", server.url, *args, DEBAR_REDIS_TIMEOUT_S="0.5")
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - paused >= 3.0  # it did meet the pause
        assert "Redis unavailable" not in done.stderr
        if command[0] == "import":
            assert admin.dbsize() > 0  # and did its work once Redis answered
    finally:
        server.stop()
