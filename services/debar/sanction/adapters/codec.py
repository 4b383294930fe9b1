"""Byte formats of what the Redis adapter stores beside the index entries (whose packed form is the decision
log's too: domain/entries.py): records are msgpack arrays (measures as the catalogue bitmask, trailing defaults left
out), exemptions JSON. Texts that repeat across records (sources, legal bases, authorities) are stored once under a
content-derived ref allocated by the store (see lua/texts.lua)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

import msgpack
import orjson

from debar.common.identifiers import IdKind
from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.log_entries import MalformedEntry, RegistryEntry
from debar.sanction.domain.model import (
    Exemption,
    PendingLift,
    PrincipalLink,
    Restriction,
    Role,
    SubjectRef,
)


def _ref(refs: Mapping[str, str], text: str) -> str:
    return refs[text] if text else ""


def _subject(ref: SubjectRef) -> list[str]:
    return [ref.kind.value, ref.pseudonym, ref.bucket]


def _subject_from(raw: list[str]) -> SubjectRef:
    return SubjectRef(IdKind(raw[0]), raw[1], raw[2])


_KINDS = list(IdKind)
_KIND_CODES = {kind: i for i, kind in enumerate(_KINDS)}
# Positions in a record array from which a value equal to its default may be left out at the end.
# decided on, document, list version, principals, lifted at, lift reason, disputed, lift document, lifted by, lift
# confirmed by, pending lift ([asked by, asked at, reason, document] or None), corrected
_OPTIONAL_DEFAULTS: tuple[Any, ...] = ("", "", "", [], None, "", False, "", "", "", None, False)
_FIRST_OPTIONAL = 14
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_PRINCIPAL_DEFAULTS: tuple[Any, ...] = ("", None, "")  # name, lifted at, lift reason


def _packed_subject(ref: SubjectRef) -> list[Any]:
    return [_KIND_CODES[ref.kind], ref.pseudonym, int(ref.bucket, 16)]


def _unpacked_subject(kind: int, pseudonym: str, bucket: int) -> SubjectRef:
    return SubjectRef(_KINDS[kind], pseudonym, f"{bucket:03x}")


def _packed_day(day: str) -> int | str:
    """An ISO date as days since 1970 (3 bytes instead of 11), when that gives the same text back."""
    try:
        ordinal = date.fromisoformat(day).toordinal()
    except ValueError:
        return day
    return ordinal - _EPOCH_DAY if date.fromordinal(ordinal).isoformat() == day else day


def _trimmed(values: list[Any], first_optional: int, defaults: tuple[Any, ...]) -> list[Any]:
    end = len(values)
    while end > first_optional and values[end - 1] == defaults[end - 1 - first_optional]:
        end -= 1
    return values[:end]


def encode_restriction(r: Restriction, catalogue: Catalogue, refs: Mapping[str, str]) -> bytes:
    principals = [
        _trimmed(
            [*_packed_subject(p.subject), int(p.role), p.masked_name, p.lifted_at, p.lift_reason],
            4,
            _PRINCIPAL_DEFAULTS,
        )
        for p in r.principals
    ]
    values = [
        _ref(refs, r.source), r.source_id, *_packed_subject(r.subject), r.masked_name,
        catalogue.mask_of(r.measures), _ref(refs, r.legal_basis), _ref(refs, r.authority), r.case_number,
        r.effective_from, r.effective_until, r.created_at, r.updated_at - r.created_at,
        _packed_day(r.decided_on) if r.decided_on else "", r.document_number, r.list_version, principals,
        r.lifted_at, r.lift_reason, r.disputed, r.lift_document_number, r.lifted_by, r.lift_confirmed_by,
        _packed_pending(r.pending_lift), r.corrected,
    ]  # fmt: skip
    return msgpack.packb(_trimmed(values, _FIRST_OPTIONAL, _OPTIONAL_DEFAULTS), use_bin_type=True)


def decode_restriction(restriction_id: str, raw: bytes, texts: dict[str, str], catalogue: Catalogue) -> Restriction:
    v = msgpack.unpackb(raw)
    v += _OPTIONAL_DEFAULTS[len(v) - _FIRST_OPTIONAL :]
    (source, source_id, kind, pseudonym, bucket, name, mask, basis, authority, case, start, end, created, updated,
     decided_on, document, list_version, principals, lifted_at, lift_reason, disputed, lift_document, lifted_by,
     lift_confirmed_by, pending, corrected) = v  # fmt: skip
    return Restriction(
        id=restriction_id,
        source=texts.get(source, ""),
        source_id=source_id,
        list_version=list_version,
        subject=_unpacked_subject(kind, pseudonym, bucket),
        masked_name=name,
        measures=tuple(catalogue.codes_of(mask)),
        legal_basis=texts.get(basis, ""),
        authority=texts.get(authority, ""),
        case_number=case,
        document_number=document,
        decided_on=date.fromordinal(decided_on + _EPOCH_DAY).isoformat() if isinstance(decided_on, int) else decided_on,
        effective_from=start,
        effective_until=end,
        principals=tuple(
            PrincipalLink(_unpacked_subject(*p[:3]), Role(p[3]), *p[4:], *_PRINCIPAL_DEFAULTS[len(p) - 4 :])
            for p in principals
        ),
        created_at=created,
        updated_at=created + updated,
        lifted_at=lifted_at,
        lift_reason=lift_reason,
        disputed=disputed,
        lift_document_number=lift_document,
        lifted_by=lifted_by,
        lift_confirmed_by=lift_confirmed_by,
        pending_lift=PendingLift(*pending) if pending else None,
        corrected=corrected,
    )


def _packed_pending(pending: PendingLift | None) -> list[Any] | None:
    if pending is None:
        return None
    return [pending.asked_by, pending.asked_at, pending.reason, pending.document_number]


def rekeyed_restriction(raw: bytes, forward: Callable[[str], str]) -> bytes | None:
    """The stored record with every pseudonym in it (subject, principals) moved to the current key, or None when
    it holds none under an older key. Works on the packed form: no text or catalogue lookup needed."""
    v = msgpack.unpackb(raw)
    changed = False

    def moved(pseudonym: str) -> str:
        nonlocal changed
        current = forward(pseudonym)
        changed = changed or current != pseudonym
        return current

    v[3] = moved(v[3])
    if len(v) > 17:
        for principal in v[17]:
            principal[1] = moved(principal[1])
    return msgpack.packb(v, use_bin_type=True) if changed else None


def rekeyed_exemption(raw: bytes, forward: Callable[[str], str]) -> bytes | None:
    d = json.loads(raw)
    current = forward(d["sub"][1])
    if current == d["sub"][1]:
        return None
    d["sub"][1] = current
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False).encode()


def restriction_text_refs(raw: bytes) -> tuple[str, str, str]:
    v = msgpack.unpackb(raw)
    return v[0], v[7], v[8]


def encode_exemption(x: Exemption) -> bytes:
    data = {
        "sub": _subject(x.subject),
        "m": x.measure,
        "ef": x.effective_from,
        "eu": x.effective_until,
        "au": x.authority,
        "re": x.reason,
        "dn": x.document_number,
        "ca": x.created_at,
        "by": x.granted_by,
        "cb": x.confirmed_by,
        "pd": x.pending,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def decode_exemption(exemption_id: str, raw: bytes) -> Exemption:
    d = json.loads(raw)
    return Exemption(
        id=exemption_id,
        subject=_subject_from(d["sub"]),
        measure=d["m"],
        effective_from=d["ef"],
        effective_until=d["eu"],
        authority=d["au"],
        reason=d["re"],
        document_number=d["dn"],
        created_at=d["ca"],
        granted_by=d.get("by", ""),
        confirmed_by=d.get("cb", ""),
        pending=d.get("pd", False),
    )


# -- registry writes' log entries, as the stream keeps them ---------------------------------------------------
# A registry entry (domain/log_entries.py) is kept in its stream record (field `r`) as a compact JSON array (text,
# so the archive's JSON Lines keep it as it is): its fields flat, name number then value, the texts that repeat
# across records (source, legal basis, authority, the list of measures) as the store's text refs, and the record's
# subject, when it is the entry's own, as 0. An import's entry is about half its canonical size; the stream keeps
# it only until it is archived. The sequenced log and the history expand it back to the very same entry (the
# Merkle leaf is the canonical entry, never these bytes). Format 1 (pairs, measures in full) is still read.

REGISTRY_FORMAT = 2
_READ_FORMATS = (1, 2)
REGISTRY_NAMES = (
    "source", "source_id", "list_version", "subject", "masked_name", "measures", "legal_basis", "authority",
    "case_number", "document_number", "decided_on", "effective_from", "effective_until", "principals", "lifted_at",
    "lift_reason", "lift_document_number", "lifted_by", "lift_confirmed_by", "pending_lift", "disputed", "corrected",
    "measure", "reason", "granted_by", "confirmed_by", "pending",
)  # fmt: skip
_NAME_NUMBER = {name: i for i, name in enumerate(REGISTRY_NAMES)}
REGISTRY_TEXTS = frozenset({"source", "legal_basis", "authority", "measures"})
_FORMAT_TEXTS = {1: frozenset({"source", "legal_basis", "authority"}), 2: REGISTRY_TEXTS}
_TEXT_NUMBERS = frozenset(_NAME_NUMBER[name] for name in REGISTRY_TEXTS)
_SUBJECT = _NAME_NUMBER["subject"]
_OWN_SUBJECT = 0  # the value of a `subject` field that names the entry's own subject


def registry_texts(entry: RegistryEntry) -> list[str]:
    """The texts of `entry` kept by ref (the store allocates their refs first)."""
    return [v for k, v in (*entry.before, *entry.after) if k in REGISTRY_TEXTS and v]


def _pack_fields(fields: tuple[tuple[str, str], ...], refs: Mapping[str, str], subject: str) -> list[Any]:
    out: list[Any] = []
    for k, v in fields:
        number = _NAME_NUMBER.get(k, k)
        if number in _TEXT_NUMBERS:
            out += (number, _ref(refs, v))
        elif number == _SUBJECT and v == subject:
            out += (number, _OWN_SUBJECT)
        else:
            out += (number, v)
    return out


def pack_registry(e: RegistryEntry, refs: Mapping[str, str], signature: str = "") -> str:
    """Compact JSON, UTF-8 as it is (orjson: the same text as json.dumps(ensure_ascii=False), several times faster).
    `signature`: the writer's on e.encode() (tlog/entry_signature.py), kept as a 13th item when given."""
    packed = [REGISTRY_FORMAT, e.at, e.caller, e.on_behalf_of, e.action, e.target, e.subject, e.document_number,
              e.reason, list(e.changed), _pack_fields(e.before, refs, e.subject),
              _pack_fields(e.after, refs, e.subject)]  # fmt: skip
    if signature:
        packed.append(signature)
    return orjson.dumps(packed).decode()


