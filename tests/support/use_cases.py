"""Small builders for the use cases' inputs, so unit tests read as the scenario they check (the gRPC-side twins
are in requests.py)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from debar.common.identifiers import IdKind
from debar.sanction.app.checker import CheckInput
from debar.sanction.app.registry import ExemptionInput, ImposeInput, PrincipalInput
from debar.sanction.domain.model import Role

DAY = 86400
COURT = "Beijing Chaoyang District People's Court"
BASIS = "SPC Provisions on Restricting High Consumption, Art. 3"
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
        document_number="(2026) Jing 0105 Zhi 7 permit 1",
    )  # fmt: skip
