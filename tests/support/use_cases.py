"""Small builders for the use cases' inputs, so unit tests read as the scenario they check (the gRPC-side twins
are in requests.py), and the two registry identities four eyes need."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from debar.common.identifiers import IdKind
from debar.sanction.app.checker import CheckInput
from debar.sanction.app.registry import ExemptionInput, ImposeInput, PrincipalInput, Registry
from debar.sanction.domain.model import Exemption, Restriction, Role

DAY = 86400
COURT = "Beijing Chaoyang District People's Court"
BASIS = "SPC Provisions on Restricting High Consumption, Art. 3"
DOCUMENT = "(2026) Jing 0105 Zhi 7 permit 1"
LIFT_DOCUMENT = "(2026) Jing 0105 Zhi 7 decision 2"
CLERK, SECOND_CLERK = "clerk-wang", "clerk-zhao"  # two registry identities: the one who asks, the one who confirms
_case = itertools.count(1)


def kind_of(number: str) -> IdKind:
    return IdKind.USCC if number.startswith("9") else IdKind.RIC


def impose_input(
    number: str,
    *,
    start: int,
    end: int | None = None,
    source: str = "court_consumption_order",
    measures: Sequence[str] = (),
    principals: Sequence[tuple[str, Role]] = (),
    name: str = "",
    source_id: str = "",
) -> ImposeInput:
    case = next(_case)
    return ImposeInput(
        source=source,
        source_id=source_id or f"U-{case}",
        subject_kind=kind_of(number),
        subject_id=number,
        name=name or ("Example Trading Co." if number.startswith("9") else "Zhang San"),
        legal_basis=BASIS,
        authority=COURT,
        case_number=f"(2026) Jing 0105 Zhi {case}",
        measures=measures,
        effective_from=start,
        effective_until=end,
        principals=[PrincipalInput(IdKind.RIC, p, role, "Li Si") for p, role in principals],
    )


def check_input(number: str, measure: str, at: int | None = None, min_revision: int = 0) -> CheckInput:
    return CheckInput(kind_of(number), number, measure, at, min_revision=min_revision)


def exemption_input(number: str, measure: str, start: int | None, end: int | None) -> ExemptionInput:
    return ExemptionInput(
        kind_of(number), number, measure, start, end, COURT, reason="funeral of a parent",
        document_number=DOCUMENT,
    )  # fmt: skip


async def lift_confirmed(registry: Registry, rid: str, reason: str = "debt paid") -> tuple[Restriction, int]:
    """Lifted by one clerk and, where the source needs it, confirmed by another."""
    asked, revision = await registry.lift(rid, reason, LIFT_DOCUMENT, CLERK)
    if asked.pending_lift is None:
        return asked, revision
    return await registry.confirm_lift(rid, LIFT_DOCUMENT, SECOND_CLERK)


async def exemption_confirmed(registry: Registry, item: ExemptionInput) -> tuple[Exemption, int]:
    """Granted by one clerk and, where it needs it, confirmed by another."""
    granted, revision = await registry.grant_exemption(item, CLERK)
    if not granted.pending:
        return granted, revision
    return await registry.confirm_exemption(
        item.subject_kind, item.subject_id, granted.id, granted.document_number, SECOND_CLERK, item.measure,
        item.effective_from, item.effective_until,
    )  # fmt: skip