def _unpacked(raw: str) -> list[Any]:
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise MalformedEntry("not a packed registry entry") from error
    return _checked(data)


def _checked(data: Any) -> list[Any]:
    if not isinstance(data, list) or len(data) not in (12, 13) or data[0] not in _READ_FORMATS:
        raise MalformedEntry("not a packed registry entry")
    if not all(isinstance(f, list) and (data[0] != 2 or len(f) % 2 == 0) for f in data[10:12]):
        raise MalformedEntry("not a packed registry entry")
    return data


def registry_signature(raw: str) -> str:
    """The writer's signature kept with a packed registry entry, "" for none."""
    return _signature_of(_unpacked(raw))


def _signature_of(data: list[Any]) -> str:
    return str(data[12]) if len(data) == 13 else ""


def _pairs(data: list[Any], packed: list[Any]) -> list[tuple[Any, Any]]:
    if data[0] == 1:
        if not all(isinstance(p, list) and len(p) == 2 for p in packed):
            raise MalformedEntry("not a packed registry entry")
        return [(k, v) for k, v in packed]
    return list(zip(packed[::2], packed[1::2], strict=True))


def registry_text_refs(raw: str) -> list[str]:
    return _text_refs_of(_unpacked(raw))


def _text_refs_of(data: list[Any]) -> list[str]:
    by_ref = _FORMAT_TEXTS[data[0]]
    return [v for k, v in (*_pairs(data, data[10]), *_pairs(data, data[11])) if _name(k) in by_ref and v]


