"""What a registry write puts in the log: who, when, what action, and the record before and after, with what
changed named (an Impose that shortens a restriction or drops a measure says so). Pure: the registry use cases
build these entries (domain/log_entries.py: RegistryEntry) and the store sequences them in the same script call
as the write; GetRestriction reads them back as the record's history."""

from __future__ import annotations

from collections.abc import Sequence

from debar.sanction.domain.log_entries import RegistryEntry
from debar.sanction.domain.model import Exemption, Restriction


class Action:
    IMPOSE = "impose"
    LIFT = "lift"  # in force until confirmed where the source needs four eyes: see `changed`
    CONFIRM_LIFT = "confirm_lift"
    CORRECT = "correct"  # an overturned objection, confirmed: the record (or one person's link) was wrong
    DISPUTE = "dispute"
    UNDISPUTE = "undispute"
    GRANT_EXEMPTION = "grant_exemption"
    CONFIRM_EXEMPTION = "confirm_exemption"


def _time(value: int | None) -> str:
    return "" if value is None else str(value)


def restriction_fields(r: Restriction) -> tuple[tuple[str, str], ...]:
    """The record as the log shows it, in a fixed order (bookkeeping times left out)."""
    principals = " ".join(
        f"{p.role.name}:{p.subject.pseudonym}" + (f":lifted@{p.lifted_at}" if p.lifted_at is not None else "")
        for p in r.principals
    )
    pending = r.pending_lift
    return (
        ("source", r.source),
        ("source_id", r.source_id),
        ("list_version", r.list_version),
        ("subject", r.subject.pseudonym),
        ("masked_name", r.masked_name),
        ("measures", " ".join(r.measures)),
        ("legal_basis", r.legal_basis),
        ("authority", r.authority),
        ("case_number", r.case_number),
        ("document_number", r.document_number),
        ("decided_on", r.decided_on),
        ("effective_from", str(r.effective_from)),
        ("effective_until", _time(r.effective_until)),
        ("principals", principals),
        ("lifted_at", _time(r.lifted_at)),
        ("lift_reason", r.lift_reason),
        ("lift_document_number", r.lift_document_number),
        ("lifted_by", r.lifted_by),
        ("lift_confirmed_by", r.lift_confirmed_by),
        ("pending_lift", f"{pending.asked_by} {pending.asked_at} {pending.document_number}" if pending else ""),
        ("disputed", "yes" if r.disputed else ""),
        ("corrected", "yes" if r.corrected else ""),
    )


def exemption_fields(x: Exemption) -> tuple[tuple[str, str], ...]:
    return (
        ("subject", x.subject.pseudonym),
        ("measure", x.measure),
        ("effective_from", str(x.effective_from)),
        ("effective_until", str(x.effective_until)),
        ("authority", x.authority),
        ("reason", x.reason),
        ("document_number", x.document_number),
        ("granted_by", x.granted_by),
        ("confirmed_by", x.confirmed_by),
        ("pending", "yes" if x.pending else ""),
    )


def _ends_earlier(new: int | None, old: int | None) -> bool:
    """None: no end (until lifted)."""
    return new is not None and (old is None or new < old)


def restriction_changes(old: Restriction | None, new: Restriction) -> tuple[str, ...]:
    """What a write did to the record, worst first: `created`; `shortened` (it now ends earlier, or gained an end),
    `lengthened`, `starts_later`, `starts_earlier`; `measures_dropped:A B` and `measures_added:C`;
    `principals_dropped` and `principals_added`; `lifted`, `lift_pending`, `lift_confirmed`, `corrected`,
    `disputed`, `undisputed`; then `field:NAME` for every other field that differs."""
    if old is None:
        return ("created",)
    out: list[str] = []
    if _ends_earlier(new.effective_until, old.effective_until):
        out.append("shortened")
    elif _ends_earlier(old.effective_until, new.effective_until):
        out.append("lengthened")
    if new.effective_from > old.effective_from:
        out.append("starts_later")
    elif new.effective_from < old.effective_from:
        out.append("starts_earlier")
    dropped = [m for m in old.measures if m not in new.measures]
    added = [m for m in new.measures if m not in old.measures]
    if dropped:
        out.append("measures_dropped:" + " ".join(dropped))
    if added:
        out.append("measures_added:" + " ".join(added))
    old_links = {(p.subject.pseudonym, p.role) for p in old.principals}
    new_links = {(p.subject.pseudonym, p.role) for p in new.principals}
    if old_links - new_links:
        out.append("principals_dropped")
    if new_links - old_links:
        out.append("principals_added")
    if new.lifted_at is not None and old.lifted_at is None:
        out.append("lifted")
    if new.pending_lift is not None and old.pending_lift is None:
        out.append("lift_pending")
    if new.lift_confirmed_by and not old.lift_confirmed_by:
        out.append("lift_confirmed")
    if new.corrected and not old.corrected:
        out.append("corrected")
    if new.disputed != old.disputed:
        out.append("disputed" if new.disputed else "undisputed")
    named = {"effective_until", "effective_from", "measures", "principals", "lifted_at", "pending_lift",
             "lift_confirmed_by", "corrected", "disputed"}  # fmt: skip
    before, after = dict(restriction_fields(old)), dict(restriction_fields(new))
    out += [f"field:{k}" for k in after if k not in named and before.get(k) != after[k]]
    return tuple(out)


def _diff(
    old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The fields that differ, before and after (all of `new`'s non-empty ones when there was no `old`)."""
    if not old:
        return (), tuple(kv for kv in new if kv[1])  # the pairs themselves: no tuple made per field
    before = dict(old)
    changed = [k for k, v in new if before.get(k) != v]
    return tuple((k, before[k]) for k in changed), tuple((k, v) for k, v in new if k in changed)


def restriction_entry(
    action: str, old: Restriction | None, new: Restriction, caller: str, at: int, *, document_number: str = "",
    reason: str = "", on_behalf_of: str = "",
) -> RegistryEntry:  # fmt: skip
    before, after = _diff(restriction_fields(old) if old else (), restriction_fields(new))
    return RegistryEntry(
        at=at, caller=caller, on_behalf_of=on_behalf_of, action=action, target=new.id,
        subject=new.subject.pseudonym, document_number=document_number, reason=reason,
        changed=restriction_changes(old, new), before=before, after=after,
    )  # fmt: skip


def exemption_entry(
    action: str, old: Exemption | None, new: Exemption, caller: str, at: int, *, on_behalf_of: str = ""
) -> RegistryEntry:
    before, after = _diff(exemption_fields(old) if old else (), exemption_fields(new))
    changed: list[str] = ["created"] if old is None else []
    if old is not None and new.effective_until < old.effective_until:
        changed.append("shortened")
    elif old is not None and new.effective_until > old.effective_until:
        changed.append("lengthened")
    if new.pending and (old is None or not old.pending):
        changed.append("pending_confirmation")
    if old is not None and not old.confirmed_by and new.confirmed_by:  # pending, or in force granted alone
        changed.append("confirmed")
    return RegistryEntry(
        at=at, caller=caller, on_behalf_of=on_behalf_of, action=action, target=new.id,
        subject=new.subject.pseudonym, document_number=new.document_number, reason=new.reason,
        changed=tuple(changed), before=before, after=after,
    )  # fmt: skip
