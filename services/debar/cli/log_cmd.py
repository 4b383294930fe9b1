"""`debar log verify` and `debar log archive`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from debar.cli.sanction_core import sanction_core
from debar.common.settings import Settings
from debar.sanction.app.archive import archive_log
from debar.sanction.app.decision_reader import verify_log
from debar.sanction.domain.retention import RetentionPolicy


async def verify(settings: Settings, archive_dir: str | None = None) -> int:
    if archive_dir and not Path(archive_dir).is_dir():  # else it would read as an empty archive
        print(f"debar log verify: no archive folder: {archive_dir}", file=sys.stderr)
        return 2
    async with sanction_core(settings, Path(archive_dir) if archive_dir else None) as core:
        reports = await verify_log(core.adapters.decision_log, core.adapters.archive if archive_dir else None)
        transitions, transitions_broken = await core.adapters.objection_store.verify_log()
    total = sum(r.entries for r in reports)
    decisions = sum(r.decisions for r in reports)
    broken = [r for r in reports if r.broken]
    for report in broken:
        assert report.broken is not None
        print(
            f"BROKEN chain {report.bucket} at record {report.broken.stream_id}: "
            f"{report.broken.reason} ({report.entries} records before it verified)",
            file=sys.stderr,
        )
    if transitions_broken:
        print(
            f"BROKEN objection log at entry {transitions_broken.stream_id}: {transitions_broken.reason} "
            f"({transitions} entries before it verified)",
            file=sys.stderr,
        )
    print(f"{len(reports)} chains, {total} records holding {decisions} decisions verified, {len(broken)} broken")
    print(f"objection log: {transitions} transitions verified, {1 if transitions_broken else 0} broken")
    return 1 if broken or transitions_broken else 0


async def archive(settings: Settings, directory: str | None, keep_days: int) -> int:
    if keep_days < 0:
        print("debar log archive: --keep-days must be 0 or more", file=sys.stderr)
        return 2
    async with sanction_core(settings, Path(directory) if directory else None) as core:
        policy = RetentionPolicy.from_catalogue(core.catalogue, keep_days)
        chains = await archive_log(core.adapters.decision_log, core.adapters.archive, policy, int(time.time()))
    changed = [c for c in chains if not c.trimmed]
    for chain in changed:
        print(f"chain {chain.bucket} changed while archiving: archived but not trimmed; run again", file=sys.stderr)
    print(
        f"archived {sum(c.records for c in chains)} records holding {sum(c.decisions for c in chains)} decisions "
        f"from {len(chains)} chains"
    )
    return 1 if changed else 0
