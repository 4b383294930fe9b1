"""The sequencing streams as the log integrator reads them (app/ports.py: SequencedLog): each Redis stream record
turned into the canonical bytes of its entries (domain/log_entries.py). The streams are written by the scripts that
make each change (lua/decide.lua and replay.lua for decisions, write.lua for registry writes, objection.lua for
objection steps), in the same call; this adapter only reads them.

Decision records hold their decisions compactly (the check script's fields, texts as refs); their entries are
built here, deterministically: the same record always gives the same bytes, and a changed field, text or order
gives other bytes (and another leaf hash). Registry, objection and rekey records carry their entry bytes as they
are (field `e`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis

from debar.common.circuit import CircuitBreaker
from debar.common.errors import InvalidField
from debar.sanction.adapters import codec
from debar.sanction.adapters.keys import Keys, ObjectionKeys, hash_tag
from debar.sanction.adapters.redis_errors import unavailable_on_redis_error
from debar.sanction.app.ports import Archive, SequencedRecord
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decision_seals import SealedDecisions
from debar.sanction.domain.decisions import parse_decision_id
from debar.sanction.domain.entries import decode_entry, split_entries, text_refs_of
from debar.sanction.domain.log_entries import (
    DecisionEncoder,
    LoggedExemption,
    LoggedGround,
    ObjectionEntry,
    unreadable_entry,
)
from debar.sanction.domain.log_records import (
    DECISION_FIELDS,
    DECISION_FS,
    DECISION_SEP,
    LogEntry,
    holds_registry_write,
    spool_ids,
)
from debar.sanction.domain.model import IndexEntry, Role

PIPELINE = 512  # streams read per pipelined round trip (read_after_many)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


_UTF8, _RAW = "utf-8", "surrogateescape"


def _pairs_of(fields: Mapping[str, str]) -> tuple[tuple[bytes, bytes], ...]:
    """An archived record's fields as Redis held them (the archive keeps them as text, in order)."""
    return tuple((k.encode(_UTF8, _RAW), v.encode(_UTF8, _RAW)) for k, v in fields.items())


def _utf8_or_none(fields: dict[str, str]) -> dict[str, str] | None:
    """An archived record's fields, None when they held bytes that are not UTF-8 (as `_records` finds them)."""
    try:
        for k, v in fields.items():
            k.encode(), v.encode()
    except UnicodeEncodeError:
        return None
    return fields


_Raw = tuple[str, dict[str, str] | None, tuple[tuple[bytes, bytes], ...]]  # id, fields as text (None: not UTF-8), raw


def _ground(entry: IndexEntry) -> LoggedGround:
    return LoggedGround(
        restriction_id=entry.id, role=(entry.role or Role.DEBTOR).name, effective_from=entry.effective_from,
        effective_until=entry.effective_until, source=entry.source, via=entry.via, legal_basis=entry.legal_basis,
        authority=entry.authority, case_number=entry.case_number,
    )  # fmt: skip


def _exemption(entry: IndexEntry) -> LoggedExemption:
    return LoggedExemption(entry.id, entry.effective_from, entry.effective_until, entry.authority)


