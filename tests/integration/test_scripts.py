"""Every Lua script compiles on a real server, and every adapter runs its scripts one way: by SHA (never the whole
source), loaded on first use and loaded again when the server has forgotten them (a restart, a SCRIPT FLUSH)."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import pytest

from debar.common.identifiers import IdKind
from debar.local.embedded_redis import EmbeddedRedis
from debar.sanction.adapters.decision_log import RedisDecisionLog
from debar.sanction.adapters.keys import Keys
from debar.sanction.adapters.rate_counter import RedisRateCounter
from debar.sanction.adapters.redis_client import make_client
from debar.sanction.adapters.redis_store import RedisStore
from debar.sanction.adapters.rekey_store import RedisRekey
from debar.sanction.adapters.scripts import source
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decisions import CheckQuery, LoggedCheck
from debar.sanction.domain.model import EntryKind, IndexChange, IndexEntry, Outcome, Role, SubjectRef

CATALOGUE = load_default_catalogue()
SCRIPTS = sorted(
    path.name.removesuffix(".lua")
    for path in resources.files("debar.sanction.adapters").joinpath("lua").iterdir()
    if path.name.endswith(".lua")
)
T = 1_800_000_000


@pytest.fixture
async def client(tmp_path: Any) -> Any:
    with EmbeddedRedis(tmp_path / "redis") as server:
        redis = make_client(server.url, cluster=False, timeout_s=5, connections=2)
        yield redis
        await redis.aclose()


@pytest.mark.parametrize("name", SCRIPTS)
async def test_every_script_compiles_on_the_server(client, name):
    text = source(name)
    assert await client.script_load(text) == hashlib.sha1(text.encode()).hexdigest()


class Adapters:
    """Every adapter that runs scripts, each once per round, each checking that it did its job."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self.rate = RedisRateCounter(client, keys)
        self.log = RedisDecisionLog(client, keys)
        self.store = RedisStore(client, keys, catalogue=CATALOGUE)
        self.rekey = RedisRekey(client, keys)

    async def use(self, round: int) -> None:
        assert await self.rate.add("railway", 7, 1, 3) == 3 * round  # the same window: the count goes on
        assert await self.log.trim("a3f", "1-0", "1-0") == -1  # nothing archived to trim
        old = SubjectRef(IdKind.RIC, f"t0.round{round}", "a3f")
        air = CATALOGUE.measure("AIR_TRAVEL")
        entry = IndexEntry(EntryKind.RESTRICTION, f"R{round:016d}", Role.DEBTOR, air.mask, T - 10, None)
        assert await self.store.apply_index([IndexChange(old, entry.kind, entry.id, entry.role, entry)]) == 1
        counts = await self.rekey.run(lambda p: p.startswith("t1."), lambda p: "t1." + p[3:])
        assert counts.index_fields == 1  # the old pseudonym's entries moved under the current key
        new = SubjectRef(IdKind.RIC, f"t1.round{round}", "a3f")
        [decision] = await self.store.decide([LoggedCheck(CheckQuery(new, air, T), "t", 0)], CATALOGUE.version)
        assert decision.outcome is Outcome.DENY and decision.grounds == (entry,)


async def test_every_adapter_runs_its_scripts_by_sha_and_loads_them_again_after_a_flush(client):
    adapters = Adapters(client, Keys())
    await client.config_resetstat()
    await adapters.use(1)
    await client.script_flush()  # as after a restart: the server has forgotten every script
    await adapters.use(2)

    stats = await client.info("commandstats")
    assert "cmdstat_eval" not in stats  # never the whole source on a call
    evalsha = stats["cmdstat_evalsha"]
    # Five scripts (rate, trim, index, rekey, decide) twice, and once more each after the flush answered NOSCRIPT;
    # and texts once, before the first decide, for the refs of the sources a permit granted alone may override
    # (the store keeps them: a text's ref never changes).
    assert (evalsha["calls"], evalsha["failed_calls"]) == (16, 5), evalsha
