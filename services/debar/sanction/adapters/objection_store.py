"""Objections in Redis, and the log of their transitions (a sequencing stream). Every key shares the log's hash tag (see
ObjectionKeys in keys.py), so that one script call writes a step's record, index, dispute counts and log entry
atomically."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from debar.common.circuit import CircuitBreaker
from debar.common.identifiers import IdKind
from debar.sanction.adapters.keys import Keys, ObjectionKeys
from debar.sanction.adapters.redis_errors import unavailable_on_redis_error
from debar.sanction.adapters.replication import Replication
from debar.sanction.adapters.scripts import Scripts
from debar.sanction.adapters.sealing import Sealer, Unreadable
from debar.sanction.app.ports import Written
from debar.sanction.domain.catalogue import ObjectionRules
from debar.sanction.domain.log_entries import ObjectionEntry
from debar.sanction.domain.model import SubjectRef
from debar.sanction.domain.objections import (
    SUBJECT_ACTOR,
    Listed,
    ListingCursor,
    Objection,
    ObjectionState,
    Transition,
)
from debar.tlog.entry_signature import sign_entry
from debar.tlog.note import Signer

# -- records ------------------------------------------------------------------------------------------------
# A record is JSON. What the person wrote (the statement, the contact, and the reason of each of their own steps:
# a reconsideration's statement) is sealed (adapters/sealing.py), and the record as a whole carries a seal too
# (field "seal": the SHA-256 of every other field, sealed in the record's place "record"): its state, history,
# restrictions and deadlines are what the service wrote. Were they plain JSON, an insider with Redis write access
# and no key could rewrite a filed objection as "awaiting_confirmation", overturned by a reviewer who never saw it,
# and one reviewer's ConfirmResolution would lift the court's restriction (the log's entries all genuine). A record
# without a seal, or whose seal does not match, does not open (Unreadable, fail closed), nothing is done with it.
RECORD_SEAL_FIELD = "record"


def _person_wrote(step: Transition) -> bool:
    return step.actor == SUBJECT_ACTOR


def encode(o: Objection, sealer: Sealer | None) -> str:
    """The stored form; `sealer` None: the person's words in clear (only to compare records, never stored)."""

    def sealed(text: str, field: str) -> str:
        return sealer.seal(text, o.id, field) if sealer else text

    body: dict[str, Any] = {
        "id": o.id,
        "decision": o.decision_id,
        "subject": [o.subject.kind.value, o.subject.pseudonym, o.subject.bucket],
        "restrictions": list(o.restriction_ids),
        "source": o.source,
        "rules": [
            o.rules.review_days, o.rules.correction_working_days,
            o.rules.reconsideration_request_days, o.rules.reconsideration_decision_days,
        ],
        "state": o.state.value,
        "sealed": sealer is not None,
        "statement": sealed(o.statement, "statement"),
        "contact": sealed(o.contact, "contact"),
        "filed_at": o.filed_at,
        "review_due": o.review_due,
        "correction_due": o.correction_due,
        "reconsideration_request_due": o.reconsideration_request_due,
        "corrected_at": o.corrected_at,
        "history": [
            [
                t.from_state.value if t.from_state else "", t.to_state.value, t.actor,
                sealed(t.reason, f"history[{i}].reason") if _person_wrote(t) else t.reason, t.at,
            ]
            for i, t in enumerate(o.history)
        ],
    }  # fmt: skip
    if sealer is not None:
        body["seal"] = sealer.seal(_digest(body), o.id, RECORD_SEAL_FIELD)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def _digest(body: dict[str, Any]) -> str:
    """What a record's seal holds: the SHA-256 of its fields (but the seal), canonically encoded."""
    fields = {k: v for k, v in body.items() if k != "seal"}
    return hashlib.sha256(
        json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def _check_seal(d: dict[str, Any], sealer: Sealer) -> None:
    oid = str(d.get("id", ""))[:40]
    seal = d.get("seal")
    if not d.get("sealed") or not isinstance(seal, str):
        raise Unreadable(f"objection {oid} carries no seal: written into Redis behind the service's back (altered)")
    if sealer.open(seal, oid, RECORD_SEAL_FIELD) != _digest(d):
        raise Unreadable(f"objection {oid} does not match its seal: altered in Redis behind the service's back")


def decode(raw: bytes | str, sealer: Sealer) -> Objection:
    """Raises Unreadable when a sealed field does not open (another key, an altered record): fail closed."""
    d = json.loads(raw)
    _check_seal(d, sealer)
    kind, pseudonym, bucket = d["subject"]
    review, correction, request, decision = d["rules"]
    oid = d["id"]

    def opened(text: str, field: str) -> str:
        return sealer.open(text, oid, field) if d.get("sealed") else text

    return Objection(
        id=oid,
        decision_id=d["decision"],
        subject=SubjectRef(IdKind(kind), pseudonym, bucket),
        restriction_ids=tuple(d["restrictions"]),
        source=d["source"],
        rules=ObjectionRules("", review, correction, request, decision),
        state=ObjectionState(d["state"]),
        statement=opened(d["statement"], "statement"),
        contact=opened(d["contact"], "contact"),
        filed_at=d["filed_at"],
        review_due=d["review_due"],
        correction_due=d["correction_due"],
        reconsideration_request_due=d["reconsideration_request_due"],
        corrected_at=d["corrected_at"],
        history=tuple(
            Transition(
                ObjectionState(f) if f else None, ObjectionState(t), actor,
                opened(reason, f"history[{i}].reason") if actor == SUBJECT_ACTOR else reason, at,
            )
            for i, (f, t, actor, reason, at) in enumerate(d["history"])
        ),
    )  # fmt: skip


def logged_reason(step: Transition) -> str:
    """A step's reason as the transition log keeps it. The log is never sealed (its entries are leaves of the
    Merkle log, recomputed by anyone who verifies it), so the person's words never go into it: a reconsideration's
    statement is logged as its SHA-256 (which proves what was asked, when the record is shown, and reveals nothing
    of it)."""
    if not _person_wrote(step) or step.from_state is None:  # the filing's reason is a fixed phrase
        return step.reason
    digest = hashlib.sha256(step.reason.encode()).hexdigest()
    return f"reconsideration requested (statement sha256 {digest})"


class RedisObjectionStore:
    def __init__(
        self, client: Redis, keys: Keys, sealer: Sealer, breaker: CircuitBreaker | None = None,
        replication: Replication | None = None, entry_signer: Signer | None = None,
    ) -> None:  # fmt: skip
        """`entry_signer`: the log's key, which signs each step's log entry (tlog/entry_signature.py)."""
        self._redis = client
        self._breaker = breaker or CircuitBreaker()
        self._entry_signer = entry_signer
        self._keys = ObjectionKeys(keys.prefix)
        self._scripts = Scripts(client, ("objection",), replication)
        self._sealer = sealer

    def _decode(self, raw: bytes | str, oid: str = "", decision: str = "") -> Objection:
        """The record found in the place of objection `oid` (or of `decision`'s objection): its seal binds it to the
        id inside it, so a record copied into another objection's place (HSET) would open there, and a step asked
        for one objection would be taken on the other: refused (Unreadable, fail closed)."""
        found = decode(raw, self._sealer)
        if (oid and found.id != oid) or (decision and found.decision_id != decision):
            place = f"objection {oid[:40]}" if oid else f"the objection of decision {decision[:60]}"
            raise Unreadable(
                f"{place} holds the record of objection {found.id[:40]}: moved in Redis behind the service's back"
            )
        return found

    async def _eval(self, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self._scripts.run("objection", keys, args)

    async def _stored_form(self, old: Objection) -> bytes | Written:
        """The record as stored, if it still is `old`: the script compares the stored bytes, and sealing is
        randomised (a fresh nonce each time), so `old` sealed again would never match. Otherwise what the script
        would answer: the record as it is now, or none."""
        raw: Any = await self._redis.hget(self._keys.records(old.id), old.id)
        if raw is None:
            return Written(False, None)
        current = self._decode(raw, old.id)
        if encode(current, None) != encode(old, None):
            return Written(False, current)
        return bytes(raw)

    async def _write(self, mode: str, new: Objection, old: Objection | None, dispute_delta: int) -> Written:
        k = self._keys
        step = new.history[-1]
        from_state = old.state if old else new.state
        expected: bytes | str = ""
        if old is not None:
            stored = await self._stored_form(old)
            if isinstance(stored, Written):
                return stored
            expected = stored
        keys = [
            k.records(new.id), k.by_decision, k.state(from_state), k.state(new.state), k.disputes, k.log,
        ]  # fmt: skip
        from_value, reason = step.from_state.value if step.from_state else "", logged_reason(step)
        # The entry the sequenced log will build from the stream record's fields (adapters/sequenced_log.py).
        entry = ObjectionEntry(
            at=int(step.at), actor=step.actor, objection_id=new.id, decision_id=new.decision_id,
            from_state=from_value, to_state=step.to_state.value, reason=reason,
        ).encode()  # fmt: skip
        signature = sign_entry(self._entry_signer, entry) if self._entry_signer is not None else ""
        args: list[Any] = [
            mode, new.id, new.decision_id, expected, encode(new, self._sealer), new.listing_order, dispute_delta,
            from_value, step.to_state.value, step.actor, reason, step.at, signature, *new.restriction_ids,
        ]  # fmt: skip
        raw = await self._eval(keys, args)
        status = int(raw[0])
        if status < 0:
            return Written(False, None)
        place = {"decision": new.decision_id} if mode == "file" else {"oid": new.id}
        found = self._decode(raw[1], **place) if raw[1] else None
        return Written(status == 1, found, tuple(r.decode() for r in raw[2:]))

    @unavailable_on_redis_error
    async def file(self, objection: Objection) -> Written:
        """Creates the objection unless its decision already has one (then returns that one, writing nothing)."""
        return await self._write("file", objection, None, 1)

    @unavailable_on_redis_error
    async def move(self, new: Objection, old: Objection) -> Written:
        """Stores a transition if the record is still `old`; opens or ends the disputes it stands for."""
        delta = 0 if new.is_open == old.is_open else (1 if new.is_open else -1)
        return await self._write("move", new, old, delta)

    @unavailable_on_redis_error
    async def update(self, new: Objection, old: Objection) -> Written:
        """Stores a change that is not a transition (no log entry) if the record is still `old`."""
        return await self._write("update", new, old, 0)

    @unavailable_on_redis_error
    async def get(self, objection_id: str) -> Objection | None:
        raw = await self._redis.hget(self._keys.records(objection_id), objection_id)
        return self._decode(raw, objection_id) if raw else None

    @unavailable_on_redis_error
    async def disputing(self, restriction_ids: Sequence[str]) -> list[int]:
        """How many open objections dispute each restriction."""
        if not restriction_ids:
            return []
        values = await self._redis.hmget(self._keys.disputes, list(restriction_ids))
        return [int(v or 0) for v in values]

    @unavailable_on_redis_error
    async def counted(self, state: ObjectionState, due_before: int | None) -> int:
        """How many objections are in `state`; only those due before `due_before` if given."""
        top = f"({due_before}" if due_before is not None else "+inf"
        return int(await self._redis.zcount(self._keys.state(state), "-inf", top))

    @unavailable_on_redis_error
    async def listed(
        self, states: Sequence[ObjectionState], due_before: int | None, limit: int, after: ListingCursor | None = None
    ) -> list[Listed]:
        """Objections in the given states in listing order (soonest deadline first), after the cursor if given;
        only those due before `due_before` if given."""
        ids: list[tuple[float, str]] = []
        top = f"({due_before}" if due_before is not None else "+inf"
        for state in states:
            key = self._keys.state(state)
            bottom = "-inf"
            if after is not None:
                bottom = f"({after.order}"
                if due_before is None or after.order < due_before:  # same order, later id: few (same second)
                    ties: Any = await self._redis.zrangebyscore(key, after.order, after.order, withscores=True)
                    ids += [(s, m.decode()) for m, s in ties if m.decode() > after.objection_id]
            found: Any = await self._redis.zrangebyscore(key, bottom, top, 0, limit, withscores=True)
            ids += [(score, member.decode()) for member, score in found]
        ids.sort()
        return [Listed(int(order), oid, await self.get(oid)) for order, oid in ids[:limit]]