class RedisSequencedLog:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        ids: DecisionIds,
        objection_keys: ObjectionKeys | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """`ids`: the external decision ids, which entries name and `locate` takes."""
        self._redis = client
        self._breaker = breaker or CircuitBreaker()
        self._keys = keys
        self._objection_keys = objection_keys or ObjectionKeys(keys.prefix)
        self._ids = ids
        self._texts: dict[str, str] = {}
        self._encoder = DecisionEncoder()
        self._packed: tuple[dict[str, str], dict[str, str]] = ({}, {})  # packed exemption / grounds -> entry text

    # -- the streams ---------------------------------------------------------------------------------------

    def fixed_streams(self) -> list[str]:
        """The streams that are not per bucket."""
        return [self._objection_keys.log, self._keys.operations_log]

    @unavailable_on_redis_error
    async def streams(self) -> list[str]:
        found: set[str] = set()
        async for key in self._redis.scan_iter(match=self._keys.log_pattern(), count=1000):
            found.add(_str(key))
        for key in self.fixed_streams():
            if await self._redis.exists(key):
                found.add(key)
        return sorted(found)

    @unavailable_on_redis_error
    async def read_after(self, stream: str, after: str, count: int) -> list[SequencedRecord]:
        start = "-" if not after else f"({after}"
        raw: Any = await self._redis.xrange(stream, start, "+", count=count)
        return await self._records(stream, raw)

    @unavailable_on_redis_error
    async def read_after_many(self, after: Mapping[str, str], count: int) -> dict[str, list[SequencedRecord]]:
        """One pipeline (per PIPELINE streams; per node on Redis Cluster) instead of a call per stream."""
        out: dict[str, list[SequencedRecord]] = {}
        streams = list(after)
        for start in range(0, len(streams), PIPELINE):
            chunk = streams[start : start + PIPELINE]
            async with self._redis.pipeline(transaction=False) as pipe:
                for stream in chunk:
                    pipe.xrange(stream, f"({after[stream]}" if after[stream] else "-", "+", count=count)
                found: Any = await pipe.execute()
            for stream, raw in zip(chunk, found, strict=True):
                out[stream] = await self._records(stream, raw) if raw else []
        return out

    @unavailable_on_redis_error
    async def read(self, stream: str, record_id: str) -> SequencedRecord | None:
        raw: Any = await self._redis.xrange(stream, record_id, record_id)
        records = await self._records(stream, raw)
        return records[0] if records else None

    @unavailable_on_redis_error
    async def locate(self, decision_id: str) -> tuple[str, str, int] | None:
        try:
            located = self._ids.locate(decision_id)
        except InvalidField:
            return None
        if located is None:
            return None
        address = located.address
        if address is None and located.spooled_bucket is not None:  # a fail-open decision: where its replay put it
            replayed: Any = await self._redis.hget(self._keys.spooled_ids(located.spooled_bucket), decision_id)
            address = parse_decision_id(_str(replayed)) if replayed else None
        if address is None:
            return None
        stream_id, index = address.stream_id, address.index
        stream = self._keys.log(address.bucket)
        raw: Any = await self._redis.xrange(stream, stream_id, stream_id)
        if not raw:
            return None
        fields = {_str(k): _str(v) for k, v in raw[0][1].items()}
        if holds_registry_write(fields) or index >= len([d for d in fields.get("d", "").split(DECISION_SEP) if d]):
            return None
        return stream, stream_id, index

    @unavailable_on_redis_error
    async def archived_records(self, archive: Archive) -> list[SequencedRecord]:
        """The records `debar log archive` moved out of the buckets' streams, as `read_after` gave them before
        (texts are never removed from Redis, so their entries come out the same), for `debar log verify
        --archive`."""
        out: list[SequencedRecord] = []
        for bucket in archive.buckets():
            records = [(r.stream_id, _utf8_or_none(r.fields), _pairs_of(r.fields)) for r in archive.read(bucket)]
            out += await self._entries_of(self._keys.log(bucket), records)
        return out

    # -- records into entries -------------------------------------------------------------------------------

    async def _records(self, stream: str, raw: Sequence[Any]) -> list[SequencedRecord]:
        decoded: list[_Raw] = []
        for sid, fields in raw:
            pairs = tuple((_bytes(k), _bytes(v)) for k, v in fields.items())
            try:
                text: dict[str, str] | None = {k.decode(): v.decode() for k, v in pairs}
            except UnicodeDecodeError:
                text = None
            decoded.append((_str(sid), text, pairs))
        return await self._entries_of(stream, decoded)

    async def _entries_of(self, stream: str, decoded: Sequence[_Raw]) -> list[SequencedRecord]:
        """Each record's entries; a record that is not what any writer of its stream writes (an insider's XADD, a
        chunk cut short: nothing the service writes) is one opaque entry, its raw fields
        (log_entries.unreadable_entry), marked `unreadable`: the integrator commits to it and goes on, and `debar
        log verify` names it, where failing on it stopped integration for ever."""
        fixed = stream in (self._objection_keys.log, self._keys.operations_log)
        bucket = "" if fixed else hash_tag(stream)
        # Each decision's fields, split once; the texts of grounds and exemptions not met before are resolved
        # (in one call) before any entry is built.
        split: dict[str, list[list[str]]] = {}
        refs: list[str] = []
        if not fixed:
            for sid, f, _ in decoded:
                if f is None:
                    continue
                try:
                    refs += self._refs_of(sid, f, split)
                except Exception:  # the record is built below, and found unreadable there
                    continue
            await self._resolve(refs)
        out: list[SequencedRecord] = []
        for sid, f, pairs in decoded:
            try:
                if f is None:
                    raise ValueError("a field or value that is not UTF-8")
                out.append(self._record(stream, bucket, sid, f, split))
            except Exception as error:  # whatever it is, no writer of this stream wrote it
                out.append(
                    SequencedRecord(
                        stream, sid, (unreadable_entry(pairs),), unreadable=f"{type(error).__name__}: {error}"[:300]
                    )
                )
        return out

    def _refs_of(self, sid: str, f: dict[str, str], split: dict[str, list[list[str]]]) -> list[str]:
        if "r" in f:
            return codec.registry_text_refs(f["r"])
        if "rs" in f:
            return codec.registry_batch_text_refs(f["rs"])
        fields = split[sid] = [d.split(DECISION_FS) for d in f.get("d", "").split(DECISION_SEP) if d]
        refs: list[str] = []
        grounds_kept, exemptions_kept, size = self._packed[True], self._packed[False], len(DECISION_FIELDS)
        for d in fields:  # most decisions are allows of nothing: no grounds, no exemption, nothing to look at
            if len(d) == size and (d[7] or d[8]):
                for packed, kept in ((d[7], grounds_kept), (d[8], exemptions_kept)):
                    if packed and packed not in kept:
                        refs += [ref for e in split_entries(packed) for ref in text_refs_of(e)]
        return refs

    def _record(
        self, stream: str, bucket: str, sid: str, f: dict[str, str], split: dict[str, list[list[str]]]
    ) -> SequencedRecord:
        if stream == self._objection_keys.log:
            return SequencedRecord(stream, sid, (self._objection_entry(f),), (f.get("s", ""),))
        if stream == self._keys.operations_log:
            return SequencedRecord(stream, sid, (f["e"].encode(),), (f.get("s", ""),))
        if holds_registry_write(f) and "d" in f:
            # No writer puts decisions beside a registry write; read as the write alone, a `d` added to an
            # integrated registry record (which changes none of its entries) would pass unsealed, and be shown.
            raise ValueError("a registry write's record carrying decisions (field d)")
        if "rs" in f:
            return SequencedRecord(
                stream, sid, self._registry_entries(f), self._registry_signatures(f),
                chunk_signature=codec.registry_batch_signature(f["rs"]),
            )  # fmt: skip
        if "r" in f:
            return SequencedRecord(stream, sid, self._registry_entries(f), self._registry_signatures(f))
        decisions = split[sid] if sid in split else [d.split(DECISION_FS) for d in f["d"].split(DECISION_SEP) if d]
        if not decisions:
            raise ValueError("no decision, registry write or entry in it")
        questions = tuple((d[0], d[1], d[2], d[3], d[4], d[6]) for d in decisions if len(d) > 6)
        return SequencedRecord(
            stream, sid, self._decision_entries(bucket, sid, f, decisions),
            sealed=SealedDecisions(bucket, questions, f.get("q", "")),
        )  # fmt: skip

    def _registry_entries(self, f: dict[str, str]) -> tuple[bytes, ...]:
        """One registry write's entry (field `r`), or a batch's, in order (field `rs`: an import's chunk)."""
        if "r" in f:
            return (codec.unpack_registry(f["r"], self._texts).encode(),)
        return tuple(e.encode() for e in codec.unpack_registry_batch(f["rs"], self._texts))

    @staticmethod
    def _registry_signatures(f: dict[str, str]) -> tuple[str, ...]:
        if "r" in f:
            return (codec.registry_signature(f["r"]),)
        return tuple(codec.registry_batch_signatures(f["rs"]))

    def _objection_entry(self, f: dict[str, str]) -> bytes:
        if "e" in f:
            return f["e"].encode()
        return ObjectionEntry(
            at=int(f.get("at") or 0), actor=f.get("a", ""), objection_id=f.get("o", ""), decision_id=f.get("d", ""),
            from_state=f.get("f", ""), to_state=f.get("t", ""), reason=f.get("r", ""),
        ).encode()  # fmt: skip

    def _decision_entries(
        self, bucket: str, stream_id: str, f: dict[str, str], decisions: Sequence[Sequence[str]]
    ) -> tuple[bytes, ...]:
        """The entries of a record's decisions (`decisions`: each one's fields, split), built by DecisionEncoder:
        the same bytes as DecisionEntry(...).encode(), a few microseconds each."""
        at_ms = int(stream_id.split("-")[0])
        spooled = spool_ids(LogEntry(stream_id, f))
        ids = self._ids.of_record(stream_id, bucket, len(decisions))
        part = DecisionEncoder.record_part(at_ms, f.get("cat", ""))
        encode, packed_value = self._encoder.encode, self._packed_value
        out = []
        for i, d in enumerate(decisions):
            if len(d) != len(DECISION_FIELDS):
                raise ValueError(f"{stream_id}: a decision of {len(d)} fields, not {len(DECISION_FIELDS)}")
            caller, revision, id_type, subject, measure, outcome, at, grounds, exemption = d
            caller, _, on_behalf_of = caller.partition("/")
            out.append(
                encode(
                    ids[i], part, caller, on_behalf_of, int(revision or 0), id_type, subject, measure, int(at or 0),
                    outcome, packed_value(grounds, True) if grounds else "",
                    packed_value(exemption, False) if exemption else "", spooled[i] if i < len(spooled) else "",
                )
            )  # fmt: skip
        return tuple(out)

    def _packed_value(self, packed: str, grounds: bool) -> str:
        """A decision's packed grounds as their entry lines, or its packed exemption as its entry value; kept
        once every text it names is known (texts never change: a ref names one text for ever)."""
        kept = self._packed[grounds]
        value = kept.get(packed)
        if value is not None:
            return value
        if grounds:
            entries = [decode_entry(e, self._texts) for e in split_entries(packed)]
            value = "".join(DecisionEncoder.ground_line(_ground(e)) for e in entries)
        else:
            entries = [decode_entry(packed, self._texts)]
            value = _exemption(entries[0]).value()
        if all(ref in self._texts for e in split_entries(packed) for ref in text_refs_of(e) if ref):
            if len(kept) >= 20_000:
                kept.clear()
            kept[packed] = value
        return value

    async def _resolve(self, refs: Sequence[str]) -> None:
        wanted = [r for r in set(refs) if r and r not in self._texts]
        if not wanted:
            return
        values: Any = await self._redis.hmget(self._keys.texts, wanted)
        for ref, value in zip(wanted, values, strict=True):
            if value is not None:
                self._texts[ref] = _str(value)
