"""`debar rekey`: after a pseudonymisation key rotation (a new key first in DEBAR_PSEUDONYM_KEYS), moves every
stored pseudonym to the current key. Checks keep finding data under either key while it runs (see SubjectRef.alias),
new writes use the new key, and running it twice is harmless."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from debar.common.settings import SettingsError
from debar.sanction.app.ports import RekeyCounts, Rekeyer
from debar.sanction.domain.log_entries import RekeyEntry
from debar.sanction.domain.subjects import SubjectResolver

REKEY_ACTOR = "rekey"  # who the log names for a run: the operator's `debar rekey`


async def rekey(store: Rekeyer, resolver: SubjectResolver, clock: Callable[[], float] = time.time) -> RekeyCounts:
    """Refuses while the newest key is only staged: replicas may still be reading under the older key alone. A
    run that ends is a log entry (what it moved, to which key)."""
    if resolver.staged_key_id:
        raise SettingsError(
            f"the newest key {resolver.staged_key_id!r} is staged (DEBAR_PSEUDONYM_STAGED): make it current on every "
            "replica first (unset DEBAR_PSEUDONYM_STAGED, restart, wait for the rollout), then re-key"
        )
    counts = await store.run(resolver.is_current, resolver.current)
    entry = RekeyEntry(int(clock()), REKEY_ACTOR, resolver.current_key_id, dataclasses.asdict(counts))
    await store.sequence(entry.encode())
    return counts
