"""Byte formats of what the Redis adapter stores. Index entries are packed flat strings the check script can
split without a JSON parser; records are compact JSON. Long texts that repeat across records (legal bases,
authorities) are stored once under a content-derived ref."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from debar.common.identifiers import IdKind
from debar.sanction.domain.model import (
    EntryKind,
    Exemption,
    IndexEntry,
    PrincipalLink,
    Restriction,
    Role,
    SubjectRef,
)

FIELD_SEP = "\x1f"  # between the fields of an entry
ENTRY_SEP = "\x1e"  # between entries of one subject


def text_ref(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10] if text else ""


def entry_key(kind: EntryKind, entry_id: str, role: Role | None) -> str:
    """The prefix that identifies an entry within a subject's packed value (used to replace or drop it)."""
    return FIELD_SEP.join((kind.value, entry_id, str(int(role or 0)))) + FIELD_SEP


def encode_entry(entry: IndexEntry) -> str:
    for text in (entry.via, entry.case_number, entry.source):
        if FIELD_SEP in text or ENTRY_SEP in text:
            raise ValueError("control characters in an index entry field")
    return FIELD_SEP.join(
        (
            entry.kind.value,
            entry.id,
            str(int(entry.role or 0)),
            str(entry.mask),
            str(entry.effective_from),
            "" if entry.effective_until is None else str(entry.effective_until),
            entry.source,
            entry.via,
            text_ref(entry.legal_basis),
            text_ref(entry.authority),
            entry.case_number,
        )
    )


def decode_entry(raw: str, texts: dict[str, str]) -> IndexEntry:
    kind, entry_id, role, mask, start, end, source, via, basis_ref, authority_ref, case = raw.split(FIELD_SEP)
    return IndexEntry(
        kind=EntryKind(kind),
        id=entry_id,
        role=Role(int(role)) if int(role) else None,
        mask=int(mask),
        effective_from=int(start),
        effective_until=int(end) if end else None,
        source=source,
        via=via,
        legal_basis=texts.get(basis_ref, ""),
        authority=texts.get(authority_ref, ""),
        case_number=case,
    )


def text_refs_of(raw: str) -> tuple[str, str]:
    fields = raw.split(FIELD_SEP)
    return fields[8], fields[9]


def _subject(ref: SubjectRef) -> list[str]:
    return [ref.kind.value, ref.pseudonym, ref.bucket]


def _subject_from(raw: list[str]) -> SubjectRef:
    return SubjectRef(IdKind(raw[0]), raw[1], raw[2])


def encode_restriction(r: Restriction) -> bytes:
    data: dict[str, Any] = {
        "src": r.source,
        "sid": r.source_id,
        "lv": r.list_version,
        "sub": _subject(r.subject),
        "nm": r.masked_name,
        "ms": list(r.measures),
        "lb": text_ref(r.legal_basis),
        "au": text_ref(r.authority),
        "cn": r.case_number,
        "dn": r.document_number,
        "do": r.decided_on,
        "ef": r.effective_from,
        "eu": r.effective_until,
        "pr": [[*_subject(p.subject), int(p.role), p.masked_name, p.lifted_at, p.lift_reason] for p in r.principals],
        "ca": r.created_at,
        "ua": r.updated_at,
        "la": r.lifted_at,
        "lr": r.lift_reason,
        "di": r.disputed,
    }
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def decode_restriction(restriction_id: str, raw: bytes, texts: dict[str, str]) -> Restriction:
    d = json.loads(raw)
    return Restriction(
        id=restriction_id,
        source=d["src"],
        source_id=d["sid"],
        list_version=d["lv"],
        subject=_subject_from(d["sub"]),
        masked_name=d["nm"],
        measures=tuple(d["ms"]),
        legal_basis=texts.get(d["lb"], ""),
        authority=texts.get(d["au"], ""),
        case_number=d["cn"],
        document_number=d["dn"],
        decided_on=d["do"],
        effective_from=d["ef"],
        effective_until=d["eu"],
        principals=tuple(PrincipalLink(_subject_from(p[:3]), Role(p[3]), p[4], p[5], p[6]) for p in d["pr"]),
        created_at=d["ca"],
        updated_at=d["ua"],
        lifted_at=d["la"],
        lift_reason=d["lr"],
        disputed=d["di"],
    )


def restriction_text_refs(raw: bytes) -> tuple[str, str]:
    d = json.loads(raw)
    return d["lb"], d["au"]


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
    )
