"""`debar log archive` (`debar log verify` is in tlog_cmd.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from debar.cli.sanction_core import sanction_core
from debar.common.settings import Settings
from debar.sanction.adapters.keys import Keys
from debar.sanction.app.archive import archive_log
from debar.sanction.domain.retention import RetentionPolicy


async def archive(settings: Settings, directory: str | None, keep_days: int) -> int:
    if keep_days < 0:
        print("debar log archive: --keep-days must be 0 or more", file=sys.stderr)
        return 2
    async with sanction_core(settings, Path(directory) if directory else None) as core:
        policy = RetentionPolicy.from_catalogue(core.catalogue, keep_days)
        cursors = (await core.adapters.tree.state()).cursors  # only what the Merkle tree holds may leave Redis
        keys = Keys(settings.redis_prefix)
        chains = await archive_log(
            core.adapters.decision_log, core.adapters.archive, policy, int(time.time()),
            integrated=lambda bucket: cursors.get(keys.log(bucket)),
        )  # fmt: skip
    changed = [c for c in chains if not c.trimmed]
    for chain in changed:
        print(f"chain {chain.bucket} changed while archiving: archived but not trimmed; run again", file=sys.stderr)
    print(
        f"archived {sum(c.records for c in chains)} records holding {sum(c.decisions for c in chains)} decisions "
        f"from {len(chains)} chains"
    )
    return 1 if changed else 0
