"""Four eyes where a record loses force, on the registry's side: a lift of a restriction whose source says
`lift_needs_confirmation` (the court lists), and a permit that can override such a restriction, take effect only
when a second registry identity confirms them. Until then the lift is pending (the restriction stays in force) and
the permit is stored but honoured by no check. Pure rules: the use case (app/registry.py) reads and writes.

Why permits too: a permit turns a refusal into an allow for its window, and a window may run to 2100, so a permit
one identity could grant alone would be a lift by another name. A permit needs confirmation when it can override a
restriction of a confirming source: when such a source imposes its measure by default (decided from the catalogue,
so that a permit granted before the court order it will meet is held to the same rule), or when such a restriction
reaching the subject already covers it (a court order naming the measure explicitly).

A permit granted by one identity because neither held at the grant (say a RAIL_TICKET_BAN permit for a person
nothing restricts) is in force, but only over restrictions of sources whose lifts need no confirmation: the check
rule (domain/rules.py, adapters/lua/decide.lua) judges it against the restrictions it actually meets, whenever they
arrive. Over a court order naming its measure that comes later it awaits confirmation (`permit_awaits`), and a second
identity's ConfirmExemption makes it override that order too.

Identities compare as objections.same_reviewer does (without case or spacing): the confirmer must not be the one
who asked. Refusing the same identity is PERMISSION_DENIED (who asks is wrong, not the record's state: another
identity's identical request succeeds); a confirmation that does not match what is pending is FAILED_PRECONDITION.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from debar.common.errors import Conflict, PermissionDenied
from debar.sanction.domain.catalogue import Catalogue, Measure
from debar.sanction.domain.model import EntryKind, Exemption, IndexEntry, PendingLift, Restriction
from debar.sanction.domain.objections import same_reviewer as same_identity


def lift_needs_confirmation(catalogue: Catalogue, source_code: str) -> bool:
    """A source the catalogue no longer knows is held to the stricter rule."""
    source = catalogue.sources.get(source_code)
    return source is None or source.lift_needs_confirmation


def ask_lift(
    r: Restriction, *, by: str, reason: str, document_number: str, now: int, needs_confirmation: bool
) -> Restriction:
    """The record after Lift: lifted at once, or (needing confirmation) with the lift pending. Lifting a lifted
    record changes nothing; the asker may restate their own pending lift (a typo in the reason or the document
    number), but another identity confirms it instead of asking again."""
    if r.lifted_at is not None:
        return r
    if not needs_confirmation:
        return _lifted(r, by, "", reason, document_number, now)
    pending = r.pending_lift
    if pending is not None and not same_identity(pending.asked_by, by):
        raise Conflict(
            f"restriction {r.id}: a lift asked by {pending.asked_by} awaits confirmation; ConfirmLift confirms it"
        )
    if pending is not None and (pending.reason, pending.document_number) == (reason, document_number):
        return r
    return replace(r, pending_lift=PendingLift(by, now, reason, document_number), updated_at=now)


def weakening(stored: Restriction, new: Restriction) -> str:
    """What an Impose of `new` over `stored` (same id; pseudonyms under the same key) would take away from a record
    in force, "" for nothing: for a source whose lifts need confirmation, one identity may not do by Impose what a
    lift needs two for (end it, start it later, drop a measure or a principal, move it to another subject)."""
    if stored.lifted_at is not None:
        return ""
    if new.subject.pseudonym != stored.subject.pseudonym or new.subject.kind is not stored.subject.kind:
        return "it names another subject"
    if new.effective_from > stored.effective_from:
        return "it starts later"
    if new.effective_until is not None and (
        stored.effective_until is None or new.effective_until < stored.effective_until
    ):
        return "it ends earlier"
    dropped = [code for code in stored.measures if code not in new.measures]
    if dropped:
        return f"it drops {', '.join(dropped)}"
    kept = {(p.subject.pseudonym, p.role) for p in new.principals}
    if any((p.subject.pseudonym, p.role) not in kept for p in stored.principals if p.lifted_at is None):
        return "it drops a principal"
    return ""


def confirm_lift(r: Restriction, *, by: str, document_number: str, now: int) -> Restriction:
    """The pending lift takes effect, confirmed by another identity naming the same court decision. Confirming a
    lift one already confirmed changes nothing (a retry)."""
    if r.lifted_at is not None:
        if r.lift_confirmed_by and same_identity(r.lift_confirmed_by, by):
            return r
        raise Conflict(f"restriction {r.id} is already lifted")
    pending = r.pending_lift
    if pending is None:
        raise Conflict(f"restriction {r.id} has no lift awaiting confirmation")
    if same_identity(pending.asked_by, by):
        raise PermissionDenied(
            f"the lift of restriction {r.id} was asked by {pending.asked_by}; a different registry identity must "
            "confirm it"
        )
    if document_number != pending.document_number:
        raise Conflict(f"document_number: the pending lift of restriction {r.id} names {pending.document_number!r}")
    return _lifted(r, pending.asked_by, by, pending.reason, pending.document_number, now)


def _lifted(r: Restriction, by: str, confirmed_by: str, reason: str, document_number: str, now: int) -> Restriction:
    return replace(
        r, lifted_at=now, lift_reason=reason, lift_document_number=document_number, lifted_by=by,
        lift_confirmed_by=confirmed_by, pending_lift=None, updated_at=now,
    )  # fmt: skip


def exemption_needs_confirmation(catalogue: Catalogue, measure: Measure, reaching: Iterable[IndexEntry]) -> bool:
    """Whether a permit for `measure` can override a restriction of a source whose lifts need confirmation (see the
    module): by the catalogue's defaults, or by the restrictions already reaching the subject (`reaching`: the
    subject's index entries)."""
    confirming = {code for code, s in catalogue.sources.items() if s.lift_needs_confirmation}
    if any(measure.code in catalogue.sources[code].default_measures for code in confirming):
        return True
    return any(
        e.kind is EntryKind.RESTRICTION and e.mask & measure.mask and lift_needs_confirmation(catalogue, e.source)
        for e in reaching
    )


