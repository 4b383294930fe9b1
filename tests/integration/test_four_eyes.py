"""Four eyes where a record loses force, over real gRPC and a real Redis: an overturn, a lift of a court list and a
permit against one take effect only when a second, different identity confirms them; the same identity confirming
its own is PERMISSION_DENIED; a lift or a permit without the court's document number is refused. Identities are
callers of a test scopes file, named in local mode by the x-debar-caller header (two reviewers, two clerks)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
import pytest

from debar.v1 import (
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    sanction_pb2,
    sanction_pb2_grpc,
)
from tests.support.requests import (
    DAY,
    LIFT_DOCUMENT,
    PERMIT_DOCUMENT,
    check_request,
    impose_request,
    permit_confirmation,
    subject,
    ts,
)
from tests.support.servers import ServiceProcess, start_service
from tests.support.subjects import new_ric

TIMEOUT = 5
DENY, ALLOW = common_pb2.OUTCOME_DENY, common_pb2.OUTCOME_ALLOW
REVIEWER_SCOPES = ["objections:review", "decisions:read", "registry:read"]
CLERK_SCOPES = ["registry:write", "registry:read"]
IDENTITIES = {
    "judge-li": {"scopes": REVIEWER_SCOPES},
    "judge-zhang": {"scopes": REVIEWER_SCOPES},
    "clerk-wang": {"scopes": CLERK_SCOPES},
    "clerk-zhao": {"scopes": CLERK_SCOPES},
    "hotel-desk": {"scopes": ["check:*", "objections:file"]},
}


@pytest.fixture(scope="module")
def sanction_four_eyes(
    service_env: dict[str, str], logs_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    scopes = json.loads(resources.files("debar").joinpath("data/scopes.json").read_text())
    scopes["callers"].update(IDENTITIES)
    path = tmp_path_factory.mktemp("four-eyes") / "scopes.json"
    path.write_text(json.dumps(scopes))
    service = start_service("sanction", {**service_env, "DEBAR_SCOPES_FILE": str(path)}, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


class As:
    """Stubs that call as one identity."""

    def __init__(self, channel: grpc.Channel, name: str) -> None:
        self.name = name
        self._metadata = (("x-debar-caller", name),)
        self._registry = registry_pb2_grpc.RegistryServiceStub(channel)
        self._decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        self._checks = sanction_pb2_grpc.SanctionServiceStub(channel)

    def __getattr__(self, method: str) -> Any:
        for stub in (self._registry, self._decisions, self._checks):
            if hasattr(stub, method):
                rpc = getattr(stub, method)
                return lambda request: rpc(request, timeout=TIMEOUT, metadata=self._metadata)
        raise AttributeError(method)


@pytest.fixture(scope="module")
def people(sanction_four_eyes: ServiceProcess) -> Iterator[dict[str, As]]:
    with grpc.insecure_channel(sanction_four_eyes.address) as channel:
        yield {name: As(channel, name) for name in IDENTITIES}


def refused_by(desk: As, person: str, measure: str = "HOTEL_STAR_RATED") -> str:
    decision = desk.Check(check_request(person, measure))
    assert decision.outcome == DENY
    return decision.decision_id  # type: ignore[no-any-return]


def outcome(desk: As, person: str, measure: str = "HOTEL_STAR_RATED") -> int:
    return desk.Check(check_request(person, measure)).outcome  # type: ignore[no-any-return]


def refused_call(call: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def revision(clerk: As, person: str) -> int:
    return clerk.ListRestrictions(registry_pb2.ListRestrictionsRequest(subject=subject(person))).revision  # type: ignore[no-any-return]


def get(clerk: As, rid: str) -> registry_pb2.Restriction:
    """The record as stored, without its history (which only GetRestriction gives: test_registry_history.py)."""
    found = clerk.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid))
    found.ClearField("history")
    return found  # type: ignore[no-any-return]


# -- objections ----------------------------------------------------------------------------------------------


def overturned_by(judge: As, desk: As, person: str, reviewer: str = "") -> decision_pb2.Objection:
    """A refusal of `person`, objected to, taken under review and resolved as overturned by `judge` alone.
    `reviewer`: the request's field (empty: the actor is the caller's identity)."""
    filed = desk.FileObjection(
        decision_pb2.FileObjectionRequest(
            decision_id=refused_by(desk, person),
            statement="That is not me.",
            contact="me@example.com",
            subject=subject(person),
        )
    )
    judge.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=filed.objection_id, reviewer=reviewer))
    return judge.ResolveObjection(  # type: ignore[no-any-return]
        decision_pb2.ResolveObjectionRequest(
            objection_id=filed.objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="mistaken",
            reviewer=reviewer,
        )
    )  # fmt: skip


def test_one_reviewer_cannot_overturn_alone(people):
    """The attack: one credential reviews and overturns. Before four eyes the next check allowed; now the record
    stays in force until a different reviewer confirms, and the same one confirming is refused. (Each names
    itself in the reviewer field too, as today's clients do: the identity work makes a name that differs from the
    caller's identity INVALID_ARGUMENT.)"""
    li, zhang, clerk, desk = people["judge-li"], people["judge-zhang"], people["clerk-wang"], people["hotel-desk"]
    person = new_ric()
    rid = clerk.Impose(impose_request(person)).restriction.id
    proposed = overturned_by(li, desk, person, reviewer="judge-li")
    assert outcome(desk, person) == DENY  # still in force
    assert proposed.state == decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION
    assert (proposed.resolved_by, proposed.confirmation_awaited) == ("judge-li", True)
    assert get(clerk, rid).status == registry_pb2.RESTRICTION_STATUS_DISPUTED

    confirm = decision_pb2.ConfirmResolutionRequest(objection_id=proposed.objection_id)
    own = refused_call(lambda: li.ConfirmResolution(confirm))  # no reviewer named: the caller's identity
    assert own.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "resolved by judge-li; a different reviewer must confirm it" in own.details()
    again = refused_call(
        lambda: li.ResolveObjection(
            decision_pb2.ResolveObjectionRequest(
                objection_id=proposed.objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="again"
            )
        )
    )
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert li.GetObjection(decision_pb2.GetObjectionRequest(objection_id=proposed.objection_id)) == proposed
    assert outcome(desk, person) == DENY

    done = zhang.ConfirmResolution(confirm)
    assert done.state == decision_pb2.OBJECTION_STATE_OVERTURNED
    assert (done.resolved_by, done.confirmed_by, done.confirmation_awaited) == ("judge-li", "judge-zhang", False)
    assert [(t.to_state, t.actor) for t in done.history][-2:] == [
        (decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION, "judge-li"),
        (decision_pb2.OBJECTION_STATE_OVERTURNED, "judge-zhang"),
    ]
    assert outcome(desk, person) == ALLOW
    lifted = get(clerk, rid)
    assert lifted.status == registry_pb2.RESTRICTION_STATUS_LIFTED
    assert "judge-li" in lifted.lift_reason and "judge-zhang" in lifted.lift_reason


def test_a_second_reviewer_may_keep_the_record_instead(people):
    li, zhang, clerk, desk = people["judge-li"], people["judge-zhang"], people["clerk-wang"], people["hotel-desk"]
    person = new_ric()
    rid = clerk.Impose(impose_request(person)).restriction.id
    proposed = overturned_by(li, desk, person)  # no reviewer named: the caller's identity
    assert proposed.resolved_by == "judge-li"
    kept = zhang.ResolveObjection(
        decision_pb2.ResolveObjectionRequest(
            objection_id=proposed.objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_UPHELD, reason="it is them"
        )
    )
    assert (kept.state, kept.resolved_by) == (decision_pb2.OBJECTION_STATE_UPHELD, "judge-zhang")
    assert get(clerk, rid).status == registry_pb2.RESTRICTION_STATUS_ACTIVE
    assert outcome(desk, person) == DENY


def test_confirming_is_for_reviewers_and_confirming_a_lift_for_clerks(people):
    li, clerk = people["judge-li"], people["clerk-wang"]
    request = decision_pb2.ConfirmResolutionRequest(objection_id="Oabc000000000000")
    assert refused_call(lambda: clerk.ConfirmResolution(request)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused_call(lambda: li.ConfirmResolution(request)).code() == grpc.StatusCode.NOT_FOUND
    lift = registry_pb2.ConfirmLiftRequest(restriction_id="RNOSUCHRECORD0000", document_number=LIFT_DOCUMENT)
    assert refused_call(lambda: li.ConfirmLift(lift)).code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused_call(lambda: clerk.ConfirmLift(lift)).code() == grpc.StatusCode.NOT_FOUND


# -- lifts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("document", ["", "   "])
def test_a_lift_without_the_courts_document_number_is_refused_and_writes_nothing(people, document):
    clerk, desk = people["clerk-wang"], people["hotel-desk"]
    person = new_ric()
    imposed = clerk.Impose(impose_request(person, source="railway_passenger_credit")).restriction  # no confirmation
    request = registry_pb2.LiftRequest(restriction_id=imposed.id, reason="fare paid", document_number=document)
    before = revision(clerk, person)
    error = refused_call(lambda: clerk.Lift(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("document_number:")
    assert get(clerk, imposed.id) == imposed and revision(clerk, person) == before
    assert outcome(desk, person, "RAIL_TICKET_BAN") == DENY


def test_a_court_list_lift_stays_pending_until_a_second_registry_identity_confirms_it(people):
    wang, zhao, desk = people["clerk-wang"], people["clerk-zhao"], people["hotel-desk"]
    person = new_ric()
    rid = wang.Impose(impose_request(person)).restriction.id
    asked = wang.Lift(registry_pb2.LiftRequest(restriction_id=rid, reason="debt paid", document_number=LIFT_DOCUMENT))
    pending = asked.restriction
    assert pending.status == registry_pb2.RESTRICTION_STATUS_ACTIVE and not pending.HasField("lifted_at")
    assert (pending.pending_lift.asked_by, pending.pending_lift.document_number) == ("clerk-wang", LIFT_DOCUMENT)
    assert abs(pending.pending_lift.asked_at.seconds - time.time()) < 60
    assert get(zhao, rid).pending_lift == pending.pending_lift  # who asked, shown to anyone who reads it
    assert outcome(desk, person) == DENY

    confirm = registry_pb2.ConfirmLiftRequest(restriction_id=rid, document_number=LIFT_DOCUMENT)
    own = refused_call(lambda: wang.ConfirmLift(confirm))
    assert own.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "asked by clerk-wang; a different registry identity must confirm it" in own.details()
    other_document = registry_pb2.ConfirmLiftRequest(restriction_id=rid, document_number="(2026) another")
    assert refused_call(lambda: zhao.ConfirmLift(other_document)).code() == grpc.StatusCode.FAILED_PRECONDITION
    missing = refused_call(lambda: zhao.ConfirmLift(registry_pb2.ConfirmLiftRequest(restriction_id=rid)))
    assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT and missing.details().startswith("document_number:")
    assert get(zhao, rid) == pending and outcome(desk, person) == DENY

    lifted = zhao.ConfirmLift(confirm)
    assert lifted.revision > asked.revision
    shown = lifted.restriction
    assert shown.status == registry_pb2.RESTRICTION_STATUS_LIFTED and not shown.HasField("pending_lift")
    assert (shown.lifted_by, shown.lift_confirmed_by, shown.lift_document_number, shown.lift_reason) == (
        "clerk-wang", "clerk-zhao", LIFT_DOCUMENT, "debt paid",
    )  # fmt: skip
    assert desk.Check(check_request(person, "HOTEL_STAR_RATED", min_revision=lifted.revision)).outcome == ALLOW


def test_a_lift_of_a_source_that_needs_no_confirmation_takes_effect_at_once(people):
    wang, desk = people["clerk-wang"], people["hotel-desk"]
    person = new_ric()
    rid = wang.Impose(impose_request(person, source="railway_passenger_credit")).restriction.id
    lifted = wang.Lift(
        registry_pb2.LiftRequest(restriction_id=rid, reason="fare paid", document_number=LIFT_DOCUMENT)
    ).restriction
    assert lifted.status == registry_pb2.RESTRICTION_STATUS_LIFTED
    assert (lifted.lifted_by, lifted.lift_confirmed_by) == ("clerk-wang", "")
    assert outcome(desk, person, "RAIL_TICKET_BAN") == ALLOW


def test_the_catalogue_says_which_sources_need_a_second_identity_to_lift(people):
    listed = people["hotel-desk"].ListMeasures(sanction_pb2.ListMeasuresRequest())
    needs = {s.code: s.lift_needs_confirmation for s in listed.sources}
    assert needs["court_consumption_order"] and needs["dishonest_persons_list"]
    assert not needs["railway_passenger_credit"] and not needs["procurement_debarment"]


# -- permits -------------------------------------------------------------------------------------------------


def permit(person: str, document: str = PERMIT_DOCUMENT) -> registry_pb2.GrantExemptionRequest:
    return registry_pb2.GrantExemptionRequest(
        subject=subject(person), measure="HOTEL_STAR_RATED", effective_from=ts(time.time() - DAY),
        effective_until=ts(time.time() + DAY), authority="Chaoyang Court", reason="funeral", document_number=document,
    )  # fmt: skip


def test_a_permit_against_a_court_list_is_honoured_only_once_a_second_identity_confirms_it(people):
    wang, zhao, desk = people["clerk-wang"], people["clerk-zhao"], people["hotel-desk"]
    person = new_ric()
    wang.Impose(impose_request(person))
    granted = wang.GrantExemption(permit(person)).exemption
    assert granted.awaiting_confirmation and granted.granted_by == "clerk-wang"
    assert outcome(desk, person) == DENY

    confirm = permit_confirmation(subject(person), granted.id, granted)
    own = refused_call(lambda: wang.ConfirmExemption(confirm))
    assert own.code() == grpc.StatusCode.PERMISSION_DENIED
    assert outcome(desk, person) == DENY
    confirmed = zhao.ConfirmExemption(confirm)
    assert not confirmed.exemption.awaiting_confirmation and confirmed.exemption.confirmed_by == "clerk-zhao"
    allowed = desk.Check(check_request(person, "HOTEL_STAR_RATED", min_revision=confirmed.revision))
    assert allowed.outcome == ALLOW and allowed.exemption.exemption_id == granted.id


def test_a_permit_without_the_courts_document_number_is_refused_and_writes_nothing(people):
    wang, desk = people["clerk-wang"], people["hotel-desk"]
    person = new_ric()
    wang.Impose(impose_request(person))
    before = revision(wang, person)
    error = refused_call(lambda: wang.GrantExemption(permit(person, document="")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("document_number:")
    assert revision(wang, person) == before and outcome(desk, person) == DENY


# -- what the second identity confirms: the permit it could read, the subject it names --------------------------


def test_a_second_identity_confirms_a_permit_only_as_it_read_it(people):
    """The attack (one clerk, an honest second one): wang asks for a one-day funeral permit against a court order
    under the court's genuine document; zhao reads that permit on the court's decision and confirms. The permit's
    id covers its measure, start and document but not its end, and the asker may restate their own pending permit,
    so wang restates it, same id and document, to 2099 first: zhao's confirmation by (subject, id, document) put
    that in force, a court order lifted for 73 years by one identity. Now the confirmation names the measure and
    window zhao read too, and a permit that says otherwise is not confirmed (FAILED_PRECONDITION naming the field):
    the court order still refuses, in 2090 and today. A confirmation that leaves them out is INVALID_ARGUMENT."""
    wang, zhao, desk = people["clerk-wang"], people["clerk-zhao"], people["hotel-desk"]
    person = new_ric()
    wang.Impose(impose_request(person))
    courts_permit = permit(person)  # one day, as the court's permit says
    granted = wang.GrantExemption(courts_permit).exemption
    assert granted.awaiting_confirmation
    stretched = permit(person)
    stretched.effective_from.CopyFrom(courts_permit.effective_from)
    stretched.effective_until.CopyFrom(ts(4102358400))  # 2099-12-31
    restated = wang.GrantExemption(stretched).exemption
    assert restated.id == granted.id and restated.awaiting_confirmation

    as_read = permit_confirmation(subject(person), granted.id, courts_permit)
    refused = refused_call(lambda: zhao.ConfirmExemption(as_read))
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION and "effective_until" in refused.details()
    in_2090 = desk.Check(check_request(person, "HOTEL_STAR_RATED", at=3786912000))
    assert in_2090.outcome == DENY, f"the court order is overridden in 2090 by {in_2090.exemption.exemption_id}"
    assert outcome(desk, person) == DENY

    for field in ("measure", "effective_from", "effective_until"):
        partial = permit_confirmation(subject(person), granted.id, stretched)
        partial.ClearField(field)
        missing = refused_call(lambda: zhao.ConfirmExemption(partial))  # noqa: B023 (called at once)
        assert missing.code() == grpc.StatusCode.INVALID_ARGUMENT and field in missing.details()
    assert outcome(desk, person) == DENY

    # What zhao confirms, knowingly, is what is in force: the window the permit says.
    wang.GrantExemption(courts_permit)  # wang restates it as the court said
    confirmed = zhao.ConfirmExemption(as_read)
    assert confirmed.exemption.effective_until == courts_permit.effective_until
    in_2090 = desk.Check(check_request(person, "HOTEL_STAR_RATED", at=3786912000, min_revision=confirmed.revision))
    assert in_2090.outcome == DENY
    today = desk.Check(check_request(person, "HOTEL_STAR_RATED", min_revision=confirmed.revision))
    assert today.outcome == ALLOW and today.exemption.exemption_id == granted.id


def _two_in_one_bucket() -> tuple[str, str]:
    """Two people whose data share a bucket (12 bits of HMAC under the tests' bucket key: a few dozen draws)."""
    from debar.common.identifiers import IdKind, Placement, validate_identifier
    from tests.support.keys import TEST_BUCKET_KEY

    placement, seen = Placement(TEST_BUCKET_KEY.encode()), {}
    while True:
        number = new_ric()
        bucket = placement.bucket(validate_identifier(IdKind.RIC, number))
        if bucket in seen and seen[bucket] != number:
            return seen[bucket], number
        seen[bucket] = number


def test_a_confirmation_naming_another_subject_confirms_nothing(people):
    """The attack: wang grants a permit for one person and asks zhao to confirm "the permit X of" another, whose
    court document zhao checks. Permits are kept per bucket and ConfirmExemption looked the id up in the named
    subject's bucket without asking whose it is, so when the two share one (1 in 4096 for any pair; an insider
    with the bucket key picks them) zhao's confirmation, naming the other person, put the first one's permit in
    force. Now the permit must be the named subject's: NOT_FOUND, as for an unknown id, and nothing changes."""
    wang, zhao, desk = people["clerk-wang"], people["clerk-zhao"], people["hotel-desk"]
    holder, named = _two_in_one_bucket()
    wang.Impose(impose_request(holder))
    wang.Impose(impose_request(named))
    granted = wang.GrantExemption(permit(holder)).exemption
    assert granted.awaiting_confirmation
    other = permit_confirmation(subject(named), granted.id, granted)
    error = refused_call(lambda: zhao.ConfirmExemption(other))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert outcome(desk, holder) == DENY and outcome(desk, named) == DENY
    own = permit_confirmation(subject(holder), granted.id, granted)
    confirmed = zhao.ConfirmExemption(own)
    assert confirmed.exemption.confirmed_by == "clerk-zhao"
    assert desk.Check(check_request(holder, "HOTEL_STAR_RATED", min_revision=confirmed.revision)).outcome == ALLOW
