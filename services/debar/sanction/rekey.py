"""`debar rekey`: after a pseudonymisation key rotation (a new key first in DEBAR_PSEUDONYM_KEYS), moves every
stored pseudonym to the current key. Checks keep finding data under either key while it runs (see SubjectRef.alias),
new writes use the new key, and running it twice is harmless."""

from __future__ import annotations

from debar.sanction.adapters.rekey_store import RedisRekey, RekeyCounts
from debar.sanction.domain.subjects import SubjectResolver


async def rekey(store: RedisRekey, resolver: SubjectResolver) -> RekeyCounts:
    return await store.run(resolver.is_current, resolver.current)
