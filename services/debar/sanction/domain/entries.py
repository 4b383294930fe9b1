"""The packed form of an index entry: a flat string the check script splits without a JSON parser. It is how the
subject index holds an entry and how a logged decision keeps its grounds and exemption, so the decision log (its
sequencing streams, their archive files, their retention) is written in it. Texts that repeat across entries
(source, legal basis, authority) appear as refs the store allocates; decoding is given the ref -> text map.
An exemption confirmed by a second identity has a twelfth field, "1" (adapters/lua/decide.lua reads it); every other
entry has eleven, as entries written before it had."""

from __future__ import annotations

from collections.abc import Mapping

from debar.sanction.domain.model import EntryKind, IndexEntry, Role

FIELD_SEP = "\x1f"  # between the fields of an entry
ENTRY_SEP = "\x1e"  # between entries of one subject (or of one decision's grounds)
_UNTIL = 5  # position of effective_until
CONFIRMED = "1"  # the twelfth field of a confirmed exemption


def _ref(refs: Mapping[str, str], text: str) -> str:
    return refs[text] if text else ""


def entry_key(kind: EntryKind, entry_id: str, role: Role | None) -> str:
    """The prefix that identifies an entry within a subject's packed value (used to replace or drop it)."""
    return FIELD_SEP.join((kind.value, entry_id, str(int(role or 0)))) + FIELD_SEP


def encode_entry(entry: IndexEntry, refs: Mapping[str, str]) -> str:
    """`refs`: text -> ref for the entry's source, legal basis and authority (the store allocates them)."""
    for text in (entry.via, entry.case_number, entry.source):
        if FIELD_SEP in text or ENTRY_SEP in text:
            raise ValueError("control characters in an index entry field")
    confirmed = (CONFIRMED,) if entry.confirmed and entry.kind is EntryKind.EXEMPTION else ()
    return FIELD_SEP.join(
        (
            entry.kind.value,
            entry.id,
            str(int(entry.role or 0)),
            str(entry.mask),
            str(entry.effective_from),
            "" if entry.effective_until is None else str(entry.effective_until),
            _ref(refs, entry.source),
            entry.via,
            _ref(refs, entry.legal_basis),
            _ref(refs, entry.authority),
            entry.case_number,
            *confirmed,
        )
    )


def decode_entry(raw: str, texts: Mapping[str, str]) -> IndexEntry:
    fields = raw.split(FIELD_SEP)
    kind, entry_id, role, mask, start, end, source_ref, via, basis_ref, authority_ref, case, *rest = fields
    return IndexEntry(
        kind=EntryKind(kind),
        id=entry_id,
        role=Role(int(role)) if int(role) else None,
        mask=int(mask),
        effective_from=int(start),
        effective_until=int(end) if end else None,
        source=texts.get(source_ref, ""),
        via=via,
        legal_basis=texts.get(basis_ref, ""),
        authority=texts.get(authority_ref, ""),
        case_number=case,
        confirmed=rest == [CONFIRMED] and kind == EntryKind.EXEMPTION.value,
    )


def split_entries(packed: str) -> list[str]:
    """The entries of a packed value (a subject's index field, a logged decision's grounds)."""
    return [e for e in packed.split(ENTRY_SEP) if e]


def text_refs_of(raw: str) -> tuple[str, str, str]:
    fields = raw.split(FIELD_SEP)
    return fields[6], fields[8], fields[9]


def effective_until_of(raw: str) -> int | None:
    """When a packed entry ends (None: until lifted), without decoding the rest."""
    until = raw.split(FIELD_SEP)[_UNTIL]
    return int(until) if until else None
