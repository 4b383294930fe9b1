"""The CPU side of `debar import`, run in worker processes: a chunk of raw lines in, each line's outcome out
(decoded, parsed, validated by `Registry.build` and pseudonymised), in a compact form that is cheap to send back.

A worker builds its own validator from a `BuilderSpec` (the same settings the writer's registry was made from):
`Registry.build` stays the one place that says what a valid record is. The writer keeps everything that spans
lines (duplicate ids, the summary) and everything that touches Redis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from debar.common.errors import DomainError
from debar.common.identifiers import IdKind, Placement, Pseudonymiser, parse_keys
from debar.sanction.app.registry import Registry
from debar.sanction.domain.catalogue import load_catalogue
from debar.sanction.domain.model import PrincipalLink, Restriction, Role, SubjectRef
from debar.sanction.domain.subjects import SubjectResolver

T = TypeVar("T")

# One line's outcome: (line number, (source, source_id) or None when it did not parse, packed record or reason).
Outcome = tuple[int, tuple[str, str] | None, "tuple[Any, ...] | str"]


@dataclass(frozen=True, slots=True)
class BuilderSpec:
    """What a worker needs to validate exactly as the writer's registry does."""

    pseudonym_keys: str
    bucket_key: str
    catalogue_path: str | None = None
    pseudonym_staged: str = ""

    def registry(self) -> Registry:
        catalogue = load_catalogue(self.catalogue_path)
        pseudonymiser = Pseudonymiser(parse_keys(self.pseudonym_keys), self.pseudonym_staged)
        resolver = SubjectResolver(pseudonymiser, Placement(self.bucket_key.encode()), cache_size=0)
        return Registry(None, catalogue, resolver, None)  # type: ignore[arg-type]  # build needs no store


def build_chunk(spec: BuilderSpec, first: int, lines: Sequence[bytes]) -> list[Outcome]:
    """The outcome of each non-blank line of `lines` (numbered from `first`), in order."""
    from debar.sanction.app.importer import decode, parse_line, prepared  # the importer imports this module

    registry = spec.registry()
    texts: dict[str, str] = {}  # one object per repeated text: pickled once per chunk, shared by the writer
    out: list[Outcome] = []
    for number, line in enumerate(lines, start=first):
        raw = prepared(number, line)
        if raw is None:
            continue
        try:
            item = parse_line(decode(raw))
        except DomainError as error:
            out.append((number, None, error.message))
            continue
        key = (item.source, item.source_id.strip())
        try:
            out.append((number, key, pack(registry.build(item), texts)))
        except DomainError as error:
            out.append((number, key, error.message))
    return out


def _shared(texts: dict[str, str], text: str) -> str:
    return texts.setdefault(text, text)


def _packed_ref(ref: SubjectRef) -> tuple[str, str, str, str]:
    return (ref.kind.value, ref.pseudonym, ref.bucket, ref.alias)


def pack(r: Restriction, texts: dict[str, str]) -> tuple[Any, ...]:
    """A restriction as plain values (every field, in order): pickles several times faster than the dataclass."""
    return (
        r.id, _shared(texts, r.source), r.source_id, r.list_version, _packed_ref(r.subject), r.masked_name,
        r.measures, _shared(texts, r.legal_basis), _shared(texts, r.authority), r.case_number, r.document_number,
        r.decided_on, r.effective_from, r.effective_until,
        tuple((_packed_ref(p.subject), int(p.role), p.masked_name, p.lifted_at, p.lift_reason) for p in r.principals),
        r.created_at, r.updated_at, r.lifted_at, r.lift_reason, r.disputed,
    )  # fmt: skip


def _maker(cls: type[T]) -> Callable[..., T]:
    """Makes a `cls` (a frozen dataclass with slots, no __post_init__) from every field's value, in order: stored
    through the slots themselves, as its __init__ stores them, without the frozen class's guarded __setattr__ per
    field (the writer makes a restriction and its subject per line: 15 µs before, a few after)."""
    assert "__post_init__" not in vars(cls) and len(vars(cls)["__slots__"]) == len(fields(cls))  # type: ignore[arg-type]
    setters = [vars(cls)[f.name].__set__ for f in fields(cls)]  # type: ignore[arg-type]
    new = object.__new__

    def make(*values: Any) -> T:
        made = new(cls)
        for put, value in zip(setters, values, strict=True):
            put(made, value)
        return made

    return make


_restriction = _maker(Restriction)
_subject = _maker(SubjectRef)
_NO_LIFT = ("", "", "", None, False)  # lift_document_number .. corrected: what `build` leaves at their defaults


class Unpacker:
    """Turns packed records back into restrictions (in the writer); equal to what `build` returned."""

    def __init__(self) -> None:
        self._kinds = {kind.value: kind for kind in IdKind}
        self._roles = {int(role): role for role in Role}
        self._measures: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _ref(self, v: tuple[str, str, str, str]) -> SubjectRef:
        return _subject(self._kinds[v[0]], v[1], v[2], v[3])

    def restriction(self, v: tuple[Any, ...]) -> Restriction:
        measures = self._measures.setdefault(v[6], v[6])  # shared: a few distinct tuples across a file
        principals = tuple(
            PrincipalLink(self._ref(p[0]), self._roles[p[1]], p[2], p[3], p[4]) for p in v[14]
        ) if v[14] else ()  # fmt: skip
        return _restriction(
            v[0], v[1], v[2], v[3], self._ref(v[4]), v[5], measures, v[7], v[8], v[9], v[10], v[11], v[12], v[13],
            principals, v[15], v[16], v[17], v[18], v[19], *_NO_LIFT,
        )  # fmt: skip