def one_identity_sources(catalogue: Catalogue) -> frozenset[str]:
    """The sources whose restrictions a permit granted by one identity may override: those whose lifts need no
    confirmation (any other source, or one the catalogue no longer knows, needs a confirmed permit)."""
    return frozenset(code for code in catalogue.sources if not lift_needs_confirmation(catalogue, code))


def meets_confirming(catalogue: Catalogue, x: Exemption, mask: int, reaching: Iterable[IndexEntry]) -> bool:
    """Whether a restriction of a source whose lifts need confirmation, among `reaching` (the subject's index
    entries), covers the permit's measure (`mask`) for part of its window: one a permit granted by one identity does
    not override."""
    return any(
        e.kind is EntryKind.RESTRICTION and e.mask & mask and lift_needs_confirmation(catalogue, e.source)
        and e.effective_from < x.effective_until and (e.effective_until is None or x.effective_from < e.effective_until)
        and (e.effective_until is None or e.effective_from < e.effective_until)
        for e in reaching
    )  # fmt: skip


def permit_awaits(catalogue: Catalogue, x: Exemption, mask: int, reaching: Iterable[IndexEntry]) -> bool:
    """What `awaiting_confirmation` says: stored awaiting confirmation (honoured by no check), or granted by one
    identity and meeting a restriction it does not override until a second confirms it."""
    return x.pending or (not x.confirmed_by and meets_confirming(catalogue, x, mask, reaching))


def grant(new: Exemption, existing: Exemption | None, *, by: str, now: int, needs_confirmation: bool) -> Exemption:
    """The permit as stored after GrantExemption: in force at once, or awaiting confirmation. Granting a permit
    exactly as it stands changes nothing; changing a permit that needs confirmation takes it out of force until
    the change is confirmed; a permit awaiting another identity's confirmation is confirmed, not granted again."""
    if existing is None:
        return replace(new, granted_by=by, confirmed_by="", pending=needs_confirmation, created_at=now)
    own = same_identity(existing.granted_by, by)
    if _same_permit(existing, new) and (not existing.pending or own):
        return existing
    if existing.pending and not own:
        raise Conflict(
            f"exemption {new.id}: granted by {existing.granted_by}, awaits confirmation; ConfirmExemption confirms it"
        )
    return replace(new, granted_by=by, confirmed_by="", pending=needs_confirmation, created_at=now)


@dataclass(frozen=True, slots=True)
class PermitAsRead:
    """What the confirming identity read on the court's permit. A confirmation puts in force only a permit that
    says the same: its id covers the measure, the start and the document but not the end, and the asker may
    restate a permit awaiting confirmation (same id and document, a window to 2099) right before it is confirmed."""

    document_number: str
    measure: str
    effective_from: int
    effective_until: int


def confirm_exemption(x: Exemption, *, by: str, read: PermitAsRead, awaits: bool) -> Exemption:
    """`awaits`: permit_awaits, as read now (a permit in force that meets a court order is confirmed like one
    stored pending). A permit that does not say what was read is refused first, even to the identity that already
    confirmed it (an OK always means "the permit says what you read"), and the refusal names the field, never what
    the permit says instead: no read shows a permit awaiting confirmation, and a refusal is not to be one."""
    stored = PermitAsRead(x.document_number, x.measure, x.effective_from, x.effective_until)
    for field in ("document_number", "measure", "effective_from", "effective_until"):
        if getattr(read, field) != getattr(stored, field):
            raise Conflict(f"{field}: exemption {x.id} does not say what was read; it is not confirmed")
    if x.confirmed_by and same_identity(x.confirmed_by, by):
        return x
    if x.confirmed_by or not awaits:
        raise Conflict(f"exemption {x.id} awaits no confirmation")
    if same_identity(x.granted_by, by):
        raise PermissionDenied(
            f"exemption {x.id} was granted by {x.granted_by}; a different registry identity must confirm it"
        )
    return replace(x, pending=False, confirmed_by=by)


def _same_permit(a: Exemption, b: Exemption) -> bool:
    """Equal in what the permit says (not who granted it, when, or its confirmation)."""
    keep = {"granted_by": "", "confirmed_by": "", "pending": False, "created_at": 0}
    return replace(a, **keep) == replace(b, **keep)  # type: ignore[arg-type]
