"""`debar rekey`."""

from __future__ import annotations

from debar.cli.sanction_core import sanction_core
from debar.common.settings import Settings
from debar.sanction.app.rekey import rekey


async def run_rekey(settings: Settings) -> int:
    async with sanction_core(settings) as core:
        counts = await rekey(core.adapters.rekeyer, core.resolver)
    print(
        f"re-keyed to {core.resolver.current_key_id}: {counts.index_fields} index fields, {counts.records} records, "
        f"{counts.exemptions} exemptions, {counts.decision_lists} decision lists, {counts.subscriptions} "
        "subscribed subjects" + (f"; {counts.raced} changed meanwhile: run again" if counts.raced else "")
    )
    return 1 if counts.raced else 0