def _name(number: Any) -> str:
    return REGISTRY_NAMES[number] if isinstance(number, int) and 0 <= number < len(REGISTRY_NAMES) else str(number)


def unpack_registry(raw: str, texts: Mapping[str, str]) -> RegistryEntry:
    """The entry `raw` packs, texts resolved (`texts`: ref -> text; a ref it lacks stays as the ref)."""
    return _entry_of(_unpacked(raw), texts)


def _entry_of(data: list[Any], texts: Mapping[str, str]) -> RegistryEntry:
    _, at, caller, obo, action, target, subject, document, reason, changed, before, after = data[:12]
    by_ref = _FORMAT_TEXTS[data[0]]

    def fields(packed: list[Any]) -> tuple[tuple[str, str], ...]:
        out = []
        for k, v in _pairs(data, packed):
            name = _name(k)
            if name in by_ref and v:
                v = texts.get(v, v)
            elif name == "subject" and v == _OWN_SUBJECT and not isinstance(v, str):
                v = subject
            if not isinstance(v, str):
                raise MalformedEntry("not a packed registry entry")
            out.append((name, v))
        return tuple(out)

    return RegistryEntry(
        at=at, caller=caller, on_behalf_of=obo, action=action, target=target, subject=subject,
        document_number=document, reason=reason, changed=tuple(changed), before=fields(before), after=fields(after),
    )  # fmt: skip


