"""The writing side: impose, lift, exempt. Every input is validated before anything is written, and every
write ends by bumping the revision (after its data is stored). A lift or a permit that takes a record out of force
needs the court's document number and, where the catalogue says so, a second identity (domain/four_eyes.py)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import Enum
from typing import TypeVar

from debar.common.errors import Aborted, Conflict, InvalidField, NotFound
from debar.common.identifiers import IdKind, mask_name, ric_birth_date
from debar.common.times import checked_time
from debar.sanction.app.checker import RevisionFloor
from debar.sanction.app.ports import RestrictionStore, Sequenced, StaleWrite, StoreUnavailable, WriteWatch
from debar.sanction.app.unavailable import unavailable_as
from debar.sanction.domain import four_eyes
from debar.sanction.domain.calendar import DAY, add_working_days
from debar.sanction.domain.catalogue import Catalogue, Source
from debar.sanction.domain.log_entries import MalformedEntry, RegistryEntry
from debar.sanction.domain.model import (
    EntryKind,
    Exemption,
    IndexChange,
    IndexEntry,
    PrincipalLink,
    Restriction,
    Role,
    Status,
    SubjectRef,
    exemption_id,
    restriction_id,
)
from debar.sanction.domain.registry_log import Action, exemption_entry, restriction_entry
from debar.sanction.domain.subjects import SubjectResolver

MAX_TEXT = 512
MAX_PRINCIPALS = 64
# A write is made of the record as read and stored only over it; one that another write beat to it is made again of
# the record as that one left it, this many times at most, after a pause of up to BACKOFF_S, doubled each time (a
# write holding the record on Redis Cluster, lua/claim.lua, takes a few ms).
ATTEMPTS = 5
BACKOFF_S = 0.01

T = TypeVar("T")


ADULT_AGE = 18
EARLIEST_DECISION = date(2000, 1, 1)


def _decided_on(text: str, now: int) -> date | None:
    """An ISO date between 2000-01-01 and today (a day's grace for time zones ahead of UTC)."""
    if not text:
        return None
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise InvalidField("decided_on", "must be an ISO date (YYYY-MM-DD)") from None
    if not EARLIEST_DECISION <= value <= datetime.fromtimestamp(now + DAY, UTC).date():
        raise InvalidField("decided_on", "must be between 2000-01-01 and today")
    return value


def _age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# Unicode's control (Cc) and format (Cf) characters and its line and paragraph separators: those that show nothing
# or turn the text around (zero-width characters, direction marks, embeddings, overrides and isolates, the BOM,
# tags), so that a court document's number or a reason cannot read as another on a reviewer's screen. Names and free
# text keep the two joiners (U+200C, U+200D) that Persian and Indic words need; numbers keep nothing.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
_JOINERS = frozenset("\u200c\u200d")
_NUMBERS = frozenset({"source_id", "list_version", "case_number", "document_number", "exemption_id", "restriction_id"})


def _unshown(value: str, field: str) -> bool:
    """Whether `value` holds a character a text of `field` may not (see _REFUSED_CATEGORIES)."""
    if value.isascii():  # most texts: C0 controls and DEL are all an ASCII text can hold of them
        return not value.isprintable()
    keep = () if field.rsplit(".", 1)[-1] in _NUMBERS else _JOINERS
    return any(unicodedata.category(c) in _REFUSED_CATEGORIES and c not in keep for c in value)


IN_FORCE_OR_PENDING = frozenset({Status.ACTIVE, Status.DISPUTED, Status.PUBLICITY})


class WriteEffect(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True)
class PrincipalInput:
    kind: IdKind | None
    id: str
    role: Role | None
    name: str = ""


@dataclass(frozen=True, slots=True)
class ImposeInput:
    source: str
    source_id: str
    subject_kind: IdKind | None
    subject_id: str
    name: str = ""
    list_version: str = ""
    legal_basis: str = ""
    authority: str = ""
    case_number: str = ""
    document_number: str = ""
    decided_on: str = ""
    measures: Sequence[str] = ()  # empty: the source's defaults
    effective_from: int | None = None
    effective_until: int | None = None
    principals: Sequence[PrincipalInput] = ()


@dataclass(frozen=True, slots=True)
class ExemptionInput:
    subject_kind: IdKind | None
    subject_id: str
    measure: str
    effective_from: int | None
    effective_until: int | None
    authority: str
    reason: str = ""
    document_number: str = ""


def _text(value: str, field: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidField(field, "is required")
    if len(value) > limit:
        raise InvalidField(field, f"is longer than {limit} characters")
    if _unshown(value, field):
        raise InvalidField(field, "contains control characters or ones that show nothing or reverse the text")
    return value


def _time(value: int | None, field: str) -> int | None:
    return None if value is None else checked_time(value, field)


def carry_over(new: Restriction, existing: Restriction) -> Restriction:
    """What a re-sent record keeps from the stored one: its creation time, a lift (or one pending), a dispute, and
    links lifted for one person (an overturned objection), so that a feed re-sending the record does not undo
    them."""
    lifted_links = {(o.subject, o.role): o for o in existing.principals if o.lifted_at is not None}
    principals = tuple(
        replace(p, lifted_at=old.lifted_at, lift_reason=old.lift_reason)
        if (old := lifted_links.get((p.subject, p.role)))
        else p
        for p in new.principals
    )
    return replace(
        new,
        principals=principals,
        created_at=existing.created_at,
        lifted_at=existing.lifted_at,
        lift_reason=existing.lift_reason,
        disputed=existing.disputed,
        lift_document_number=existing.lift_document_number,
        lifted_by=existing.lifted_by,
        lift_confirmed_by=existing.lift_confirmed_by,
        pending_lift=existing.pending_lift,
        corrected=existing.corrected,
    )


def _sequenced(entry: RegistryEntry, record: Restriction) -> Sequenced:
    """A restriction's entry, sequenced in its subject's bucket."""
    return Sequenced(record.subject.bucket, entry, entry.target)


async def _unraced(what: str, attempt: Callable[[], Awaitable[T]]) -> T:
    """`attempt` (it reads a record, makes its change of it, and writes it over the record read) made again while
    another write to the record comes between its read and its write (StaleWrite), so that neither write is lost: a
    lift confirmed while an objection disputes the record, an Impose restating it while a lift is asked."""
    for n in range(ATTEMPTS):
        if n:
            await asyncio.sleep(random.uniform(0, BACKOFF_S * 2 ** (n - 1)))  # jitter: racing writers part ways
        try:
            return await attempt()
        except StaleWrite:
            continue
    raise Aborted(f"{what} was changed by other writes while this one was made, {ATTEMPTS} times; it did not "
                  "take effect: ask again")  # fmt: skip


class Registry:
    def __init__(
        self,
        store: RestrictionStore,
        catalogue: Catalogue,
        resolver: SubjectResolver,
        floor: RevisionFloor,
        clock: Callable[[], float] = time.time,
        watch: WriteWatch | None = None,
    ) -> None:
        self._store = store
        self._watch = watch  # told of the subjects every write touches (subscriptions), when wired
        self._catalogue = catalogue
        self._resolver = resolver
        self._floor = floor
        self._clock = clock
        self._valid_measures: dict[tuple[str, ...], tuple[str, ...]] = {}  # see _measure_codes

    @property
    def revision(self) -> int:
        return self._floor.value

    # -- impose --------------------------------------------------------------------------------------------

    def build(self, item: ImposeInput) -> Restriction:
        """Validates an impose request into the record it would store, as if new. Raises InvalidField; writes
        nothing."""
        source = self._catalogue.source(item.source)
        source_id = _text(item.source_id, "source_id", required=True, limit=128)
        subject_id = self._resolver.validate(item.subject_kind, item.subject_id, "subject")
        subject = self._resolver.ref(subject_id)
        organisation = subject_id.kind is IdKind.USCC
        measures = self._measure_codes(tuple(item.measures) or source.default_measures)
        now = int(self._clock())
        start = _time(item.effective_from, "effective_from")
        if start is None:
            start = add_working_days(now, source.publicity_working_days)
        end = _time(item.effective_until, "effective_until")
        if end is None:
            end = source.default_end(start)
        if end is not None and end <= start:
            raise InvalidField("effective_until", "must be after effective_from")
        decided_on = _decided_on(_text(item.decided_on, "decided_on", limit=10), now)
        if not source.lists_minors and subject_id.kind is IdKind.RIC:
            on = decided_on or datetime.fromtimestamp(start, UTC).date()
            if _age_on(ric_birth_date(subject_id.number), on) < ADULT_AGE:
                raise InvalidField(
                    "subject.id", f"the person was under {ADULT_AGE} on {on}: {source.code} never lists minors"
                )
        if len(item.principals) > MAX_PRINCIPALS:
            raise InvalidField("principals", f"at most {MAX_PRINCIPALS}")
        if item.principals and not organisation:
            raise InvalidField("principals", "only an organisation (USCC) has principals")
        principals = tuple(self._principal(p, i) for i, p in enumerate(item.principals))
        seen: dict[tuple[SubjectRef, Role], int] = {}
        for i, link in enumerate(principals):
            first = seen.setdefault((link.subject, link.role), i)
            if first != i:
                raise InvalidField(f"principals[{i}]", f"repeats principals[{first}] (same person, same role)")
        return Restriction(
            id=restriction_id(source.code, source_id),
            source=source.code,
            source_id=source_id,
            list_version=_text(item.list_version, "list_version", limit=64),
            subject=subject,
            masked_name=mask_name(_text(item.name, "name", limit=256), organisation=organisation),
            measures=measures,
            legal_basis=_text(item.legal_basis, "legal_basis", required=True),
            authority=_text(item.authority, "authority", required=True),
            case_number=_text(item.case_number, "case_number", required=True, limit=128),
            document_number=_text(item.document_number, "document_number", limit=128),
            decided_on=decided_on.isoformat() if decided_on else "",
            effective_from=start,
            effective_until=end,
            principals=principals,
            created_at=now,
            updated_at=now,
        )

    def _measure_codes(self, measures: tuple[str, ...]) -> tuple[str, ...]:
        """The measures checked against the catalogue, in catalogue order; remembered for lists already valid
        (a feed repeats a few lists)."""
        known = self._valid_measures.get(measures)
        if known is not None:
            return known
        for i, code in enumerate(measures):
            self._catalogue.measure(code, f"measures[{i}]")
        known = tuple(self._catalogue.codes_of(self._catalogue.mask_of(measures)))  # catalogue order
        if len(self._valid_measures) < 4096:
            self._valid_measures[measures] = known
        return known

    def _principal(self, p: PrincipalInput, i: int) -> PrincipalLink:
        field = f"principals[{i}]"
        if p.role is None or p.role is Role.DEBTOR:
            raise InvalidField(f"{field}.role", "must be a role in the organisation (not DEBTOR)")
        subject_id = self._resolver.validate(p.kind, p.id, f"{field}.subject")
        if subject_id.kind is not IdKind.RIC:
            raise InvalidField(f"{field}.subject.id_type", "a principal is a person (ID_TYPE_RIC)")
        ref = self._resolver.ref(subject_id)
        name = mask_name(_text(p.name, f"{field}.name", limit=128), organisation=False)
        return PrincipalLink(ref, p.role, name)

    @unavailable_as("restriction data")
    async def impose(self, item: ImposeInput, actor: str = "") -> tuple[Restriction, int, WriteEffect]:
        """`actor`: the identity imposing it, logged with the write."""
        built = self.build(item)  # validated fully before anything is read or written
        guarded = four_eyes.lift_needs_confirmation(self._catalogue, built.source)
        [(restriction, effect)], revision = await self.impose_built([built], actor, refuse_weakening=guarded)
        return restriction, revision, effect

    def _refuse_weakening(self, stored: Restriction, built: Restriction) -> None:
        """Conflict when this Impose would weaken the stored record of a source whose lifts need a second identity
        (four_eyes.weakening): that is a Lift, and Lift and ConfirmLift do it."""
        current = self._resolver.current
        stored = replace(
            stored,
            subject=replace(stored.subject, pseudonym=current(stored.subject.pseudonym)),
            principals=tuple(
                replace(p, subject=replace(p.subject, pseudonym=current(p.subject.pseudonym)))
                for p in stored.principals
            ),
        )
        why = four_eyes.weakening(stored, built)
        if why:
            raise Conflict(
                f"restriction {built.id}: this Impose would weaken it ({why}); a {built.source} restriction loses "
                "force only by Lift, confirmed by a second registry identity (ConfirmLift)"
            )

    @unavailable_as("restriction data")
    async def impose_built(
        self, built: Sequence[Restriction], actor: str = "", refuse_weakening: bool = False
    ) -> tuple[list[tuple[Restriction, WriteEffect]], int]:
        """Stores records made by `build` (distinct ids): reads what is stored in one round trip, writes what
        changed with its index entries and its log entry (who, before and after, what changed) in one store call,
        then bumps the revision once. Returns each record as stored (the existing one when unchanged) with its
        effect, and the revision. `actor`: who imposes (an import: the importing identity). `refuse_weakening`:
        Conflict where a record would weaken the one stored (_refuse_weakening), judged against the record the
        write replaces."""
        ids = [b.id for b in built]
        tried: dict[str, list[Restriction]] = {}  # what earlier attempts wrote, by id (see _raw_index_changes)

        async def attempt() -> tuple[list[tuple[Restriction, WriteEffect]], int]:
            existing = await self._store.get_restrictions(ids)
            out: list[tuple[Restriction, WriteEffect]] = []
            writes: list[Restriction] = []
            replaced: list[Restriction | None] = []
            changes: list[IndexChange] = []
            log: list[Sequenced] = []
            now = int(self._clock())
            for new, old in zip(built, existing, strict=True):
                if refuse_weakening and old is not None:
                    self._refuse_weakening(old, new)
                restriction = carry_over(new, old) if old else new
                if old is not None and old.same_content(restriction):
                    out.append((old, WriteEffect.UNCHANGED))
                    continue
                writes.append(restriction)
                replaced.append(old)
                log.append(_sequenced(restriction_entry(Action.IMPOSE, old, restriction, actor, now), restriction))
                earlier = tried.setdefault(restriction.id, [])
                if old or earlier:
                    changes += self._index_changes(restriction, old, earlier)
                else:
                    changes += self._new_index_changes(restriction)
                earlier.append(restriction)
                out.append((restriction, WriteEffect.UPDATED if old else WriteEffect.CREATED))
            if not writes:
                # A beaten attempt on Redis Cluster may have stored some records (their claims lapsed), whose
                # revision is this one's to bump.
                return out, (await self._bump() if tried else self._floor.value)
            touched = [c.subject for c in changes]
            await self._before(touched)
            await self._store.write_restrictions(writes, replaced, changes, log)
            revision = await self._bump()
            await self._after(touched)
            return out, revision

        return await _unraced(f"restriction {ids[0]}" if len(ids) == 1 else f"one of restrictions {ids[0]}…", attempt)

    def _new_index_changes(self, new: Restriction) -> list[IndexChange]:
        """`_index_changes(new, None)`, without its merging when there is nothing to merge (the usual case: a new
        record, pseudonyms under the current key, no subject twice in the same role)."""
        changes = self.index_changes(new)
        is_current = self._resolver.is_current
        if len(changes) == 1:
            if is_current(changes[0].subject.pseudonym):
                return changes
        elif len({(c.subject.pseudonym, c.role) for c in changes}) == len(changes) and all(
            is_current(c.subject.pseudonym) for c in changes
        ):
            return changes
        return self._index_changes(new, None)

    def _index_changes(
        self, new: Restriction, old: Restriction | None, tried: Sequence[Restriction] = ()
    ) -> list[IndexChange]:
        return self.under_current_keys(self._raw_index_changes(new, old, tried))

    def under_current_keys(self, changes: list[IndexChange]) -> list[IndexChange]:
        """Index entries are written under current pseudonyms only. A record stored before a key rotation names
        its subjects under an older key: its entries there are dropped and written under the current one, so a
        change made while `debar rekey` runs is never lost between the two."""
        older: list[IndexChange] = []
        current: dict[tuple[str, EntryKind, str, Role | None], IndexChange] = {}
        for change in changes:
            stored = change.subject.pseudonym
            if not self._resolver.is_current(stored):
                older.append(replace(change, entry=None))
                change = replace(change, subject=replace(change.subject, pseudonym=self._resolver.current(stored)))
            key = (change.subject.pseudonym, change.kind, change.entry_id, change.role)
            if change.entry is not None or key not in current:  # a put wins over a drop of the same entry
                current[key] = change
        return [*older, *current.values()]

    def _raw_index_changes(
        self, new: Restriction, old: Restriction | None, tried: Sequence[Restriction] = ()
    ) -> list[IndexChange]:
        """Every entry `new` stands for, and drops of those `old` stood for and `new` does not. And of those that
        `tried` (earlier attempts of this write, beaten by another write) stood for: on Redis Cluster an attempt
        whose record was stale may have stored the index entries on other nodes before its record was refused."""
        wanted = {(c.subject, c.role): c for c in self.index_changes(new)}
        dropped: dict[tuple[SubjectRef, Role | None], IndexChange] = {}
        for before in (old, *tried) if old else tried:
            for c in self.index_changes(before):
                if (c.subject, c.role) not in wanted:
                    dropped.setdefault((c.subject, c.role), IndexChange(c.subject, EntryKind.RESTRICTION, new.id,
                                                                        c.role, None))  # fmt: skip
        return [*wanted.values(), *dropped.values()]

    def index_changes(self, r: Restriction) -> list[IndexChange]:
        """The index entries a restriction stands for: its subject's, and each bound principal's. A lifted
        restriction keeps its entries, ended at the lift, so that the past stays answerable. A corrected one (the
        record was wrong from the start) and a principal link lifted for one person (an overturned objection of
        theirs) keep none: they deny at no time."""
        source: Source = self._catalogue.source(r.source)
        mask = self._catalogue.mask_of(r.measures)
        end = r.effective_until if r.lifted_at is None else min(r.lifted_at, r.effective_until or r.lifted_at)
        own = None
        if not r.corrected:
            own = IndexEntry(
                EntryKind.RESTRICTION, r.id, Role.DEBTOR, mask, r.effective_from, end,
                r.source, "", r.legal_basis, r.authority, r.case_number,
            )  # fmt: skip
        changes = [IndexChange(r.subject, EntryKind.RESTRICTION, r.id, Role.DEBTOR, own)]
        principal_mask = self._catalogue.principal_mask(source, mask)
        for link in r.principals:
            entry = None
            if principal_mask and link.lifted_at is None and not r.corrected:
                entry = IndexEntry(
                    EntryKind.RESTRICTION, r.id, link.role, principal_mask, r.effective_from, end,
                    r.source, r.masked_name, r.legal_basis, r.authority, r.case_number,
                )  # fmt: skip
            changes.append(IndexChange(link.subject, EntryKind.RESTRICTION, r.id, link.role, entry))
        return changes

    # -- lift ----------------------------------------------------------------------------------------------

    @unavailable_as("restriction data")
    async def record_import(self, counts: Mapping[str, int]) -> None:
        """Adds an import's line counts (added, updated, unchanged, rejected) to the running totals."""
        await self._store.add_import_counts(counts)

    @unavailable_as("restriction data")
    async def import_counts(self) -> dict[str, int]:
        return await self._store.import_counts()

    @unavailable_as("restriction data")
    async def history(self, restriction: Restriction) -> list[tuple[str, RegistryEntry]]:
        """Every registry write to the restriction still in Redis (older ones are in the log's archive), oldest
        first, with the log record that holds it: who, when, the action, before and after, and what changed."""
        found = await self._store.registry_history(restriction.subject.bucket, restriction.id)
        out = []
        for record_id, entry in found:
            try:
                decoded = RegistryEntry.decode(entry)
            except MalformedEntry:
                continue  # not ours to show: `debar log verify` names a rewritten entry
            if decoded.target == restriction.id:  # the history's tokens are in Redis, outside the log: another
                out.append((record_id, decoded))  # record's write put among them is not this one's to show
        return out

    @unavailable_as("restriction data")
    async def get(self, rid: str) -> Restriction:
        rid = _text(rid, "restriction_id", required=True, limit=32)
        [found] = await self._store.get_restrictions([rid])
        if found is None:
            raise NotFound(f"no restriction {rid}")
        return found

    @unavailable_as("restriction data")
    async def lift(self, rid: str, reason: str, document_number: str, actor: str) -> tuple[Restriction, int]:
        """Lifts the restriction, or, where its source needs a second identity, records the lift as pending (the
        restriction stays in force until `confirm_lift`). `actor`: the identity asking."""
        reason = _text(reason, "reason", required=True)
        document = _text(document_number, "document_number", required=True, limit=128)

        def lifted(existing: Restriction) -> tuple[Restriction, RegistryEntry]:
            updated = four_eyes.ask_lift(
                existing, by=actor, reason=reason, document_number=document, now=int(self._clock()),
                needs_confirmation=four_eyes.lift_needs_confirmation(self._catalogue, existing.source),
            )  # fmt: skip
            return updated, restriction_entry(
                Action.LIFT, existing, updated, actor, int(self._clock()), document_number=document, reason=reason
            )

        return await self._rewrite(rid, lifted)

    @unavailable_as("restriction data")
    async def confirm_lift(self, rid: str, document_number: str, actor: str) -> tuple[Restriction, int]:
        """A pending lift takes effect, confirmed by `actor`, who must not be the identity that asked for it."""
        document = _text(document_number, "document_number", required=True, limit=128)

        def confirmed(existing: Restriction) -> tuple[Restriction, RegistryEntry]:
            updated = four_eyes.confirm_lift(existing, by=actor, document_number=document, now=int(self._clock()))
            return updated, restriction_entry(Action.CONFIRM_LIFT, existing, updated, actor, int(self._clock()),
                                              document_number=document)  # fmt: skip

        return await self._rewrite(rid, confirmed)

    @unavailable_as("restriction data")
    async def lift_link(self, rid: str, subject: SubjectRef, reason: str, actor: str = "") -> tuple[Restriction, int]:
        """Corrects the record for one person only, for every time (it was wrong from the start for them): the
        debtor (the whole record, lifted if it was not yet, and marked corrected) or one principal link. For a
        confirmed objection: its two reviewers were the four eyes, so no registry confirmation is asked. `actor`:
        the reviewer whose confirmation made the correction."""
        same = self._resolver.same_subject  # the decision and the record may be under different keys of the ring

        def corrected(existing: Restriction) -> tuple[Restriction, RegistryEntry] | None:
            now = int(self._clock())
            if same(existing.subject.pseudonym, subject.pseudonym):
                if existing.corrected:
                    return None
                # A record lifted before (a debt paid) keeps when and by whom; the correction now says why it is out
                # of force, and takes it out of force for the times before the lift too.
                lifted = replace(
                    existing, lifted_at=existing.lifted_at or now, lift_reason=reason, pending_lift=None,
                    corrected=True, updated_at=now,
                )  # fmt: skip
                return lifted, restriction_entry(Action.CORRECT, existing, lifted, actor, now, reason=reason)
            links = tuple(
                replace(p, lifted_at=now, lift_reason=reason)
                if same(p.subject.pseudonym, subject.pseudonym) and p.lifted_at is None
                else p
                for p in existing.principals
            )
            if links == existing.principals:
                return None
            updated = replace(existing, principals=links, updated_at=now)
            return updated, restriction_entry(Action.CORRECT, existing, updated, actor, now, reason=reason)

        return await self._rewrite(rid, corrected)

    @unavailable_as("restriction data")
    async def set_disputed(self, rids: Sequence[str], disputed: bool, actor: str = "", reason: str = "") -> int:
        """`actor`: who filed or moved the objection that (no longer) disputes them; `reason` names it."""

        async def attempt() -> int:
            records = [r for r in await self._store.get_restrictions(list(rids)) if r and r.disputed != disputed]
            if not records:
                return self._floor.value
            now = int(self._clock())
            action = Action.DISPUTE if disputed else Action.UNDISPUTE
            marked = [replace(record, disputed=disputed, updated_at=now) for record in records]
            log = [
                _sequenced(restriction_entry(action, old, new, actor, now, reason=reason), new)
                for old, new in zip(records, marked, strict=True)
            ]
            await self._store.write_restrictions(marked, records, [], log)
            return await self._bump()

        return await _unraced(f"one of restrictions {', '.join(rids)[:100]}", attempt)

    async def _rewrite(
        self, rid: str, change: Callable[[Restriction], tuple[Restriction, RegistryEntry] | None]
    ) -> tuple[Restriction, int]:
        """Reads the record, makes `change` of it (the record and its log entry; None: nothing to change) and writes
        it over the record read; made again of the record as it is now where another write came between."""
        tried: list[Restriction] = []

        async def attempt() -> tuple[Restriction, int]:
            existing = await self.get(rid)
            made = change(existing)
            if made is None or made[0] == existing:
                return existing, self._floor.value
            updated, entry = made
            earlier = tuple(tried)
            tried.append(updated)
            return updated, await self._write(updated, existing, entry, earlier)

        return await _unraced(f"restriction {rid}", attempt)

    async def _write(
        self, new: Restriction, old: Restriction, entry: RegistryEntry, tried: Sequence[Restriction] = ()
    ) -> int:
        """The record, its index entries and its log entry in one store call, over `old` (StaleWrite otherwise)."""
        changes = self._index_changes(new, old, tried)
        touched = [c.subject for c in changes]
        await self._before(touched)
        await self._store.write_restrictions([new], [old], changes, [_sequenced(entry, new)])
        revision = await self._bump()
        await self._after(touched)
        return revision

    async def _before(self, subjects: Sequence[SubjectRef]) -> None:
        """Subscriptions on the subjects a write touches are judged a little after it, even if the process dies
        between the write and `_after`."""
        if self._watch is not None:
            await self._watch.before(subjects)

    async def _after(self, subjects: Sequence[SubjectRef]) -> None:
        """...and judged at once once it is stored (asked again: a subscription made meanwhile counts)."""
        if self._watch is None:
            return
        with contextlib.suppress(StoreUnavailable):  # the write is stored; the mark before it has them judged soon
            await self._watch.after(subjects)

    async def _bump(self) -> int:
        revision = await self._store.bump_revision()
        self._floor.saw(revision)
        return revision

    # -- reads ---------------------------------------------------------------------------------------------

    @unavailable_as("restriction data")
    async def reaching(
        self, kind: IdKind | None, raw_id: str, include_inactive: bool
    ) -> list[tuple[Restriction, Role, str]]:
        """Restrictions on the subject and those reaching it through a role, with how they reach it."""
        subject = self._resolver.resolve(kind, raw_id, "subject")
        entries = [e for e in await self._store.index_entries(subject) if e.kind is EntryKind.RESTRICTION]
        records = await self._store.get_restrictions([e.id for e in entries])
        now = int(self._clock())
        out = []
        for entry, record in zip(entries, records, strict=True):
            if record is None:
                continue
            if include_inactive or record.status(now) in IN_FORCE_OR_PENDING:
                out.append((record, entry.role or Role.DEBTOR, entry.via))
        return out

    # -- exemptions ----------------------------------------------------------------------------------------

    @unavailable_as("restriction data")
    async def grant_exemption(self, item: ExemptionInput, actor: str) -> tuple[Exemption, int]:
        """Stores a court permit; in force at once, or awaiting a second identity's confirmation where it can
        override a restriction whose lifts need one (`confirm_exemption`). `actor`: the identity granting it."""
        subject = self._resolver.resolve(item.subject_kind, item.subject_id, "subject")
        measure = self._catalogue.measure(item.measure)
        start = _time(item.effective_from, "effective_from")
        end = _time(item.effective_until, "effective_until")
        if start is None:
            raise InvalidField("effective_from", "is required: a permit is for a window")
        if end is None:
            raise InvalidField("effective_until", "is required: a permit is for a window")
        if end <= start:
            raise InvalidField("effective_until", "must be after effective_from")
        authority = _text(item.authority, "authority", required=True)
        document = _text(item.document_number, "document_number", required=True, limit=128)
        reason = _text(item.reason, "reason")
        now = int(self._clock())
        new = Exemption(
            id=exemption_id(subject.pseudonym, measure.code, start, document),
            subject=subject,
            measure=measure.code,
            effective_from=start,
            effective_until=end,
            authority=authority,
            reason=reason,
            document_number=document,
            created_at=now,
        )

        async def attempt() -> tuple[Exemption, int]:
            needs = four_eyes.exemption_needs_confirmation(
                self._catalogue, measure, await self._store.index_entries(subject)
            )
            existing = await self._store.get_exemption(subject, new.id)
            exemption = four_eyes.grant(new, existing, by=actor, now=now, needs_confirmation=needs)
            if exemption == existing:
                return exemption, self._floor.value
            entry = exemption_entry(Action.GRANT_EXEMPTION, existing, exemption, actor, now)
            return exemption, await self._put_exemption(exemption, existing, entry)

        return await _unraced(f"exemption {new.id}", attempt)

    @unavailable_as("restriction data")
    async def confirm_exemption(
        self, kind: IdKind | None, raw_id: str, xid: str, document_number: str, actor: str, measure: str,
        effective_from: int | None, effective_until: int | None,
    ) -> tuple[Exemption, int]:  # fmt: skip
        """A permit awaiting confirmation takes effect, confirmed by `actor`, who must not be the one who granted it,
        if it says what `actor` read on the court's permit: its document, measure and window."""
        subject = self._resolver.resolve(kind, raw_id, "subject")
        xid = _text(xid, "exemption_id", required=True, limit=32)
        document = _text(document_number, "document_number", required=True, limit=128)
        if not measure:
            raise InvalidField("measure", "is required: the permit's measure, as read on the court's permit")
        code = self._catalogue.measure(measure).code
        window = []
        for value, field in ((effective_from, "effective_from"), (effective_until, "effective_until")):
            seconds = _time(value, field)
            if seconds is None:
                raise InvalidField(field, "is required: the permit's window, as read on the court's permit")
            window.append(seconds)
        read = four_eyes.PermitAsRead(document, code, window[0], window[1])

        async def attempt() -> tuple[Exemption, int]:
            existing = await self._store.get_exemption(subject, xid)
            # Permits are kept per bucket, which many subjects share: the one found must be the named subject's, or
            # a confirmer naming one person would put another's permit in force.
            if existing is None or not (
                existing.subject.kind is subject.kind
                and self._resolver.same_subject(existing.subject.pseudonym, subject.pseudonym)
            ):
                raise NotFound(f"no exemption {xid} for this subject")
            confirmed = four_eyes.confirm_exemption(
                existing, by=actor, read=read, awaits=await self.awaits(existing, subject)
            )
            if confirmed == existing:
                return confirmed, self._floor.value
            entry = exemption_entry(Action.CONFIRM_EXEMPTION, existing, confirmed, actor, int(self._clock()))
            return confirmed, await self._put_exemption(confirmed, existing, entry)

        return await _unraced(f"exemption {xid}", attempt)

    @unavailable_as("restriction data")
    async def awaits(self, x: Exemption, subject: SubjectRef | None = None) -> bool:
        """Whether the permit awaits a second identity's confirmation (four_eyes.permit_awaits), against the
        restrictions reaching its subject now (`subject`: as resolved now, with its alias during a key rotation)."""
        if x.pending or x.confirmed_by:
            return x.pending
        mask = self._catalogue.measure(x.measure).mask
        entries = await self._store.index_entries(subject or x.subject)
        return four_eyes.permit_awaits(self._catalogue, x, mask, entries)

    @unavailable_as("restriction data")
    async def permits(self, kind: IdKind | None, raw_id: str) -> list[tuple[Exemption, bool]]:
        """The subject's permits in force (in its index; not those stored awaiting confirmation since their grant),
        each with whether it awaits a second identity's confirmation over a restriction it meets."""
        subject = self._resolver.resolve(kind, raw_id, "subject")
        return await self._permits_in(subject, await self._store.index_entries(subject))

    @unavailable_as("restriction data")
    async def permits_meeting(self, r: Restriction) -> list[tuple[Exemption, bool]]:
        """The permits in force of the subjects `r` reaches (its subject, its bound principals) that cover one of its
        measures, each with whether it awaits a second identity's confirmation."""
        mask = self._catalogue.mask_of(r.measures)
        subjects = [r.subject, *(p.subject for p in r.principals if p.lifted_at is None)]
        out = []
        for subject, entries in zip(subjects, await self._store.index_entries_many(subjects), strict=True):
            out += await self._permits_in(subject, entries, mask)
        return out

    async def _permits_in(
        self, subject: SubjectRef, entries: list[IndexEntry], mask: int | None = None
    ) -> list[tuple[Exemption, bool]]:
        """The permits among a subject's index `entries` (covering a measure of `mask`; None: any), read from the
        store, each with four_eyes.permit_awaits against those entries."""
        out = []
        for entry in entries:
            if entry.kind is EntryKind.EXEMPTION and (mask is None or entry.mask & mask):
                found = await self._store.get_exemption(subject, entry.id)
                if found is not None:
                    out.append((found, four_eyes.permit_awaits(self._catalogue, found, entry.mask, entries)))
        return out

    async def _put_exemption(self, x: Exemption, replacing: Exemption | None, entry: RegistryEntry) -> int:
        """Stores the permit over `replacing` (StaleWrite otherwise), and its index entry only once it is in force
        (a pending one is dropped from the index: a changed permit is out of force until confirmed). The entry says
        whether a second identity confirmed it: one granted alone overrides no restriction whose source's lifts need
        confirmation (domain/rules.py)."""
        index_entry = None
        if not x.pending:
            index_entry = IndexEntry(
                EntryKind.EXEMPTION, x.id, None, self._catalogue.measure(x.measure).mask, x.effective_from,
                x.effective_until, authority=x.authority, confirmed=bool(x.confirmed_by),
            )  # fmt: skip
        change = IndexChange(x.subject, EntryKind.EXEMPTION, x.id, None, index_entry)
        await self._before([x.subject])
        await self._store.write_exemption(x, replacing, [change], [Sequenced(x.subject.bucket, entry, x.id)])
        revision = await self._bump()
        await self._after([x.subject])
        return revision
