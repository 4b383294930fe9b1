"""The canonical bytes of a log entry: what a Merkle leaf hashes (leaf = SHA-256(0x00 || entry)), what a receipt
carries, and what anyone can decode back into the decision (or registry write, objection step, rekey run) it
records. Pure: no Redis, no gRPC. Format version 1 (README "Log entry format"):

    debar-log-entry/1 <kind>\\n
    <key>=<value>\\n            one line per field, in the kind's fixed order (FIELDS below)
    ...

UTF-8, LF line ends, every line ends with LF, nothing after the last one. Every field of the kind appears exactly
once, in order, except the repeatable ones (`ground` of a decision, `before`/`after`/`changed` parts of a registry
write), which appear zero or more times in their place. Values are escaped: `%` and `,` and every control
character (U+0000..U+001F, U+007F) are written as `%XX` (upper-case hex of the UTF-8 byte); nothing else is. A
compound value (a ground, an exemption) joins its parts with `,` (each part escaped). Decoding accepts only the
canonical form: a byte string that decodes re-encodes to the same bytes, so one record has exactly one entry."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

FORMAT = "debar-log-entry/1"


class EntryKind(StrEnum):
    DECISION = "decision"
    REGISTRY = "registry"
    OBJECTION = "objection"
    REKEY = "rekey"


class MalformedEntry(ValueError):
    """Bytes that are not a canonical version-1 log entry."""


# A stream record that no writer of its stream wrote and no reader can turn into entries (a garbage XADD, a chunk cut
# short) is still a leaf, so that the tree stays append-only and keeps the evidence: this line, then each of its
# fields as Redis held them, in order, as `<length>:<bytes>` name and value, each pair ending with LF. It is never a
# `debar-log-entry/1` entry: `debar log verify` names every leaf that starts with it.
UNREADABLE = b"debar-unreadable-record/1\n"


def unreadable_entry(fields: Sequence[tuple[bytes, bytes]]) -> bytes:
    return UNREADABLE + b"".join(b"%d:%s%d:%s\n" % (len(k), k, len(v), v) for k, v in fields)


# Each kind's fields in order; a trailing "*" marks a field that may repeat (zero or more lines in its place).
FIELDS: Mapping[EntryKind, tuple[str, ...]] = {
    EntryKind.DECISION: (
        "id",  # the external decision id (domain/decision_ids.py), as answered to the caller
        "at_ms",  # when it was decided (Redis time, epoch milliseconds)
        "catalogue",  # catalogue version
        "caller",  # the authenticated caller (a certificate CN or token subject)
        "on_behalf_of",  # the platform a domain service asked for (x-debar-on-behalf-of), else empty
        "revision",  # the data revision it was answered at (at least)
        "id_type",  # the subject's identifier type (RIC, USCC, ...)
        "subject",  # the subject's pseudonym
        "measure",  # the measure checked
        "checked_at",  # the time checked (epoch seconds)
        "outcome",  # ALLOW or DENY
        "ground*",  # restriction id, role, from, until, source, via, legal basis, authority, case number
        "exemption",  # exemption id, from, until, authority; empty when no permit turned a refusal into the allow
        "spooled",  # the spool id of a fail-open decision replayed into the log, else empty
    ),
    EntryKind.REGISTRY: (
        "at",  # epoch seconds
        "caller",  # the authenticated identity that wrote
        "on_behalf_of",
        "action",  # impose, lift, confirm_lift, grant_exemption, confirm_exemption, correct, dispute, undispute
        "target",  # the restriction id or exemption id
        "subject",  # the subject's pseudonym
        "document_number",  # the court's decision, where the action takes one
        "reason",
        "changed*",  # what changed: created, shortened, lengthened, measures_dropped, measures_added, ...
        "before*",  # the record's fields before (name:value), empty lines none: it did not exist
        "after*",  # the record's fields after
    ),
    EntryKind.OBJECTION: (
        "at",  # epoch seconds
        "actor",  # the authenticated identity that made the step
        "objection",  # the objection id
        "decision",  # the external decision id objected to
        "from",  # state before ("" for a filing)
        "to",  # state after
        "reason",
    ),
    EntryKind.REKEY: (  # a `debar rekey` run, logged when it ends
        "at",
        "caller",
        "key",  # the key id everything was moved to
        "index_fields",
        "records",
        "exemptions",
        "decision_lists",
        "raced",
    ),
}

_ESCAPED = re.compile("[%,\x00-\x1f\x7f]")
_ESCAPE = re.compile("%([0-9A-F]{2})")
_KEY = re.compile(r"[a-z_]+\Z")


def escape(value: str) -> str:
    return _ESCAPED.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), value)


def unescape(value: str) -> str:
    raw = _ESCAPE.sub(lambda m: chr(int(m[1], 16)), value)
    if escape(raw) != value:
        raise MalformedEntry(f"value {value[:40]!r} is not canonically escaped")
    return raw


def join_parts(parts: Iterable[str | int | None]) -> str:
    """A compound value: its parts escaped and joined by ','."""
    return ",".join(escape("" if p is None else str(p)) for p in parts)


def split_parts(value: str) -> list[str]:
    """The parts of a compound value (as decoded: parts still escaped are unescaped here)."""
    return [unescape(p) for p in value.split(",")]


@dataclass(frozen=True)
class Entry:
    """A decoded entry: its kind and its fields in order, as (key, value) pairs; values unescaped (a compound
    value's parts are joined with ',' and escaped individually: see `parts`)."""

    kind: EntryKind
    fields: tuple[tuple[str, str], ...]

    def get(self, key: str) -> str:
        for k, v in self.fields:
            if k == key:
                return v
        return ""

    def all(self, key: str) -> list[str]:
        return [v for k, v in self.fields if k == key]

    def as_dict(self) -> dict[str, str | list[str]]:
        out: dict[str, str | list[str]] = {}
        for name in FIELDS[self.kind]:
            key = name.rstrip("*")
            out[key] = self.all(key) if name.endswith("*") else self.get(key)
        return out


def _plain(value: str, compound: bool) -> str:
    return value if compound else escape(value)


# Fields whose values are compound (their parts already escaped by join_parts): written as they are.
COMPOUND = frozenset({"ground", "exemption"})


def encode(kind: EntryKind, values: Mapping[str, str | int | Sequence[str] | None]) -> bytes:
    """The canonical bytes of an entry of `kind`. `values` maps each field (without '*') to its value; a
    repeatable field to a sequence of values; a missing scalar is empty. Compound fields (COMPOUND) take
    values made by `join_parts`."""
    allowed = {name.rstrip("*") for name in FIELDS[kind]}
    unknown = set(values) - allowed
    if unknown:
        raise ValueError(f"fields {sorted(unknown)} are not fields of a {kind} entry")
    lines = [f"{FORMAT} {kind.value}"]
    for name in FIELDS[kind]:
        key = name.rstrip("*")
        value = values.get(key)
        if name.endswith("*"):
            if isinstance(value, (str, int)) or value is None:
                items = [] if value is None else [str(value)]
            else:
                items = [str(v) for v in value]
            lines += [f"{key}={_plain(v, key in COMPOUND)}" for v in items]
        else:
            if value is not None and not isinstance(value, (str, int)):
                raise ValueError(f"{key} takes one value")
            lines.append(f"{key}={_plain('' if value is None else str(value), key in COMPOUND)}")
    return ("\n".join(lines) + "\n").encode()


def decode(data: bytes) -> Entry:
    """The entry `data` holds; raises MalformedEntry unless it is canonical version-1 bytes."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as e:
        raise MalformedEntry("not UTF-8") from e
    if not text.endswith("\n"):
        raise MalformedEntry("does not end with a line feed")
    header, *lines = text[:-1].split("\n")
    prefix, _, kind_name = header.partition(" ")
    if prefix != FORMAT:
        raise MalformedEntry(f"not a {FORMAT} entry (header {header[:40]!r})")
    try:
        kind = EntryKind(kind_name)
    except ValueError:
        raise MalformedEntry(f"unknown kind {kind_name[:20]!r}") from None
    spec = FIELDS[kind]
    fields: list[tuple[str, str]] = []
    position = 0
    for line in lines:
        key, eq, value = line.partition("=")
        if not eq or not _KEY.match(key):
            raise MalformedEntry(f"line {line[:40]!r} is not key=value")
        while position < len(spec) and spec[position].rstrip("*") != key:
            if not spec[position].endswith("*"):
                raise MalformedEntry(f"field {spec[position]!r} missing or out of order (found {key!r})")
            position += 1
        if position == len(spec):
            raise MalformedEntry(f"field {key!r} unknown, repeated or out of order")
        if key in COMPOUND:
            split_parts(value)  # each part canonical
            fields.append((key, value))
        else:
            fields.append((key, unescape(value)))
        if not spec[position].endswith("*"):
            position += 1
    for rest in spec[position:]:
        if not rest.endswith("*"):
            raise MalformedEntry(f"field {rest!r} missing")
    entry = Entry(kind, tuple(fields))
    if encode_entry(entry) != data:
        raise MalformedEntry("not in canonical form")
    return entry


def encode_entry(entry: Entry) -> bytes:
    values: dict[str, str | list[str]] = {}
    for name in FIELDS[entry.kind]:
        key = name.rstrip("*")
        values[key] = entry.all(key) if name.endswith("*") else entry.get(key)
    return encode(entry.kind, values)


# -- decisions ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedGround:
    restriction_id: str
    role: str
    effective_from: int
    effective_until: int | None
    source: str
    via: str
    legal_basis: str
    authority: str
    case_number: str

    def value(self) -> str:
        return join_parts(
            (
                self.restriction_id, self.role, self.effective_from, self.effective_until, self.source, self.via,
                self.legal_basis, self.authority, self.case_number,
            )
        )  # fmt: skip

    @staticmethod
    def parse(value: str) -> LoggedGround:
        parts = split_parts(value)
        if len(parts) != 9:
            raise MalformedEntry("a ground has 9 parts")
        rid, role, start, end, source, via, basis, authority, case = parts
        return LoggedGround(rid, role, _int(start), _int(end) if end else None, source, via, basis, authority, case)


@dataclass(frozen=True)
class LoggedExemption:
    exemption_id: str
    effective_from: int
    effective_until: int | None
    authority: str

    def value(self) -> str:
        return join_parts((self.exemption_id, self.effective_from, self.effective_until, self.authority))

    @staticmethod
    def parse(value: str) -> LoggedExemption:
        parts = split_parts(value)
        if len(parts) != 4:
            raise MalformedEntry("an exemption has 4 parts")
        xid, start, end, authority = parts
        return LoggedExemption(xid, _int(start), _int(end) if end else None, authority)


def _int(text: str) -> int:
    if not re.fullmatch(r"-?(0|[1-9][0-9]*)", text):
        raise MalformedEntry(f"{text[:20]!r} is not an integer")
    return int(text)


@dataclass(frozen=True)
class DecisionEntry:
    decision_id: str
    at_ms: int
    catalogue_version: str
    caller: str
    on_behalf_of: str
    revision: int
    id_type: str
    subject: str
    measure: str
    checked_at: int
    outcome: str
    grounds: tuple[LoggedGround, ...] = ()
    exemption: LoggedExemption | None = None
    spooled: str = ""

    def encode(self) -> bytes:
        return encode(
            EntryKind.DECISION,
            {
                "id": self.decision_id, "at_ms": self.at_ms, "catalogue": self.catalogue_version,
                "caller": self.caller, "on_behalf_of": self.on_behalf_of, "revision": self.revision,
                "id_type": self.id_type, "subject": self.subject, "measure": self.measure,
                "checked_at": self.checked_at, "outcome": self.outcome,
                "ground": [g.value() for g in self.grounds],
                "exemption": self.exemption.value() if self.exemption else "", "spooled": self.spooled,
            },
        )  # fmt: skip

    @staticmethod
    def decode(data: bytes) -> DecisionEntry:
        entry = decode(data)
        if entry.kind is not EntryKind.DECISION:
            raise MalformedEntry(f"a {entry.kind} entry, not a decision")
        g = entry.get
        exemption = g("exemption")
        return DecisionEntry(
            decision_id=g("id"), at_ms=_int(g("at_ms")), catalogue_version=g("catalogue"), caller=g("caller"),
            on_behalf_of=g("on_behalf_of"), revision=_int(g("revision")), id_type=g("id_type"), subject=g("subject"),
            measure=g("measure"), checked_at=_int(g("checked_at")), outcome=g("outcome"),
            grounds=tuple(LoggedGround.parse(v) for v in entry.all("ground")),
            exemption=LoggedExemption.parse(exemption) if exemption else None, spooled=g("spooled"),
        )  # fmt: skip


def escaped(value: str) -> str:
    """escape(value), at the cost of one search for the values that need no escaping (nearly all)."""
    return escape(value) if _ESCAPED.search(value) else value


_DECISION_HEAD = f"{FORMAT} {EntryKind.DECISION.value}\nid="


class DecisionEncoder:
    """The entries of many decisions, byte for byte what DecisionEntry.encode makes of them (tests hold the two
    to each other), at a fraction of its cost: the integrator builds one per decision logged. What decisions
    share (a record's time and catalogue, a caller's fields, a measure, an outcome, a ground) is escaped and
    joined once and kept; each entry is then one string join of its parts."""

    MAX_KEPT = 10_000  # per cache; past it, a cache starts again

    def __init__(self) -> None:
        self._asked: dict[tuple[str, str, int, str], str] = {}
        self._measures: dict[str, str] = {}
        self._outcomes: dict[str, str] = {}

    @staticmethod
    def record_part(at_ms: int, catalogue_version: str) -> str:
        """What a record's decisions share (pass it to `encode`)."""
        return f"\nat_ms={at_ms}\ncatalogue={escaped(catalogue_version)}\ncaller="

    @staticmethod
    def ground_line(ground: LoggedGround) -> str:
        """A ground's line (pass the lines of a decision's grounds, joined, to `encode`)."""
        return f"ground={ground.value()}\n"

    @staticmethod
    def exemption_value(exemption: LoggedExemption | None) -> str:
        return exemption.value() if exemption else ""

    def encode(
        self, decision_id: str, record_part: str, caller: str, on_behalf_of: str, revision: int, id_type: str,
        subject: str, measure: str, checked_at: int, outcome: str, ground_lines: str = "", exemption: str = "",
        spooled: str = "",
    ) -> bytes:  # fmt: skip
        asked = self._asked.get((caller, on_behalf_of, revision, id_type))
        if asked is None:
            if len(self._asked) >= self.MAX_KEPT:
                self._asked.clear()
            asked = self._asked[(caller, on_behalf_of, revision, id_type)] = (
                f"{escaped(caller)}\non_behalf_of={escaped(on_behalf_of)}\nrevision={revision}"
                f"\nid_type={escaped(id_type)}\nsubject="
            )
        measured = self._measures.get(measure)
        if measured is None:
            if len(self._measures) >= self.MAX_KEPT:
                self._measures.clear()
            measured = self._measures[measure] = f"\nmeasure={escaped(measure)}\nchecked_at="
        outcomes = self._outcomes.get(outcome)
        if outcomes is None:
            if len(self._outcomes) >= self.MAX_KEPT:
                self._outcomes.clear()
            outcomes = self._outcomes[outcome] = f"\noutcome={escaped(outcome)}\n"
        return (
            f"{_DECISION_HEAD}{escaped(decision_id)}{record_part}{asked}{escaped(subject)}{measured}{checked_at}"
            f"{outcomes}{ground_lines}exemption={exemption}\nspooled={escaped(spooled) if spooled else ''}\n"
        ).encode()


# -- registry writes, objection steps, rekey runs -----------------------------------------------------------


_ESCAPES: dict[str, str] = {}  # values that needed escaping: a feed repeats a few (a legal basis with its commas)


def _escaped(value: str) -> str:
    done = _ESCAPES.get(value)
    if done is None:
        if len(_ESCAPES) >= 4096:
            _ESCAPES.clear()
        done = _ESCAPES[value] = escape(value)
    return done


_REGISTRY_HEAD = f"{FORMAT} {EntryKind.REGISTRY.value}\n"
_REGISTRY_KEYS = tuple(name.rstrip("*") for name in FIELDS[EntryKind.REGISTRY])


@dataclass(frozen=True)
class RegistryEntry:
    at: int
    caller: str
    action: str
    target: str
    subject: str = ""
    on_behalf_of: str = ""
    document_number: str = ""
    reason: str = ""
    changed: tuple[str, ...] = ()
    before: tuple[tuple[str, str], ...] = ()  # (field, value) in the record's order; empty: it did not exist
    after: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        """The same bytes as `encode(EntryKind.REGISTRY, {...})` (tests/unit hold them equal), a few times faster:
        every import writes one of these per restriction. A value is escaped only when it may need it (a `%`, a `,`
        or a character that is not printable: every control is one), and one that does is escaped once and kept."""
        values = [str(self.at), self.caller, self.on_behalf_of, self.action, self.target, self.subject,
                  self.document_number, self.reason]  # fmt: skip
        values += self.changed
        values += [f"{k}:{v}" for k, v in self.before]
        values += [f"{k}:{v}" for k, v in self.after]
        values = [_escaped(v) if "%" in v or "," in v or not v.isprintable() else v for v in values]
        keys = _REGISTRY_KEYS[: len(_REGISTRY_KEYS) - 3]
        keys += ("changed",) * len(self.changed) + ("before",) * len(self.before) + ("after",) * len(self.after)
        return (_REGISTRY_HEAD + "".join([f"{k}={v}\n" for k, v in zip(keys, values, strict=True)])).encode()

    @staticmethod
    def decode(data: bytes) -> RegistryEntry:
        entry = decode(data)
        if entry.kind is not EntryKind.REGISTRY:
            raise MalformedEntry(f"a {entry.kind} entry, not a registry write")
        g = entry.get

        def pairs(key: str) -> tuple[tuple[str, str], ...]:
            out = []
            for v in entry.all(key):
                name, colon, value = v.partition(":")
                if not colon:
                    raise MalformedEntry(f"{key} {v[:30]!r} is not field:value")
                out.append((name, value))
            return tuple(out)

        return RegistryEntry(
            at=_int(g("at")), caller=g("caller"), on_behalf_of=g("on_behalf_of"), action=g("action"),
            target=g("target"), subject=g("subject"), document_number=g("document_number"), reason=g("reason"),
            changed=tuple(entry.all("changed")), before=pairs("before"), after=pairs("after"),
        )  # fmt: skip


@dataclass(frozen=True)
class ObjectionEntry:
    at: int
    actor: str
    objection_id: str
    decision_id: str
    from_state: str
    to_state: str
    reason: str = ""

    def encode(self) -> bytes:
        return encode(
            EntryKind.OBJECTION,
            {
                "at": self.at, "actor": self.actor, "objection": self.objection_id, "decision": self.decision_id,
                "from": self.from_state, "to": self.to_state, "reason": self.reason,
            },
        )  # fmt: skip

    @staticmethod
    def decode(data: bytes) -> ObjectionEntry:
        entry = decode(data)
        if entry.kind is not EntryKind.OBJECTION:
            raise MalformedEntry(f"a {entry.kind} entry, not an objection step")
        g = entry.get
        return ObjectionEntry(
            at=_int(g("at")), actor=g("actor"), objection_id=g("objection"), decision_id=g("decision"),
            from_state=g("from"), to_state=g("to"), reason=g("reason"),
        )  # fmt: skip


@dataclass(frozen=True)
class RekeyEntry:
    at: int
    caller: str
    key: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        values: dict[str, str | int] = {"at": self.at, "caller": self.caller, "key": self.key}
        for name in FIELDS[EntryKind.REKEY][3:]:
            values[name] = int(self.counts.get(name, 0))
        return encode(EntryKind.REKEY, values)

    @staticmethod
    def decode(data: bytes) -> RekeyEntry:
        entry = decode(data)
        if entry.kind is not EntryKind.REKEY:
            raise MalformedEntry(f"a {entry.kind} entry, not a rekey run")
        counts = {name: _int(entry.get(name)) for name in FIELDS[EntryKind.REKEY][3:]}
        return RekeyEntry(at=_int(entry.get("at")), caller=entry.get("caller"), key=entry.get("key"), counts=counts)
