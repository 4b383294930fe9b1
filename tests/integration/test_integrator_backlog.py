"""The log integrator under a big backlog on a starved machine: a million imported records once took longer to read
than the integrator's lease, so every commit was refused and the same backlog was read again, for ever. Here a
step is made to outlive its lease (its reads delayed past it) and the backlog must still all get into the tree."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from debar.common.settings import Settings
from debar.local.embedded_redis import EmbeddedRedis
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.app.integrator import Integrator
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.tlog.keys import parse_signer_key
from tests.support.keys import TEST_LOG_SIGNER_KEY
from tests.support.log import write_court_feed
from tests.support.memory_tlog import MemoryCheckpoints, NoWitnesses

KEYS = "t1:test-secret-one-at-least-32-bytes"
RECORDS = 600


class SlowReads:
    """The real sequenced log, its reads taking longer than the lease (a process starved of CPU)."""

    def __init__(self, log: Any, delay_s: float) -> None:
        self._log, self._delay = log, delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    async def read_after_many(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(self._delay)
        return await self._log.read_after_many(*args, **kwargs)


def test_a_step_that_outlives_its_lease_still_integrates_the_backlog(tmp_path: Path) -> None:
    feed = write_court_feed(tmp_path / "feed.jsonl", RECORDS, "B", since="2025-01-01")
    with EmbeddedRedis(tmp_path / "redis") as server:
        env = {"DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
        imported = subprocess.run(
            [sys.executable, "-m", "debar.cli.main", "--redis-url", server.url, "import", str(feed), "--quiet"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert imported.returncode == 0, imported.stderr

        async def integrate() -> int:
            settings = Settings.from_env({**env, "DEBAR_REDIS_URL": server.url})
            adapters = redis_adapters(settings, server.url, load_default_catalogue())
            integrator = Integrator(
                SlowReads(adapters.sequenced_log, 1.5), adapters.tree, MemoryCheckpoints(),  # type: ignore[arg-type]
                parse_signer_key(TEST_LOG_SIGNER_KEY), NoWitnesses(), lease_ms=1000, leaves_per_step=256,
            )  # fmt: skip
            try:
                for _ in range(20):
                    await integrator.step()
                    if not integrator.more_pending:
                        break
                return integrator.health.tree_size
            finally:
                await adapters.close()

        assert asyncio.run(integrate()) == RECORDS  # every imported restriction is a leaf