def pack_registry_batch(packed: list[str], signature: str = "") -> str:
    """Many packed entries as one stream record's field `rs` (a JSON array of them, in order). `signature`: the
    writer's over the chunk's entries (tlog/entry_signature.py: sign_chunk), kept as a last item, a string, when
    given: each entry's own signature cannot tell an entry dropped, moved to another chunk or reordered."""
    return "[" + ",".join([*packed, orjson.dumps(signature).decode()] if signature else packed) + "]"


def registry_batch_signature(raw: str) -> str:
    """The writer's signature on a field `rs`'s chunk as a whole, "" for none."""
    data = _batch_items(raw)
    return data[-1] if isinstance(data[-1], str) else ""


def unpack_registry_batch(raw: str, texts: Mapping[str, str]) -> list[RegistryEntry]:
    """The entries of a field `rs`, in order, texts resolved as by `unpack_registry`."""
    return [_entry_of(data, texts) for data in _batch(raw)]


def registry_batch_signatures(raw: str) -> list[str]:
    """Per entry of a field `rs`, in order, its writer's signature ("" for none)."""
    return [_signature_of(data) for data in _batch(raw)]


def registry_batch_text_refs(raw: str) -> list[str]:
    return [ref for data in _batch(raw) for ref in _text_refs_of(data)]


def _batch_items(raw: str) -> list[Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise MalformedEntry("not a packed batch of registry entries") from error
    if not isinstance(data, list) or not data or isinstance(data[0], str):
        raise MalformedEntry("not a packed batch of registry entries")
    return data


def _batch(raw: str) -> list[list[Any]]:
    data = _batch_items(raw)
    return [_checked(entry) for entry in (data[:-1] if isinstance(data[-1], str) else data)]
