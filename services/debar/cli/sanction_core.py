"""The sanction core for a command that works on Redis directly (import, log, rekey)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from debar.common.settings import Settings
from debar.local.embedded_redis import redis_url_for
from debar.sanction.adapters.redis_errors import unavailable_on_redis_down
from debar.sanction.bootstrap import Core, build_core


@contextlib.asynccontextmanager
async def sanction_core(settings: Settings) -> AsyncIterator[Core]:
    """On the configured Redis, else the embedded one `debar up` runs, else one started for the block. A Redis that
    does not answer ends the block with StoreUnavailable, whichever adapter met it, for `debar` to print in one
    line."""
    with redis_url_for(settings.redis_url, settings.data_dir / "redis") as url:
        core = build_core(settings, url)
        try:
            with unavailable_on_redis_down():
                yield core
        finally:
            await core.close()
