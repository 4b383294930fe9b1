"""The Redis implementation of WatchStore (app/ports.py): subscriptions, the per-subject sets a registry write
finds them by, the schedule of subjects to judge, and each owner's stream of changes told. Key layout: keys.py
(WatchKeys); the scripts: lua/watch_*.lua.

Each change told carries the service's MAC (field `h`: HMAC-SHA256, cut to 16 bytes, under a key derived from
DEBAR_BUCKET_KEY, which Redis never holds) over its owner and fields: the owner's stream is in Redis and outside
the Merkle log, so a change an insider XADDs (a booked customer "became restricted") would otherwise be streamed
as told. The MAC covers the entry's stream id too (the service picks it, newer than the stream's last): a genuine
change copied to the stream's end (a BECAME_RESTRICTED replayed after its NO_LONGER_RESTRICTED) gets a newer id
from Redis and no longer matches. One without a MAC, or whose MAC does not match, is read as not genuine, and never
told."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from debar.common.circuit import CircuitBreaker
from debar.common.identifiers import derive_from_bucket_key
from debar.sanction.adapters.keys import WatchKeys
from debar.sanction.adapters.redis_errors import unavailable_on_redis_error
from debar.sanction.adapters.replication import Replication
from debar.sanction.adapters.scripts import Scripts
from debar.sanction.app.ports import Due
from debar.sanction.domain.model import EntryKind, IndexEntry, Outcome, Role, SubjectRef
from debar.sanction.domain.watch import (
    ORPHAN_AFTER_S,
    ChangeKind,
    Subscription,
    Told,
    subject_member,
    subject_of_member,
)

_OUTCOME = {Outcome.ALLOW: "A", Outcome.DENY: "D"}
_OUTCOME_OF = {"A": Outcome.ALLOW, "D": Outcome.DENY}
_KIND = {ChangeKind.BECAME_RESTRICTED: "R", ChangeKind.NO_LONGER_RESTRICTED: "L"}
_KIND_OF = {v: k for k, v in _KIND.items()}
CHANGE_MAC_INFO = b"debar watch change v2"  # the HKDF label of the change MAC key
_TOLD = ("s", "t", "m", "k", "d", "g", "a")  # a change's fields, in the order its MAC takes them


def change_key(bucket_key: str | bytes) -> bytes:
    """The key of the changes' MAC, derived from the bucket key (as domain/decision_seals.py's seal key)."""
    return derive_from_bucket_key(bucket_key, CHANGE_MAC_INFO)


def _change_mac(key: bytes, owner: str, values: Sequence[str]) -> bytes:
    message = b"".join(b"%d:%s" % (len(v), v) for v in (CHANGE_MAC_INFO, *(x.encode() for x in (owner, *values))))
    return base64.urlsafe_b64encode(hmac.digest(key, message, "sha256")[:16]).rstrip(b"=")


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _member(sub: Subscription) -> str:
    return f"{sub.until} {sub.created_at} {sub.id} {sub.owner}"


def _grounds(grounds: Sequence[IndexEntry]) -> str:
    return json.dumps(
        [
            [
                g.id,
                int(g.role or Role.DEBTOR),
                g.effective_from,
                g.effective_until,
                g.source,
                g.via,
                g.legal_basis,
                g.authority,
                g.case_number,
            ]
            for g in grounds
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def _grounds_of(text: str) -> tuple[IndexEntry, ...]:
    return tuple(
        IndexEntry(EntryKind.RESTRICTION, rid, Role(role), 0, start, end, source, via, basis, authority, case)
        for rid, role, start, end, source, via, basis, authority, case in json.loads(text)
    )


class RedisWatchStore:
    def __init__(
        self, client: Redis, keys: WatchKeys, breaker: CircuitBreaker | None = None,
        replication: Replication | None = None, *, mac_key: bytes,
    ) -> None:  # fmt: skip
        """`mac_key`: change_key(DEBAR_BUCKET_KEY), the same in every server of the deployment."""
        self._mac_key = mac_key
        self._redis = client
        self._keys = keys
        self._breaker = breaker or CircuitBreaker()
        # With a Replication, the scripts that store what a platform is told (adapters/scripts.py WRITES) wait for
        # their replicas like every acknowledged write.
        names = ("watch_add", "watch_remove", "watch_tell", "watch_claim", "watch_done", "watch_any")
        self._scripts = Scripts(client, names, replication)

    # -- subscriptions -------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def hold(self, subscriptions: Sequence[Subscription]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub in subscriptions:
                key = self._keys.subject(sub.subject.bucket, sub.subject.pseudonym)
                pipe.sadd(key, _member(sub))
                pipe.expireat(key, sub.until, nx=True)
                pipe.expireat(key, sub.until, gt=True)
            await pipe.execute()

    @unavailable_on_redis_error
    async def release(self, subscriptions: Sequence[Subscription]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for sub in subscriptions:
                pipe.srem(self._keys.subject(sub.subject.bucket, sub.subject.pseudonym), _member(sub))
            await pipe.execute()

    @unavailable_on_redis_error
    async def add(self, owner: str, subscriptions: Sequence[Subscription], quota: int, now: int) -> int | None:
        args: list[Any] = [now, quota]
        for sub in subscriptions:
            told = ";".join(f"{code}={_OUTCOME[o]}" for code, o in sub.told.items())
            args += [sub.id, sub.until, subject_member(sub.subject), ",".join(sub.measures), sub.tag, sub.created_at,
                     told]  # fmt: skip
        keys = [self._keys.owned(owner), *(self._keys.subscription(owner, s.id) for s in subscriptions)]
        held = int(await self._scripts.run("watch_add", keys, args))
        return None if held < 0 else held

    @unavailable_on_redis_error
    async def remove(self, owner: str, subscription_id: str, now: int) -> bool:
        found = await self._scripts.run(
            "watch_remove", [self._keys.owned(owner), self._keys.subscription(owner, subscription_id)],
            [subscription_id, now],
        )  # fmt: skip
        if not found:
            return False
        subject_text, until, created = _str(found[0]), int(float(_str(found[1]))), _str(found[2])
        if subject_text:
            subject = subject_of_member(subject_text)
            member = f"{until} {created} {subscription_id} {owner}"
            for pseudonym in filter(None, (subject.pseudonym, subject.alias)):
                await self._redis.srem(self._keys.subject(subject.bucket, pseudonym), member)
        return True

    @unavailable_on_redis_error
    async def held(self, owner: str, now: int) -> int:
        return int(await self._redis.zcount(self._keys.owned(owner), f"({now}", "+inf"))

    @unavailable_on_redis_error
    async def subscriptions_of(self, subject: SubjectRef, now: int) -> tuple[list[Subscription], bool]:
        """Under the subject's pseudonym and, during a key rotation, its alias (made before `debar rekey` ran)."""
        keys = [self._keys.subject(subject.bucket, p) for p in filter(None, (subject.pseudonym, subject.alias))]
        parsed = [(key, _str(m), *_str(m).split(" ", 3)) for key in keys for m in await self._redis.smembers(key)]
        ended = [(key, m) for key, m, until, _, _, _ in parsed if int(until) <= now]
        live = [(key, m, int(c), sid, owner) for key, m, until, c, sid, owner in parsed if int(until) > now]
        out: list[Subscription] = []
        unfinished = False
        if live:
            async with self._redis.pipeline(transaction=False) as pipe:
                for *_, sid, owner in live:
                    pipe.hgetall(self._keys.subscription(owner, sid))
                records = await pipe.execute()
            for (key, member, created, sid, owner), raw in zip(live, records, strict=True):
                if not raw:  # being made (judged again shortly), just unsubscribed, or an orphan
                    if created > now - ORPHAN_AFTER_S:
                        unfinished = True
                    else:
                        ended.append((key, member))
                    continue
                record = {_str(k): _str(v) for k, v in raw.items()}
                told = {k[2:]: _OUTCOME_OF[v] for k, v in record.items() if k.startswith("o:")}
                measures = tuple(filter(None, record["m"].split(",")))
                out.append(Subscription(sid, owner, subject, measures, int(record["u"]), record["t"], created, told))
        for key in {k for k, _ in ended}:
            await self._redis.srem(key, *(m for k, m in ended if k == key))
        return out, unfinished

    @unavailable_on_redis_error
    async def watched(self, subjects: Sequence[SubjectRef]) -> list[SubjectRef]:
        """One `watch_any` script call per node (one on a single server), not a command per subject: an import
        asks this for every subject of a chunk, before and after its write."""
        if not subjects:
            return []
        keys = [[self._keys.subject(s.bucket, p) for p in filter(None, (s.pseudonym, s.alias))] for s in subjects]
        found: list[int] = []
        for node, positions in await self._by_node([k[0] for k in keys]):
            args: list[Any] = []
            for i in positions:
                args += (len(keys[i]), *keys[i])
            target = {"target_nodes": node} if node is not None else {}
            hits = await self._scripts.run("watch_any", [keys[positions[0]][0]], args, **target)
            found += [positions[int(n) - 1] for n in hits]
        return [subjects[i] for i in sorted(found)]

    async def _by_node(self, keys: Sequence[str]) -> list[tuple[Any, list[int]]]:
        """Positions of `keys` grouped by the cluster node that owns them; one group (node None) on one server."""
        if not isinstance(self._redis, RedisCluster):
            return [(None, list(range(len(keys))))]
        await self._redis.initialize()
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, key in enumerate(keys):
            node = self._redis.get_node_from_key(key)
            groups.setdefault(node.name, (node, []))[1].append(i)
        return list(groups.values())

    # -- the schedule --------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def schedule(self, subjects: Sequence[SubjectRef], at: float, *, earlier_only: bool = False) -> None:
        if subjects:
            mapping = {subject_member(s): at for s in subjects}
            await self._redis.zadd(self._keys.due, mapping, lt=earlier_only)  # type: ignore[arg-type]

    @unavailable_on_redis_error
    async def claim(self, now: float, lease_s: float, limit: int) -> list[Due]:
        # Most polls find nothing due: a read first, so an idle server sends no write script five times a second
        # (one a paused or failing-over Redis would hold, and one every server's poll would cost the primary).
        if not await self._redis.zrangebyscore(self._keys.due, "-inf", repr(now), start=0, num=1):
            return []
        found = await self._scripts.run("watch_claim", [self._keys.due], [repr(now), repr(lease_s), limit])
        pairs = [_str(x) for x in found]
        return [Due(subject_of_member(pairs[i]), pairs[i + 1]) for i in range(0, len(pairs), 2)]

    @unavailable_on_redis_error
    async def done(self, due: Due, next_at: int | None, now: float) -> None:
        member = subject_member(due.subject)
        await self._scripts.run(
            "watch_done", [self._keys.due], [member, due.claim, "" if next_at is None else next_at, repr(now)]
        )

    # -- changes -------------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def tell(
        self, subscription: Subscription, measure: str, told: Outcome, now_told: Outcome, change: Told,
        retention_s: int,
    ) -> str | None:  # fmt: skip
        owner = subscription.owner
        keep_from = change.changed_at_ms - retention_s * 1000
        values = (
            change.subscription_id, change.tag, change.measure, _KIND[change.kind], change.decision_id,
            _grounds(change.grounds), str(change.changed_at_ms),
        )  # fmt: skip
        fields: list[str] = [x for pair in zip(_TOLD, values, strict=True) for x in pair]
        entry_id = f"{max(change.changed_at_ms, 1)}-0"
        while True:  # until the id is newer than the stream's last (another server's tell, or a clock behind)
            mac = _change_mac(self._mac_key, owner, (entry_id, *values)).decode()
            found = await self._scripts.run(
                "watch_tell",
                [self._keys.subscription(owner, subscription.id), self._keys.changes(owner)],
                [measure, _OUTCOME[told], _OUTCOME[now_told], keep_from, retention_s * 1000, entry_id,
                 *fields, "h", mac],
            )  # fmt: skip
            if not isinstance(found, list):
                return _str(found) if found else None
            last_ms, last_seq = (int(x) for x in _str(found[1]).split("-"))
            entry_id = f"{last_ms}-{last_seq + 1}"

    @unavailable_on_redis_error
    async def changes(self, owner: str, after: str, limit: int) -> list[Told]:
        start = f"({after}" if after else "-"
        entries: Any = await self._redis.xrange(self._keys.changes(owner), start, "+", count=limit)
        out = []
        for entry_id, raw in entries:
            f = {_str(k): _str(v) for k, v in raw.items()}
            mac = _change_mac(self._mac_key, owner, [_str(entry_id), *(f.get(name, "") for name in _TOLD)])
            if not hmac.compare_digest(f.get("h", "").encode(), mac):  # written behind the service's back
                out.append(Told(f.get("s", ""), "", "", ChangeKind.BECAME_RESTRICTED, "", (), 0, _str(entry_id), False))
                continue
            out.append(
                Told(
                    f["s"],
                    f["t"],
                    f["m"],
                    _KIND_OF[f["k"]],
                    f["d"],
                    _grounds_of(f["g"]),
                    int(f["a"]),
                    cursor=_str(entry_id),
                )
            )
        return out
