"""`debar log archive` (`debar log verify` is in tlog_cmd.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from debar.cli.sanction_core import sanction_core
from debar.common.settings import Settings
from debar.sanction.app.archive import archive_log, archive_tiles
from debar.sanction.domain.retention import RetentionPolicy


async def archive(settings: Settings, directory: str | None, keep_days: int) -> int:
    if keep_days < 0:
        print("debar log archive: --keep-days must be 0 or more", file=sys.stderr)
        return 2
    async with sanction_core(settings, Path(directory) if directory else None) as core:
        policy = RetentionPolicy.from_catalogue(core.catalogue, keep_days)
        cursors = (await core.adapters.tree.state()).cursors  # only what the Merkle tree holds may leave Redis
        streams = await archive_log(
            core.adapters.decision_log, core.adapters.archive, policy, int(time.time()), integrated=cursors.get
        )
        tree = await archive_tiles(core.adapters.tree, core.adapters.decision_log, core.adapters.archive)
    changed = [c for c in streams if not c.trimmed]
    for stream in changed:
        print(
            f"bucket {stream.bucket}'s stream changed while archiving: archived but not trimmed; run again",
            file=sys.stderr,
        )
    print(
        f"archived {sum(c.records for c in streams)} records holding {sum(c.decisions for c in streams)} decisions "
        f"from {len(streams)} buckets, and {tree.tiles} tiles of the Merkle tree's leaf hashes and {tree.order} "
        f"items of its leaf order ({tree.unarchived} records passed and not archived keep their tiles in Redis)"
    )
    return 1 if changed else 0
