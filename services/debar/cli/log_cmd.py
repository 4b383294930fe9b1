"""`debar log verify`."""

from __future__ import annotations

import sys

from debar.common.embedded_redis import redis_url_for
from debar.common.settings import Settings
from debar.sanction.bootstrap import build_core
from debar.sanction.decision_reader import verify_log


async def verify(settings: Settings) -> int:
    with redis_url_for(settings.redis_url, settings.data_dir / "redis") as url:
        core = build_core(settings, url)
        try:
            reports = await verify_log(core.decision_log)
            transitions, transitions_broken = await core.objection_store.verify_log()
        finally:
            await core.close()
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
