"""The Redis implementation of the restriction store (app/ports.py: RestrictionStore, Decider): restrictions, the
subject index, exemptions, shared texts, the data revision, and checks, decided and logged in one script call.
One of the adapters that speak to Redis, beside decision_log (reading the log back), objection_store,
rate_counter and rekey_store; everything above them sees domain objects through the ports."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from typing import Any

import msgpack
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from debar.common.circuit import CircuitBreaker
from debar.sanction.adapters import codec
from debar.sanction.adapters.keys import CLAIM_CEILING_MS, Keys
from debar.sanction.adapters.redis_client import Lanes
from debar.sanction.adapters.redis_errors import unavailable_on_redis_error
from debar.sanction.adapters.replication import Replication
from debar.sanction.adapters.scripts import Scripts
from debar.sanction.app.ports import DecisionNames, RateAsk, Sequenced, StaleWrite
from debar.sanction.domain import four_eyes
from debar.sanction.domain.catalogue import Catalogue, load_default_catalogue
from debar.sanction.domain.decision_seals import DecisionSealer
from debar.sanction.domain.decisions import Decision, LoggedCheck, SpooledDecision, decision_id
from debar.sanction.domain.entries import decode_entry, encode_entry, entry_key, split_entries, text_refs_of
from debar.sanction.domain.model import Exemption, IndexChange, IndexEntry, Outcome, Restriction, SubjectRef
from debar.tlog.entry_signature import sign_chunk, sign_entry
from debar.tlog.note import Signer

BATCH_ENTRIES = 256  # registry entries per stream record of a many-record write (a record of ~60 KB at most)
# How long a write spanning nodes may hold its records between claiming and storing them (lua/claim.lua), at least;
# a writer that died holding one keeps the record's other writes refused (ABORTED) that long (see claim_life_ms).
CLAIM_MS = 10_000
_STALE = "STALE "  # lua/write.lua's error reply naming a record that is not the one a write replaces
SUBJECT_PARTS_KEPT = 20_000  # subjects whose decide item part is kept (about 250 bytes each)


class RedisStore:
    def __init__(
        self, client: Redis, keys: Keys, breaker: CircuitBreaker | None = None, catalogue: Catalogue | None = None,
        replication: Replication | None = None, lanes: Lanes | None = None, entry_signer: Signer | None = None,
        sealer: DecisionSealer | None = None, claim_ms: int = CLAIM_MS,
    ) -> None:  # fmt: skip
        """`replication`: writes are acknowledged only once replicas hold them (adapters/replication.py); `lanes`:
        the check path's own connections (redis_client.Lanes); `entry_signer`: the log's key, which signs each
        registry entry before it is sequenced (tlog/entry_signature.py; None: unsigned, a tool without the key);
        `sealer`: seals each decided group's questions (domain/decision_seals.py; None: a random key of its own,
        whose seals `debar log verify` rejects: for tests that never verify); `claim_ms`: how long a registry
        write's claims on its records last (claim_life_ms)."""
        self._claim_ms = min(claim_ms, CLAIM_CEILING_MS)
        self._redis = client  # decode_responses=False: values are bytes
        self._sealer = sealer or DecisionSealer(secrets.token_bytes(32))
        self._entry_signer = entry_signer
        self._keys = keys
        self._breaker = breaker or CircuitBreaker()
        self._catalogue = catalogue or load_default_catalogue()  # records store measures as its bitmask
        self._replication = replication
        self._scripts = Scripts(
            client, ("decide", "index", "replay", "write", "claim", "read", "texts", "rate"), replication, lanes
        )
        self._texts: dict[str, str] = {}  # ref -> text
        # Packed index entry -> decoded entry: the same restrictions come back in answer after answer. Entries are
        # immutable under their text (a change writes a new one), so the cache is never stale; it is bounded.
        self._entries: dict[str, IndexEntry] = {}
        self._subject_parts: dict[str, tuple[SubjectRef, str]] = {}  # pseudonym -> its decide item part
        self._refs: dict[str, str] = {}  # text -> ref
        self._alone_overrides: str | None = None  # see _alone_overrides_refs

    @unavailable_on_redis_error
    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        await self._redis.aclose()

    @unavailable_on_redis_error
    async def replicas_confirm(self) -> None:
        """A probe write on every primary, confirmed by the replicas acknowledged writes need (health)."""
        if self._replication is not None:
            await self._replication.probe()

    async def _write(self, *command: Any) -> Any:
        """One write command on the key command[1], replicated before it returns when replication is asked."""
        if self._replication is None:
            return await self._redis.execute_command(*command)
        (answer,) = await self._replication.execute([command], [command[1]])
        return answer

    # -- scripts -------------------------------------------------------------------------------------------

    async def _eval(self, name: str, keys: Sequence[str], args: Sequence[Any], node: Any = None) -> Any:
        """`node`: on Redis Cluster, the node that owns every key (the script may span slots of one node)."""
        target = {"target_nodes": node} if node is not None else {}
        return await self._scripts.run(name, keys, args, **target)

    async def _slots_known(self) -> None:
        """A cluster client learns the slot map on its first command; `_by_node` needs it before any."""
        if isinstance(self._redis, RedisCluster):
            await self._redis.initialize()

    def _by_node(self, keys: Sequence[str]) -> list[tuple[Any, list[int]]]:
        """Positions of `keys` grouped by the cluster node that owns them; one group (node None) on one server."""
        if not isinstance(self._redis, RedisCluster):
            return [(None, list(range(len(keys))))]
        groups: dict[str, tuple[Any, list[int]]] = {}
        for i, key in enumerate(keys):
            node = self._redis.get_node_from_key(key)
            groups.setdefault(node.name, (node, []))[1].append(i)
        return list(groups.values())

    # -- revision ------------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def revision(self) -> int:
        value = await self._redis.get(self._keys.revision)
        return int(value or 0)

    @unavailable_on_redis_error
    async def add_import_counts(self, counts: Mapping[str, int]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for result, n in counts.items():
                pipe.hincrby(self._keys.imports, result, n)
            await pipe.execute()

    @unavailable_on_redis_error
    async def import_counts(self) -> dict[str, int]:
        found: Any = await self._redis.hgetall(self._keys.imports)
        return {_str(k): int(v) for k, v in found.items()}

    @unavailable_on_redis_error
    async def bump_revision(self) -> int:
        return int(await self._write("INCR", self._keys.revision))

    # -- texts ---------------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def store_texts(self, texts: Iterable[str]) -> dict[str, str]:
        """Stores texts not seen before under short refs the `texts` script allocates; text -> ref, cached for
        the life of the process (a text's ref never changes)."""
        missing = list(dict.fromkeys(t for t in texts if t and t not in self._refs))
        if missing:
            refs = await self._eval("texts", [self._keys.texts], missing)
            for text, ref in zip(missing, refs, strict=True):
                self._refs[text] = _str(ref)
                self._texts[_str(ref)] = text
        return self._refs

    @unavailable_on_redis_error
    async def resolve_texts(self, refs: Iterable[str]) -> dict[str, str]:
        """Texts are immutable under their content ref, so they are cached for the life of the process."""
        wanted = [r for r in set(refs) if r and r not in self._texts]
        if wanted:
            values = await self._redis.hmget(self._keys.texts, wanted)
            for ref, value in zip(wanted, values, strict=True):
                if value is not None:
                    self._texts[ref] = _str(value)
        return self._texts

    # -- checks --------------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def decide(
        self, checks: Sequence[LoggedCheck], catalogue_version: str, rates: Sequence[RateAsk | None] = (),
        names: DecisionNames | None = None,
    ) -> list[Decision]:  # fmt: skip
        """One script call per node (one on a single server) decides the checks and logs them as one record. On a
        single server the same call counts the `rates` first (one round trip per check); on Redis Cluster a
        counter's key may live on another node, so each counter is counted by the rate script first."""
        asks = list(dict.fromkeys(r for r in rates if r is not None))
        for ask in asks:
            ask.tried = True
        if asks and isinstance(self._redis, RedisCluster):
            for ask in asks:
                ask.count = int(await self._eval("rate", [self._keys.rate(ask.key, ask.window)],
                                                 [ask.cost, 2 * ask.window_s]))  # fmt: skip
            kept = [i for i, r in enumerate(rates) if r is None or not r.refused]
            checks, rates, asks = [checks[i] for i in kept], (), []
            if not checks:
                return []
        if isinstance(self._redis, RedisCluster):
            groups = self._by_node([self._keys.log(c.query.subject.bucket) for c in checks])
        else:  # one server: one group, and no key to look up per check
            groups = [(None, list(range(len(checks))))]
        if len(groups) == 1:
            return await self._decide_on(groups[0][0], checks, catalogue_version, names, rates, asks)
        answers = await asyncio.gather(
            *(self._decide_on(node, [checks[i] for i in positions], catalogue_version, names)
              for node, positions in groups)
        )  # fmt: skip
        ordered: list[Decision | None] = [None] * len(checks)
        for (_, positions), decisions in zip(groups, answers, strict=True):
            for i, decision in zip(positions, decisions, strict=True):
                ordered[i] = decision
        return [d for d in ordered if d is not None]

    async def _decide_on(
        self, node: Any, checks: Sequence[LoggedCheck], catalogue_version: str, names: DecisionNames | None,
        rates: Sequence[RateAsk | None] = (), asks: Sequence[RateAsk] = (),
    ) -> list[Decision]:  # fmt: skip
        chain = checks[0].query.subject.bucket
        keys: list[str] = [self._keys.log(chain)]
        args: list[Any] = [catalogue_version, chain, len(asks)]
        number = {id(ask): str(n) for n, ask in enumerate(asks, 1)}
        for ask in asks:
            args += (self._keys.rate(ask.key, ask.window), ask.cost, ask.limit, 2 * ask.window_s)
        items: list[str] = []
        subjects, asked = self._subject_parts, ("", -1, "")
        # One seal per maximal run of items of one rate counter number (decide.lua decides or refuses a run
        # together): (first item, its counter number), and each item's question.
        runs: list[tuple[int, str]] = []
        questions: list[tuple[str, str, str, str, str, str]] = []
        for n, check in enumerate(checks):
            q = check.query
            subject = q.subject
            part = subjects.get(subject.pseudonym)
            if part is None or (part[0] is not subject and part[0] != subject):
                if len(subjects) >= SUBJECT_PARTS_KEPT:
                    subjects.clear()
                part = subjects[subject.pseudonym] = (subject, self._subject_part(subject))
            if asked[0] != check.logged_caller or asked[1] != check.revision:
                asked = (check.logged_caller, check.revision, f"{check.logged_caller}\x1f{check.revision}")
            own = rates[n] if rates else None
            rate = "0" if own is None else number[id(own)]
            if not runs or runs[-1][1] != rate:
                runs.append((n, rate))
            at = str(q.at)
            questions.append((asked[0], str(asked[1]), subject.kind.value, subject.pseudonym, q.measure.code, at))
            items.append(f"{part[1]}\x1f{asked[2]}\x1f{q.measure.code}\x1f{q.measure.mask}\x1f{at}\x1f{rate}\x1f")
        seal = self._sealer.seal
        for r, (start, _) in enumerate(runs):
            end = runs[r + 1][0] if r + 1 < len(runs) else len(checks)
            items[start] += seal(chain, questions[start:end])
        args.append("\x1d".join(items))
        args.append(self._alone_overrides or await self._alone_overrides_refs())
        stream_id, packed, counts = await self._eval("decide", keys, args, node)
        for ask, count in zip(asks, counts, strict=True):
            ask.count = int(count)
        if asks:
            checks = [c for c, own in zip(checks, rates, strict=True) if own is None or not own.refused]
        sid = _str(stream_id)
        if not sid:  # nothing decided
            return []
        # Per decision: "" for an allow that matched nothing (None here), else its outcome, its matched restriction
        # entries (RS between) and its exemption entry or "", FS between the three.
        answers = [a.split("\x1c") if a else None for a in _str(packed).split("\x1d")]
        refs: list[str] = []
        for answer in answers:
            if answer:
                _, grounds, exemption = answer
                for raw in [*grounds.split("\x1e"), exemption] if exemption else grounds.split("\x1e"):
                    if raw not in self._entries:  # a decoded entry's texts were resolved with it
                        refs += text_refs_of(raw)
        texts = await self.resolve_texts(refs) if refs else self._texts
        decided_at_ms = int(sid.split("-")[0])
        ids = names(sid, chain, len(checks)) if names else [decision_id(sid, chain, i) for i in range(len(checks))]
        allow, deny = Outcome.ALLOW, Outcome.DENY
        # Taken as the script gives it: an exemption comes back only when it turned a deny into this allow (its
        # grounds are then the restrictions it overrode), never for a subject nothing restricts, whom naming a
        # permit would mislead (see lua/decide.lua; domain/rules.py:evaluate is the same rule, held to the
        # script by tests/integration/test_check_rule.py).
        entry = self._entry
        decisions: list[Decision] = []
        add = decisions.append
        # Decision's fields in order: decision_id, query, outcome, grounds, exemption, decided_at_ms, revision,
        # catalogue_version.
        for check, answer, name in zip(checks, answers, ids, strict=True):
            if not answer:
                add(Decision(name, check.query, allow, (), None, decided_at_ms, check.revision, catalogue_version))
                continue
            outcome, grounds, exemption = answer
            add(
                Decision(
                    name,
                    check.query,
                    deny if outcome == "DENY" else allow,
                    tuple([entry(g, texts) for g in grounds.split("\x1e")]),
                    entry(exemption, texts) if exemption else None,
                    decided_at_ms,
                    check.revision,
                    catalogue_version,
                )
            )
        return decisions

    def _subject_part(self, subject: SubjectRef) -> str:
        """A subject's fields of a decide item (see lua/decide.lua), the same in every check of it."""
        bucket, pseudonym, alias = subject.bucket, subject.pseudonym, subject.alias
        index, decisions = self._keys.index(bucket, pseudonym), self._keys.subject_decisions(bucket, pseudonym)
        alias_index = self._keys.index(bucket, alias) if alias else ""
        return "\x1f".join((index, decisions, subject.kind.value, pseudonym, alias_index, alias))

    async def _alone_overrides_refs(self) -> str:
        """The refs of the sources whose restrictions a permit granted by one identity may override
        (four_eyes.one_identity_sources), as the check script takes them; allocated once (a text's ref never
        changes), so that a source with no restriction stored yet has its ref too."""
        codes = sorted(four_eyes.one_identity_sources(self._catalogue))
        refs = await self.store_texts(codes) if codes else {}
        self._alone_overrides = "\x1f".join(refs[c] for c in codes) or "\x1f"  # not empty: cached
        return self._alone_overrides

    def _entry(self, raw: str, texts: dict[str, str]) -> IndexEntry:
        entry = self._entries.get(raw)
        if entry is None:
            if len(self._entries) >= 100_000:
                self._entries.clear()
            entry = self._entries[raw] = decode_entry(raw, texts)
        return entry

    @unavailable_on_redis_error
    async def replay(self, spooled: Sequence[SpooledDecision], catalogue_version: str) -> int:
        """Appends spooled decisions to the log as one record (those not replayed before); returns how many."""
        chain = spooled[0].check.query.subject.bucket
        keys: list[str] = [self._keys.log(chain)]
        args: list[Any] = [catalogue_version, chain]
        for s in spooled:
            q = s.check.query
            bucket, pseudonym = q.subject.bucket, q.subject.pseudonym
            keys += (
                self._keys.subject_decisions(bucket, pseudonym),
                self._keys.replayed(bucket),
                self._keys.spooled_ids(bucket),
            )
            args += (s.decision_id, s.decided_at_ms, s.check.logged_caller, s.check.revision, q.subject.kind.value)
            args += (pseudonym, q.measure.code, q.at)
            question = (s.check.logged_caller, str(s.check.revision), q.subject.kind.value, pseudonym, q.measure.code)
            args.append(self._sealer.seal(chain, [(*question, str(q.at))], nonce=s.decision_id))
        return int(await self._eval("replay", keys, args))

    @unavailable_on_redis_error
    async def replayed_decision_id(self, bucket: str, spooled_id: str) -> str | None:
        value = await self._redis.hget(self._keys.spooled_ids(bucket), spooled_id)
        return _str(value) if value else None

    # -- index ---------------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def index_entries(self, subject: SubjectRef) -> list[IndexEntry]:
        """Under the current pseudonym and, during a key rotation, the previous one (not re-keyed yet)."""
        raws: list[str] = []
        for pseudonym in filter(None, (subject.pseudonym, subject.alias)):
            packed = await self._redis.hget(self._keys.index(subject.bucket, pseudonym), pseudonym)
            raws += split_entries(_str(packed)) if packed else []
        if not raws:
            return []
        refs = [ref for raw in raws for ref in text_refs_of(raw)]
        texts = await self.resolve_texts(refs)
        return [decode_entry(raw, texts) for raw in raws]

    @unavailable_on_redis_error
    async def index_entries_many(self, subjects: Sequence[SubjectRef]) -> list[list[IndexEntry]]:
        """`index_entries` of each, in one pipelined round trip (subscribing a batch reads each one's baseline)."""
        asked = [(i, p) for i, s in enumerate(subjects) for p in filter(None, (s.pseudonym, s.alias))]
        async with self._redis.pipeline(transaction=False) as pipe:
            for i, pseudonym in asked:
                pipe.hget(self._keys.index(subjects[i].bucket, pseudonym), pseudonym)
            found = await pipe.execute()
        raws: list[list[str]] = [[] for _ in subjects]
        for (i, _), packed in zip(asked, found, strict=True):
            raws[i] += split_entries(_str(packed)) if packed else []
        texts = await self.resolve_texts([ref for rs in raws for raw in rs for ref in text_refs_of(raw)])
        return [[decode_entry(raw, texts) for raw in rs] for rs in raws]

    @unavailable_on_redis_error
    async def apply_index(self, changes: Sequence[IndexChange]) -> int:
        if not changes:
            return 0
        texts = [t for c in changes if c.entry for t in (c.entry.source, c.entry.legal_basis, c.entry.authority)]
        refs = await self.store_texts(texts)
        groups = self._by_node([self._keys.index(c.subject.bucket, c.subject.pseudonym) for c in changes])
        counts = await asyncio.gather(
            *(self._apply_index_on(node, [changes[i] for i in positions], refs) for node, positions in groups)
        )
        return sum(counts)

    async def _apply_index_on(self, node: Any, changes: Sequence[IndexChange], refs: dict[str, str]) -> int:
        args: list[str] = []
        for change in changes:
            args += (
                self._keys.index(change.subject.bucket, change.subject.pseudonym),
                change.subject.pseudonym,
                entry_key(change.kind, change.entry_id, change.role),
                encode_entry(change.entry, refs) if change.entry else "",
            )
        return int(await self._eval("index", args[:1], args, node))

    # -- records -------------------------------------------------------------------------------------------

    @unavailable_on_redis_error
    async def get_restrictions(self, ids: Sequence[str]) -> list[Restriction | None]:
        if not ids:
            return []
        raws = await self._hget_many([(self._keys.restrictions(rid), rid) for rid in ids])
        refs = [ref for raw in raws if raw for ref in codec.restriction_text_refs(raw)]
        texts = await self.resolve_texts(refs)
        return [
            codec.decode_restriction(rid, raw, texts, self._catalogue) if raw else None
            for rid, raw in zip(ids, raws, strict=True)
        ]

    async def _hget_many(self, fields: Sequence[tuple[str, str]]) -> list[bytes | None]:
        """HGET of each (key, field): one command for one, else one `read` script call per node."""
        if len(fields) == 1:
            return [_bytes(value) if (value := await self._redis.hget(*fields[0])) is not None else None]
        await self._slots_known()
        groups = self._by_node([key for key, _ in fields])
        answers = await asyncio.gather(
            *(
                self._eval("read", [fields[positions[0]][0]], [v for i in positions for v in fields[i]], node)
                for node, positions in groups
            )
        )
        values: list[bytes | None] = [None] * len(fields)
        for (_, positions), found in zip(groups, answers, strict=True):
            for i, value in zip(positions, found, strict=True):
                values[i] = value
        return values

    @unavailable_on_redis_error
    async def put_restriction(self, restriction: Restriction) -> None:
        refs = await self.store_texts((restriction.source, restriction.legal_basis, restriction.authority))
        await self._write(
            "HSET", self._keys.restrictions(restriction.id), restriction.id,
            codec.encode_restriction(restriction, self._catalogue, refs),
        )  # fmt: skip

    @unavailable_on_redis_error
    async def write_restrictions(
        self,
        restrictions: Sequence[Restriction],
        replacing: Sequence[Restriction | None],
        changes: Sequence[IndexChange],
        log: Sequence[Sequenced] = (),
    ) -> int:
        """Stores records, applies their index changes and sequences their log entries in one `write` script call
        per node (one call on a single server: atomic), their texts first, so that no stored record names a text
        that is not there. Each record only over the bytes `replacing`'s was read from (StaleWrite otherwise).
        Returns how many index entries changed."""
        texts = [t for r in restrictions for t in (r.source, r.legal_basis, r.authority)]
        texts += [t for c in changes if c.entry for t in (c.entry.source, c.entry.legal_basis, c.entry.authority)]
        refs = await self.store_texts(texts)
        keys = [(self._keys.restrictions(r.id), r.id) for r in restrictions]
        read = [(key, field) for (key, field), old in zip(keys, replacing, strict=True) if old is not None]
        stored = iter(await self._hget_many(read) if read else ())
        records = []
        for (key, rid), r, old in zip(keys, restrictions, replacing, strict=True):
            expected = b""
            if old is not None:
                raw = next(stored)
                texts_now = await self.resolve_texts(codec.restriction_text_refs(raw)) if raw else {}
                if raw is None or codec.decode_restriction(rid, raw, texts_now, self._catalogue) != old:
                    raise StaleWrite(f"restriction {rid} changed since it was read")
                expected = raw
            records.append((key, rid, codec.encode_restriction(r, self._catalogue, refs), expected))
        return await self._write_ops(records, self._index_ops(changes, refs), log)

    @unavailable_on_redis_error
    async def write_exemption(
        self,
        exemption: Exemption,
        replacing: Exemption | None,
        changes: Sequence[IndexChange],
        log: Sequence[Sequenced] = (),
    ) -> int:
        """The permit, its index change and its log entry: every key in the subject's slot, so one call; only over
        the bytes `replacing` was read from (StaleWrite otherwise)."""
        key = self._keys.exemptions(exemption.subject.bucket)
        expected = b""
        if replacing is not None:
            raw: Any = await self._redis.hget(key, exemption.id)
            if raw is None or codec.decode_exemption(exemption.id, _bytes(raw)) != replacing:
                raise StaleWrite(f"exemption {exemption.id} changed since it was read")
            expected = _bytes(raw)
        records = [(key, exemption.id, codec.encode_exemption(exemption), expected)]
        refs = await self.store_texts(t for c in changes if c.entry for t in (c.entry.source, c.entry.authority))
        return await self._write_ops(records, self._index_ops(changes, refs), log)

    @unavailable_on_redis_error
    async def registry_history(self, bucket: str, target: str) -> list[tuple[str, bytes]]:
        """`target`'s history tokens: a stream id of `bucket`'s stream (one write, field `r`), or
        "<stream id>/<index>/<bucket of the stream>" (an entry of a batch, field `rs`, see lua/write.lua)."""
        ids: Any = await self._redis.hget(self._keys.registry_history(bucket), target)
        if not ids:
            return []
        # One XRANGE per write (a record's history is short), each a plain command with the client's retry on a
        # broken connection (a pipeline has none: right after an outage it failed where single commands recover).
        singles: list[tuple[str, str]] = []
        batches: list[tuple[str, str, int]] = []
        order: list[tuple[bool, int]] = []  # (batch?, position), in history order
        for token in _str(ids).split():
            sid, _, place = token.partition("/")
            position, _, where = place.partition("/")
            found: Any = await self._redis.xrange(self._keys.log(where or bucket), sid, sid)
            for _, fields in found:
                if b"r" in fields and not place:
                    order.append((False, len(singles)))
                    singles.append((sid, _str(fields[b"r"])))
                elif b"rs" in fields and place and position.isdigit():
                    order.append((True, len(batches)))
                    batches.append((sid, _str(fields[b"rs"]), int(position)))
        refs = [ref for _, raw in singles for ref in codec.registry_text_refs(raw)]
        refs += [ref for _, raw, _ in batches for ref in codec.registry_batch_text_refs(raw)]
        texts = await self.resolve_texts(refs)
        out: list[tuple[str, bytes]] = []
        for is_batch, n in order:
            if not is_batch:
                out.append((singles[n][0], codec.unpack_registry(singles[n][1], texts).encode()))
                continue
            sid, raw, index = batches[n]
            entries = codec.unpack_registry_batch(raw, texts)
            if index < len(entries):
                out.append((sid, entries[index].encode()))
        return out

    def _index_ops(self, changes: Sequence[IndexChange], refs: dict[str, str]) -> list[tuple[str, str, str, str]]:
        return [
            (
                self._keys.index(c.subject.bucket, c.subject.pseudonym),
                c.subject.pseudonym,
                entry_key(c.kind, c.entry_id, c.role),
                encode_entry(c.entry, refs) if c.entry else "",
            )
            for c in changes
        ]

    def _sign(self, entry: bytes) -> str:
        return sign_entry(self._entry_signer, entry) if self._entry_signer is not None else ""

    def _sign_chunk(self, entries: Sequence[bytes]) -> str:
        return sign_chunk(self._entry_signer, entries) if self._entry_signer is not None else ""

    async def _write_ops(
        self,
        records: Sequence[tuple[str, str, bytes, bytes]],
        entries: Sequence[tuple[str, str, str, str]],
        log: Sequence[Sequenced],
    ) -> int:
        """One `write` script call per node that owns any of the keys; one call, atomic, when one node owns them
        all (a single server, an exemption, a record in its subject's slot without principals elsewhere). A write of
        one record logs one stream record (field `r`); a write of many (an import's chunk) logs one record per node
        and BATCH_ENTRIES entries (field `rs`), in the stream of its first entry's bucket: the Merkle tree's
        bookkeeping is per record, so an imported restriction costs its leaf (32 bytes) and not a record's share.
        Spanning nodes, the calls are not one transaction: a call that fails (a node lost, a script stopped) does
        not undo those that succeeded. So the records go last: first the index entries and log entries on every
        node, then, once all of them are stored, the records. A stored record is thus never without its index
        entries and its log entry, and a write that failed part way is one whose record is not (or not yet in its
        new form) stored: sent again, it is not UNCHANGED and writes everything again (index entries are put by
        key, idempotently; a log entry may be sequenced twice, the attempt and the retry). Never the reverse,
        the record stored and its subject's entry missing, which a retry answered UNCHANGED and checks allowed.
        Before anything, such a write claims its records on their nodes (lua/claim.lua, compare-and-set): another
        write made of the same record is then refused (StaleWrite) before it writes anywhere, where after its
        entries on the other nodes it would leave them beside a record that does not stand for them."""
        refs = await self.store_texts(t for s in log for t in codec.registry_texts(s.entry)) if log else {}
        encoded = [s.entry.encode() for s in log]
        # One write's entry is signed on its own; a write of many (an import's chunk) is signed as chunks only: the
        # chunk's signature covers each of its entries (its SHA-256, in order), so theirs would add an Ed25519
        # signature and 92 bytes per restriction and prove nothing more.
        sign = self._sign if len(log) == 1 else lambda _: ""
        packed = [codec.pack_registry(s.entry, refs, sign(e)) for s, e in zip(log, encoded, strict=True)]
        if not records and not entries and not packed:
            return 0
        await self._slots_known()
        keys = [r[0] for r in records] + [e[0] for e in entries] + [self._keys.log(s.bucket) for s in log]
        groups = self._by_node(keys)
        n_records, n_entries = len(records), len(records) + len(entries)

        # On Cluster every record's claim key goes with it: a write of one call must not write past another's claim.
        on_cluster = isinstance(self._redis, RedisCluster)
        claims = [self._keys.record_claim(key, field) if on_cluster else "" for key, field, _, _ in records]

        def call(node: Any, positions: list[int], token: str = "") -> Any:
            mine = [(*records[i], claims[i]) for i in positions if i < n_records]
            ops = [entries[i - n_records] for i in positions if n_records <= i < n_entries]
            logged = [i - n_entries for i in positions if i >= n_entries]
            singles: list[str] = []
            batches: list[Any] = []
            if len(log) == 1:
                for i in logged:
                    s = log[i]
                    singles += (keys[n_entries + i], self._keys.registry_history(s.bucket), s.target, packed[i])
            else:
                for start in range(0, len(logged), BATCH_ENTRIES):
                    part = logged[start : start + BATCH_ENTRIES]
                    chunk = self._sign_chunk([encoded[i] for i in part])
                    batches += (keys[n_entries + part[0]], codec.pack_registry_batch([packed[i] for i in part], chunk),
                                len(part))  # fmt: skip
                    home = log[part[0]].bucket  # the bucket whose stream holds the batch
                    for index, i in enumerate(part):
                        s = log[i]
                        batches += (self._keys.registry_history(s.bucket), s.target, f"/{index}/{home}")
            blob = msgpack.packb(
                [[v for r in mine for v in r], [v for e in ops for v in e], singles, batches, token, CLAIM_CEILING_MS],
                use_bin_type=False,
            )
            return self._written(self._eval("write", [keys[positions[0]]], [blob], node))

        if len(groups) == 1:
            return int(await call(*groups[0]))
        last = [(node, ps) for node, positions in groups if (ps := [i for i in positions if i < n_records])]
        token = secrets.token_hex(8)
        claimed = [(*r[:2], r[3], c) for r, c in zip(records, claims, strict=True)]
        try:
            await self._claim(last, claimed, token)
            first = [(node, [i for i in positions if i >= n_records]) for node, positions in groups]
            changed = sum(int(n) for n in await asyncio.gather(*(call(node, ps) for node, ps in first if ps)))
            await asyncio.gather(*(call(node, ps, token) for node, ps in last))
        except BaseException:
            # Refused, cut off part way (a node lost, UNAVAILABLE) or cancelled: the write sent again must find its
            # records unclaimed. Every claim of this write's token goes, those whose answer was lost too; shielded
            # from a second cancellation.
            await asyncio.shield(self._release(last, claimed, token))
            raise
        return changed

    def _claim_call(
        self, mode: str, node: Any, positions: list[int], records: Sequence[tuple[str, str, bytes, str]], token: str
    ) -> Awaitable[Any]:
        args = [v for i in positions for v in records[i]]
        return self._eval(
            "claim", [records[positions[0]][0]], [mode, token, self._claim_ms, CLAIM_CEILING_MS, *args], node
        )

    async def _claim(
        self, groups: Sequence[tuple[Any, list[int]]], records: Sequence[tuple[str, str, bytes, str]], token: str
    ) -> None:
        """Claims `records` (hash key, field, the bytes replaced, claim key) on each node in `groups` (lua/claim.lua);
        where one node refuses, raises StaleWrite (or what that node said), the caller releasing the others."""
        answers = await asyncio.gather(
            *(self._written(self._claim_call("claim", *g, records, token)) for g in groups), return_exceptions=True
        )
        refused = [a for a in answers if isinstance(a, BaseException)]
        if refused:
            raise next((e for e in refused if not isinstance(e, StaleWrite)), refused[0])

    async def _release(
        self, groups: Sequence[tuple[Any, list[int]]], records: Sequence[tuple[str, str, bytes, str]], token: str
    ) -> None:
        """Drops this write's claims where they are still its own; one that cannot be dropped (its node does not
        answer) lapses (claim_ms), the record's other writes refused (ABORTED) until then."""
        await asyncio.gather(*(self._claim_call("release", *g, records, token) for g in groups), return_exceptions=True)

    @staticmethod
    async def _written(call: Awaitable[Any]) -> Any:
        """The `write` script's answer; StaleWrite where it found a record other than the one a write replaces."""
        try:
            return await call
        except ResponseError as error:
            if str(error).startswith(_STALE):
                field = str(error)[len(_STALE) :]
                raise StaleWrite(f"restriction or exemption {field} changed since it was read") from error
            raise

    async def stored_records(self) -> AsyncIterator[Restriction | Exemption]:
        """Every restriction and permit held (app/ports.py: StoredRecords), hash by hash, for `debar log verify`."""
        for pattern, exemptions in (
            (self._keys.restrictions_pattern(), False),
            (self._keys.exemptions_pattern(), True),
        ):
            async for key in self._redis.scan_iter(match=pattern, count=1000):
                held: Any = await self._redis.hgetall(key)
                if exemptions:
                    for xid, raw in held.items():
                        yield codec.decode_exemption(_str(xid), _bytes(raw))
                    continue
                texts = await self.resolve_texts(
                    ref for raw in held.values() for ref in codec.restriction_text_refs(raw)
                )
                for rid, raw in held.items():
                    yield codec.decode_restriction(_str(rid), _bytes(raw), texts, self._catalogue)

    @unavailable_on_redis_error
    async def get_exemption(self, subject: SubjectRef, exemption_id: str) -> Exemption | None:
        raw = await self._redis.hget(self._keys.exemptions(subject.bucket), exemption_id)
        return codec.decode_exemption(exemption_id, _bytes(raw)) if raw else None

    @unavailable_on_redis_error
    async def put_exemption(self, exemption: Exemption) -> None:
        await self._write(
            "HSET", self._keys.exemptions(exemption.subject.bucket), exemption.id, codec.encode_exemption(exemption)
        )


def claim_life_ms(redis_timeout_s: float, replica_wait_ms: int) -> int:
    """A claim outlives what the write holding it may take without failing: its two calls after the claim, each up
    to the Redis timeout, once retried, and each its WAIT for replicas; so that a slow write is not refused at its
    record for a claim that lapsed (and logged twice). At least CLAIM_MS, at most CLAIM_CEILING_MS."""
    return min(CLAIM_CEILING_MS, max(CLAIM_MS, int(2 * 2 * redis_timeout_s * 1000) + 2 * replica_wait_ms + 5_000))


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
