"""What Registry.build refuses before anything is stored: the rules of domain.md on who may be listed, terms the
law gives in years, principals named twice, decision dates that cannot be (pure: no store is asked)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from stdnum.cn import ric

from debar.common.errors import InvalidField
from debar.common.identifiers import IdKind, Placement, Pseudonymiser, PseudonymKey
from debar.common.settings import DEV_BUCKET_KEY
from debar.sanction.app.checker import RevisionFloor
from debar.sanction.app.registry import ImposeInput, PrincipalInput, Registry
from debar.sanction.domain.calendar import add_months
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.model import Role
from debar.sanction.domain.subjects import SubjectResolver
from tests.support.subjects import new_uscc

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC).timestamp()


def epoch(day: str) -> int:
    return int(datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp())


def born(day: str) -> str:
    body = f"110105{day.replace('-', '')}123"
    return body + ric.calc_check_digit(body + "0")


def registry() -> Registry:
    resolver = SubjectResolver(
        Pseudonymiser([PseudonymKey("k1", b"unit-test-secret-of-32-bytes-or-more")]),
        Placement(DEV_BUCKET_KEY.encode()),
    )
    return Registry(None, load_default_catalogue(), resolver, RevisionFloor(None), clock=lambda: NOW)  # type: ignore[arg-type]


def listing(person: str, source: str = "dishonest_persons_list", **fields: object) -> ImposeInput:
    base = ImposeInput(source=source, source_id="S-1", subject_kind=IdKind.RIC, subject_id=person,
                       legal_basis="basis", authority="court", case_number="C-1")  # fmt: skip
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "months", "end"),
    [
        ("2026-03-11", 36, "2029-03-11"),  # across 2028-02-29: three calendar years, not 1095 days
        ("2024-02-29", 12, "2025-02-28"),  # a day the target month lacks becomes its last
        ("2026-01-31", 1, "2026-02-28"),
        ("2025-12-15", 24, "2027-12-15"),
    ],
)
def test_terms_in_years_end_on_the_same_date_years_later(start, months, end):
    assert add_months(epoch(start), months) == epoch(end)


def test_a_major_violation_bars_bidding_until_the_third_anniversary_of_the_penalty():
    built = registry().build(
        ImposeInput(
            source="procurement_major_violation",
            source_id="P-1",
            subject_kind=IdKind.USCC,
            subject_id=new_uscc(),
            legal_basis="basis",
            authority="bureau",
            case_number="C-9",
            effective_from=epoch("2026-03-11"),
        )
    )
    assert built.effective_until == epoch("2029-03-11")


def test_minors_are_never_put_on_the_dishonest_persons_list():
    with pytest.raises(InvalidField) as refused:
        registry().build(listing(born("2015-01-01"), decided_on="2026-06-01"))
    assert refused.value.field == "subject.id"
    assert "under 18 on 2026-06-01" in refused.value.message
    assert born("2015-01-01") not in refused.value.message  # never the clear identifier
    # 18 on the day of the decision: listed; a court consumption order is not bound by that rule
    assert registry().build(listing(born("2008-06-01"), decided_on="2026-06-01"))
    with pytest.raises(InvalidField):
        registry().build(listing(born("2008-06-02"), decided_on="2026-06-01"))
    assert registry().build(listing(born("2015-01-01"), source="court_consumption_order"))
    # without a decision date, the age at the start of the restriction decides
    with pytest.raises(InvalidField):
        registry().build(listing(born("2010-01-01"), effective_from=epoch("2026-01-01")))


def test_a_birth_date_in_the_future_is_not_a_valid_identifier():
    tomorrow = date.fromtimestamp(NOW).replace(year=2099).isoformat()
    with pytest.raises(InvalidField) as refused:
        registry().build(listing(born(tomorrow), source="court_consumption_order"))
    assert refused.value.field == "subject.id" and "future" in refused.value.message


@pytest.mark.parametrize("decided_on", ["1999-12-31", "2026-11-29", "2099-01-01"])
def test_a_decision_date_before_2000_or_after_today_is_refused(decided_on):
    with pytest.raises(InvalidField) as refused:
        registry().build(listing(born("1980-01-01"), decided_on=decided_on))
    assert refused.value.field == "decided_on"


def test_a_principal_named_twice_in_the_same_role_is_refused():
    person = born("1980-01-01")
    same = PrincipalInput(IdKind.RIC, person, Role.LEGAL_REPRESENTATIVE)
    company = listing(new_uscc(), source="procurement_debarment", subject_kind=IdKind.USCC)
    with pytest.raises(InvalidField) as refused:
        registry().build(replace(company, principals=[same, PrincipalInput(IdKind.RIC, person, Role.PRINCIPAL), same]))
    assert refused.value.field == "principals[2]" and "principals[0]" in refused.value.message
