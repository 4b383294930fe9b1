"""The Lua scripts, every one of them run through `Scripts`: each read from lua/ with the shared functions it uses
(lua/lib/, put after the shebang line, which must stay first), and run by EVALSHA, loaded on first use and again
when the server has forgotten it (NOSCRIPT: a restart or a SCRIPT FLUSH)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import NoScriptError

from debar.sanction.adapters.redis_client import Lanes
from debar.sanction.adapters.replication import Replication

# The lua/lib/ pieces each script uses.
USES = {"index": ("entries",), "write": ("entries", "claims"), "claim": ("claims",), "rekey": ("claims",)}


def _lua(path: str) -> str:
    return resources.files("debar.sanction.adapters").joinpath(f"lua/{path}.lua").read_text()


def source(name: str) -> str:
    text = _lua(name)
    libraries = "".join(_lua(f"lib/{lib}") for lib in USES.get(name, ()))
    if text.startswith("#!"):
        shebang, _, body = text.partition("\n")
        return f"{shebang}\n{libraries}{body}"
    return libraries + text


# The scripts that write what the core acknowledges: with a Replication, each is followed by its WAIT (see
# adapters/replication.py). `rate` (a counter that may be lost) and `read` are not. `claim`: a claim a failover lost
# would let another write past it.
WRITES = frozenset(
    {"decide", "index", "replay", "write", "claim", "texts", "objection", "rekey", "trim"}
    | {"watch_add", "watch_remove", "watch_tell", "watch_rekey"}  # subscriptions and the changes told
    | {"tree_commit", "tree_checkpoint"}  # the Merkle log: a signed tree must survive a failover
)


class Scripts:
    """`replication`: the written scripts' answers wait for the replicas (WRITES); `lanes`: the rest, and the
    written ones when no replica is required, go out on them (the check path's own connections, see
    redis_client.Lanes) when a call has no options; else through the client."""

    def __init__(
        self, client: Redis | RedisCluster, names: Sequence[str], replication: Replication | None = None,
        lanes: Lanes | None = None,
    ) -> None:  # fmt: skip
        self._redis = client
        self._sources = {name: source(name) for name in names}
        self._shas: dict[str, str] = {}
        self._replication = replication
        self._lanes = lanes

    async def run(self, name: str, keys: Sequence[str], args: Sequence[Any], **options: Any) -> Any:
        """`options`: e.g. target_nodes on Redis Cluster."""
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = await self._redis.script_load(self._sources[name])
        if self._replication is not None and name in WRITES and await self._replication.required():
            return await self._replicated(name, sha, keys, args, options.get("target_nodes"))
        try:
            return await self._evalsha(sha, keys, args, options)
        except NoScriptError:  # the server restarted or was flushed: load once more
            self._shas[name] = await self._redis.script_load(self._sources[name])
            return await self._evalsha(self._shas[name], keys, args, options)

    async def _evalsha(self, sha: str, keys: Sequence[str], args: Sequence[Any], options: dict[str, Any]) -> Any:
        if self._lanes is not None and not options:
            return await self._lanes.execute("EVALSHA", sha, len(keys), *keys, *args)
        return await self._redis.execute_command("EVALSHA", sha, len(keys), *keys, *args, **options)

    async def _replicated(self, name: str, sha: str, keys: Sequence[str], args: Sequence[Any], node: Any) -> Any:
        assert self._replication is not None
        try:
            (answer,) = await self._replication.execute([("EVALSHA", sha, len(keys), *keys, *args)], keys, node)
        except NoScriptError:
            sha = self._shas[name] = await self._redis.script_load(self._sources[name])
            (answer,) = await self._replication.execute([("EVALSHA", sha, len(keys), *keys, *args)], keys, node)
        return answer
