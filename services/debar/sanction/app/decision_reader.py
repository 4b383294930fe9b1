"""Reads decisions back as they were made: the grounds captured at decision time, never recomputed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from debar.common.errors import InvalidField, NotFound
from debar.common.identifiers import IdKind, key_id_of
from debar.sanction.app.ports import DecisionLog, LoggedTexts
from debar.sanction.app.unavailable import unavailable_as
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.decisions import DecisionAddress, parse_decision_id
from debar.sanction.domain.entries import decode_entry, split_entries, text_refs_of
from debar.sanction.domain.log_records import LogEntry, decisions_of, spool_ids
from debar.sanction.domain.model import IndexEntry, Outcome
from debar.sanction.domain.subjects import SubjectResolver

MAX_PAGE = 100
MAX_TOKEN_DIGITS = 9


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    decision_id: str
    decided_at_ms: int
    at: int
    caller: str
    id_kind: IdKind
    subject_pseudonym: str
    measure: str
    outcome: Outcome | None  # None: the entry holds no outcome this version knows
    grounds: tuple[IndexEntry, ...]
    exemption: IndexEntry | None
    revision: int
    catalogue_version: str
    spooled: bool
    bucket: str = ""  # the bucket of the stream that holds it (an objection is stored beside it)
    on_behalf_of: str = ""  # the platform a delegated caller asked for
    spool_id: str = ""  # a replayed fail-open decision's spool id (the id its caller was given), as its entry says


def _stream_order(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


class DecisionReader:
    def __init__(self, log: DecisionLog, store: LoggedTexts, resolver: SubjectResolver, ids: DecisionIds) -> None:
        """`ids`: the log keeps decisions by location; callers know them only by external id."""
        self._ids = ids
        self._log = log
        self._store = store
        self._resolver = resolver

    async def _decode(self, address: DecisionAddress, record: LogEntry) -> LoggedDecision | None:
        decisions = decisions_of(record)
        if address.index >= len(decisions):
            return None
        d = decisions[address.index]
        raws = split_entries(d["grounds"])
        exemption_raw = d["exemption"]
        refs = [r for raw in [*raws, exemption_raw] if raw for r in text_refs_of(raw)]
        texts = await self._store.resolve_texts(refs)
        caller, _, on_behalf_of = d["caller"].partition("/")
        spooled = spool_ids(record)
        spool_id = spooled[address.index] if address.index < len(spooled) else ""  # as its entry says
        return LoggedDecision(
            decision_id=self._ids.of(address),
            decided_at_ms=int(record.stream_id.split("-")[0]),
            at=int(d["at"] or 0),
            caller=caller,
            on_behalf_of=on_behalf_of,
            bucket=address.bucket,
            id_kind=IdKind(d["id_type"]),
            subject_pseudonym=d["subject"],
            measure=d["measure"],
            outcome=Outcome.__members__.get(d["outcome"]),
            grounds=tuple(decode_entry(raw, texts) for raw in raws),
            exemption=decode_entry(exemption_raw, texts) if exemption_raw else None,
            revision=int(d["revision"] or 0),
            catalogue_version=record.fields.get("cat", ""),
            spooled=bool(spool_id),
            spool_id=spool_id,
        )

    async def _find(self, address: DecisionAddress) -> LoggedDecision | None:
        record = await self._log.get(address.bucket, address.stream_id)
        return await self._decode(address, record) if record else None

    @unavailable_as("the decision log")
    async def get(self, value: str) -> LoggedDecision:
        value = value.strip()
        located = self._ids.locate(value)  # InvalidField unless shaped like an id
        if located is None:  # guessed, changed, or made with another key: the same answer as an unknown one
            raise NotFound(f"no decision {value}")
        address = located.address
        if address is None:
            assert located.spooled_bucket is not None
            replayed = await self._store.replayed_decision_id(located.spooled_bucket, value)
            if replayed is None:
                raise NotFound(f"no decision {value} in the log (one made while it was unreachable is not in it yet)")
            address = parse_decision_id(replayed)
        found = await self._find(address)
        if found is not None and located.address is None and found.spool_id != value:
            # The map from spool ids to where their replay put them is in Redis, outside the log: pointed at
            # another decision, it would answer that one under this id.
            raise NotFound(f"no decision {value}")
        if found is None:
            archived_to = await self._log.archived_to(address.bucket)
            if archived_to and _stream_order(address.stream_id) <= _stream_order(archived_to):
                raise NotFound(f"decision {value} is past its retention and archived; the operator can read it")
            raise NotFound(f"no decision {value}")
        return found

    @unavailable_as("the decision log")
    async def for_subject(
        self, kind: IdKind | None, raw_id: str, page_size: int, page_token: str
    ) -> tuple[list[LoggedDecision], str]:
        subject_id = self._resolver.validate(kind, raw_id, "subject")
        subject = self._resolver.ref(subject_id)
        size = min(page_size or 20, MAX_PAGE)
        # A token this service gave is a small decimal offset; int() alone would also take "1_0", " 7", other
        # scripts' digits and offsets past what Redis takes as a list index.
        if page_token and not (len(page_token) <= MAX_TOKEN_DIGITS and page_token.isascii() and page_token.isdigit()):
            raise InvalidField("page_token", "is not a token this service gave")
        offset = int(page_token or "0")
        pseudonyms = self._resolver.all_pseudonyms(subject_id)
        ids = await self._log.ids_for_subject(subject.bucket, pseudonyms, offset, size + 1)
        found = [await self._find(parse_decision_id(i)) for i in ids[:size]]
        key_ids = {key_id_of(p) for p in pseudonyms}
        return [d for d in found if d and _about(d, pseudonyms, key_ids)], str(offset + size) if len(ids) > size else ""


def _about(decision: LoggedDecision, pseudonyms: Sequence[str], key_ids: set[str]) -> bool:
    """Whether a decision on the subject's list is about the subject: a list holds locations, and one put there in
    Redis (another person's refusal LPUSHed onto it) would be shown as theirs. `pseudonyms`: the subject's under
    every key of the ring (`key_ids`, theirs); a decision logged under a key no longer in it cannot be told apart,
    and is shown."""
    logged = decision.subject_pseudonym
    return logged in pseudonyms or key_id_of(logged) not in key_ids
