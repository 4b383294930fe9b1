"""The sanction core for a command that works on Redis directly (import, log, rekey, up's demo data)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

from debar.common.settings import Settings
from debar.local.embedded_redis import redis_url_for
from debar.sanction.adapters.redis_errors import unavailable_on_redis_down
from debar.sanction.adapters.redis_wiring import redis_adapters
from debar.sanction.bootstrap import Core, build_core, subject_resolver, watch_limits
from debar.sanction.domain.catalogue import load_default_catalogue


@contextlib.asynccontextmanager
async def sanction_core(settings: Settings, archive_dir: Path | None = None) -> AsyncIterator[Core]:
    """On the configured Redis, else the embedded one `debar up` runs, else one started for the block. A Redis that
    does not answer ends the block with StoreUnavailable, whichever adapter met it, for `debar` to print in one
    line. `archive_dir`: where the decision log's archive is (default $DEBAR_DATA_DIR/archive). Its Redis calls wait
    DEBAR_REDIS_COMMAND_TIMEOUT_S, not the check path's DEBAR_REDIS_TIMEOUT_S."""
    settings = dataclasses.replace(settings, redis_timeout_s=settings.redis_command_timeout_s)
    with redis_url_for(settings.redis_location, settings.data_dir / "redis") as url:
        catalogue = load_default_catalogue()
        # With the watch limits: an import's writes schedule the subscribed subjects they touch, for the server's
        # judge loop to tell.
        core = build_core(
            redis_adapters(settings, url, catalogue, archive_dir), catalogue, subject_resolver(settings),
            watch_limits=watch_limits(settings),
        )  # fmt: skip
        try:
            with unavailable_on_redis_down():
                yield core
        finally:
            await core.close()
