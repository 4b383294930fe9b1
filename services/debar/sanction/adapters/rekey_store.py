"""Walks the stored data for `debar rekey`: subject index fields, records, exemptions and decision lists whose
pseudonym is under an older key, and moves each with atomic script calls in its own slot (one per field or record,
one per chunk of a decision list), so that a run stopped anywhere loses nothing and the next run finishes it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from redis.asyncio import Redis

from debar.sanction.adapters import codec
from debar.sanction.adapters.keys import CLAIM_CEILING_MS, Keys, WatchKeys, decisions_pseudonym, hash_tag
from debar.sanction.adapters.replication import Replication
from debar.sanction.adapters.scripts import Scripts
from debar.sanction.app.ports import RekeyCounts
from debar.sanction.domain.watch import subject_member, subject_of_member
from debar.tlog.entry_signature import sign_entry
from debar.tlog.note import Signer


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


LIST_CHUNK = 1000  # decision ids moved per script call: far below Lua's unpack limit (about 8000 values)


class RedisRekey:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        list_chunk: int = LIST_CHUNK,
        replication: Replication | None = None,
        watch_keys: WatchKeys | None = None,
        entry_signer: Signer | None = None,
    ) -> None:
        """`entry_signer`: the log's key, which signs the run's log entry (tlog/entry_signature.py)."""
        self._entry_signer = entry_signer
        self._redis = client
        self._keys = keys
        self._watch_keys = watch_keys
        self._scripts = Scripts(client, ("rekey", "watch_rekey"), replication)
        self._list_chunk = list_chunk
        self._replication = replication

    async def sequence(self, entry: bytes) -> None:
        """XADD with an id Redis picks (increasing in the stream), replicated before it returns when asked."""
        signature = sign_entry(self._entry_signer, entry) if self._entry_signer is not None else ""
        command = ("XADD", self._keys.operations_log, "*", "e", entry, "s", signature)
        if self._replication is None:
            await self._redis.execute_command(*command)
        else:
            await self._replication.execute([command], [command[1]])

    async def _call(self, keys: list[str], args: list[Any]) -> int:
        return int(await self._scripts.run("rekey", keys, args))

    async def _scan(self, pattern: str) -> AsyncIterator[str]:
        async for key in self._redis.scan_iter(match=pattern, count=1000):
            yield _text(key)

    async def _rewrite(
        self, pattern: str, rekeyed: Callable[[bytes], bytes | None], claimed: bool = False
    ) -> tuple[int, int]:
        """Rewrites every value in the hashes matching `pattern` that `rekeyed` changes, each only if unchanged
        since read (and, `claimed`: restrictions, not held by a registry write spanning nodes, lua/claim.lua);
        returns (rewritten, changed or held by someone else meanwhile)."""
        done = raced = 0
        async for key in self._scan(pattern):
            values: dict[Any, bytes] = await self._redis.hgetall(key)  # type: ignore[assignment]
            for field, raw in values.items():
                moved = rekeyed(raw)
                if moved is not None:
                    keys = [key, self._keys.record_claim(key, _text(field))] if claimed else [key]
                    swapped = await self._call(keys, ["cas", field, raw, moved, CLAIM_CEILING_MS])
                    done += swapped
                    raced += 1 - swapped
        return done, raced

    async def run(self, is_current: Callable[[str], bool], forward: Callable[[str], str]) -> RekeyCounts:
        counts = RekeyCounts()
        # Index entries first, then the records that name them: a write racing the job then always finds its
        # entries where `Registry.under_current_keys` puts them.
        async for key in self._scan(self._keys.index_pattern()):
            bucket = hash_tag(key)
            for raw in await self._redis.hkeys(key):
                old = _text(raw)
                if not is_current(old):
                    new = forward(old)
                    counts.index_fields += await self._call([key, self._keys.index(bucket, new)], ["move", old, new])
        records, raced_records = await self._rewrite(
            self._keys.restrictions_pattern(), lambda raw: codec.rekeyed_restriction(raw, forward), claimed=True
        )
        exemptions, raced_exemptions = await self._rewrite(
            self._keys.exemptions_pattern(), lambda raw: codec.rekeyed_exemption(raw, forward)
        )
        counts.records, counts.exemptions, counts.raced = records, exemptions, raced_records + raced_exemptions
        async for key in self._scan(self._keys.subject_decisions_pattern()):
            old = decisions_pseudonym(key)
            if not is_current(old):
                new_key = self._keys.subject_decisions(hash_tag(key), forward(old))
                counts.decision_lists += 1 if await self._move_list(key, new_key) else 0
        if self._watch_keys is not None:
            counts.subscriptions = await self._move_subscriptions(self._watch_keys, is_current, forward)
        return counts

    async def _move_subscriptions(
        self, keys: WatchKeys, is_current: Callable[[str], bool], forward: Callable[[str], str]
    ) -> int:
        """Subjects' subscription sets, then the subject each subscription names, then the schedule's members (a
        judge meanwhile looks under both names, see app/watch.py)."""
        moved = 0
        async for key in self._scan(keys.subject_pattern()):
            old = keys.subject_pseudonym(key)
            if not is_current(old):
                new_key = keys.subject(hash_tag(key), forward(old))
                moved += 1 if await self._scripts.run("watch_rekey", [key, new_key], ["set"]) else 0

        def renamed(member: str) -> str | None:
            subject = subject_of_member(member)
            if is_current(subject.pseudonym):
                return None
            new = replace(subject, pseudonym=forward(subject.pseudonym), alias="")
            return subject_member(new)

        async for key in self._scan(keys.subscription_pattern()):
            found = await self._redis.hget(key, "s")
            if found is not None and (new := renamed(_text(found))) is not None:
                await self._scripts.run("watch_rekey", [key], ["field", _text(found), new])
        async for raw, _ in self._redis.zscan_iter(keys.due):
            if (new := renamed(_text(raw))) is not None:
                await self._scripts.run("watch_rekey", [keys.due], ["due", _text(raw), new])
        return moved

    async def _move_list(self, old_key: str, new_key: str) -> int:
        """Moves a decision list chunk by chunk, each an atomic script call; returns how many ids moved. Stopped at
        any point (a crash, a killed job), nothing is lost or doubled: the rest is still under the old name, where
        readers and the next run find it."""
        moved = 0
        while True:
            done, left = await self._move_chunk(old_key, new_key)
            moved += done
            if not left:
                return moved

    async def _move_chunk(self, old_key: str, new_key: str) -> tuple[int, int]:
        """(ids moved, ids left under the old name)."""
        done, left = await self._scripts.run("rekey", [old_key, new_key], ["list", self._list_chunk])
        return int(done), int(left)
