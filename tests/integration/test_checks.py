"""The check rules, over real gRPC against a real Redis-compatible server."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import grpc
import pytest

from debar.v1 import common_pb2, decision_pb2, registry_pb2
from tests.support.requests import (
    DAY,
    check_request,
    exemption_confirmed,
    impose_request,
    lift_confirmed,
    subject,
    ts,
)
from tests.support.subjects import bad_checksum, new_ric, new_uscc

ALLOW, DENY = common_pb2.OUTCOME_ALLOW, common_pb2.OUTCOME_DENY


def test_restricted_person_is_denied_a_g_train_and_allowed_once_lifted(checks, registry):
    person = new_ric()
    imposed = registry.Impose(impose_request(person))

    refused = checks.Check(check_request(person, "RAIL_G_TRAIN", min_revision=imposed.revision))
    assert refused.outcome == DENY
    assert refused.decision_id
    [ground] = refused.grounds
    assert ground.restriction_id == imposed.restriction.id
    assert ground.role == common_pb2.ROLE_DEBTOR
    assert ground.legal_basis.startswith("SPC Provisions")
    assert ground.authority == "Beijing Chaoyang District People's Court"
    assert ground.case_number.startswith("(2026) Jing 0105 Zhi")
    assert refused.objection.review_days == 15
    assert refused.revision >= imposed.revision

    lifted = lift_confirmed(registry, imposed.restriction.id)
    assert lifted.restriction.status == registry_pb2.RESTRICTION_STATUS_LIFTED
    assert lifted.revision > imposed.revision
    allowed = checks.Check(check_request(person, "RAIL_G_TRAIN", min_revision=lifted.revision))
    assert allowed.outcome == ALLOW
    assert not allowed.grounds
    assert allowed.decision_id != refused.decision_id


def test_consumption_order_does_not_cover_measures_outside_it(checks, registry):
    person = new_ric()
    registry.Impose(impose_request(person))
    assert checks.Check(check_request(person, "PROCUREMENT_BID")).outcome == ALLOW
    assert checks.Check(check_request(person, "RAIL_TICKET_BAN")).outcome == ALLOW
    assert checks.Check(check_request(new_ric(), "RAIL_G_TRAIN")).outcome == ALLOW


def test_legal_representative_of_restricted_company_is_denied_through_the_role(checks, registry):
    company, representative = new_uscc(), new_ric()
    imposed = registry.Impose(
        impose_request(
            company, name="Acme Trading Co.", principals=[(representative, common_pb2.ROLE_LEGAL_REPRESENTATIVE)]
        )
    )
    refused = checks.Check(check_request(representative, "HOTEL_STAR_RATED"))
    assert refused.outcome == DENY
    [ground] = refused.grounds
    assert ground.role == common_pb2.ROLE_LEGAL_REPRESENTATIVE
    assert ground.via == "Ac************o."
    assert ground.restriction_id == imposed.restriction.id
    # The company itself is restricted too.
    assert checks.Check(check_request(company, "HOTEL_STAR_RATED")).outcome == DENY


def test_principals_are_bound_by_consumption_measures_only(checks, registry):
    company, representative = new_uscc(), new_ric()
    registry.Impose(
        impose_request(
            company,
            source="dishonest_persons_list",
            principals=[(representative, common_pb2.ROLE_LEGAL_REPRESENTATIVE)],
        )
    )
    assert checks.Check(check_request(company, "PROCUREMENT_BID")).outcome == DENY
    # The representative is not on the dishonest list, only bound by the consumption restriction.
    assert checks.Check(check_request(representative, "PROCUREMENT_BID")).outcome == ALLOW
    assert checks.Check(check_request(representative, "RAIL_G_TRAIN")).outcome == DENY


def test_exemption_turns_the_deny_into_an_allow_for_its_window_and_measure(checks, registry):
    person = new_ric()
    registry.Impose(impose_request(person))
    now = time.time()
    request = registry_pb2.GrantExemptionRequest(
        subject=subject(person),
        measure="RAIL_G_TRAIN",
        authority="Beijing Chaoyang District People's Court",
        reason="funeral of a parent",
        document_number="(2026) Jing 0105 Zhi 7 permit 1",
    )
    request.effective_from.CopyFrom(ts(now - DAY))
    request.effective_until.CopyFrom(ts(now + DAY))
    granted = exemption_confirmed(registry, request)

    allowed = checks.Check(check_request(person, "RAIL_G_TRAIN", min_revision=granted.revision))
    assert allowed.outcome == ALLOW
    assert allowed.exemption.exemption_id == granted.exemption.id
    assert allowed.exemption.authority == "Beijing Chaoyang District People's Court"
    # Other measures, and the same measure after the window, stay denied.
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == DENY
    assert checks.Check(check_request(person, "RAIL_G_TRAIN", at=now + 2 * DAY)).outcome == DENY


def test_a_permit_held_by_someone_not_restricted_is_not_named_in_the_allow_nor_in_the_log(checks, registry, decisions):
    person = new_ric()
    registry.Impose(impose_request(person, measures=["HOTEL_STAR_RATED"]))  # restricted, but not from trains
    now = time.time()
    request = registry_pb2.GrantExemptionRequest(
        subject=subject(person), measure="RAIL_G_TRAIN", authority="Beijing Chaoyang District People's Court",
        reason="funeral of a parent", document_number="(2026) Jing 0105 Zhi 7 permit 2",
    )  # fmt: skip
    request.effective_from.CopyFrom(ts(now - DAY))
    request.effective_until.CopyFrom(ts(now + DAY))
    granted = exemption_confirmed(registry, request)

    allowed = checks.Check(check_request(person, "RAIL_G_TRAIN", min_revision=granted.revision))
    assert allowed.outcome == ALLOW
    assert not allowed.HasField("exemption") and not allowed.grounds  # no permit was needed, so none was used
    logged = decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=allowed.decision_id))
    assert logged.outcome == ALLOW and not logged.HasField("exemption")


def test_validity_window_is_checked_when_reading(checks, registry):
    now = time.time()
    expired, future = new_ric(), new_ric()
    registry.Impose(impose_request(expired, start=now - 400 * DAY, end=now - DAY))
    registry.Impose(impose_request(future, start=now + 5 * DAY))
    assert checks.Check(check_request(expired, "RAIL_G_TRAIN")).outcome == ALLOW
    assert checks.Check(check_request(expired, "RAIL_G_TRAIN", at=now - 2 * DAY)).outcome == DENY
    # Not in force yet (e.g. its publicity period): does not deny yet, denies once in force.
    assert checks.Check(check_request(future, "RAIL_G_TRAIN")).outcome == ALLOW
    assert checks.Check(check_request(future, "RAIL_G_TRAIN", at=now + 6 * DAY)).outcome == DENY


def test_railway_credit_record_denies_only_after_publicity(checks, registry):
    passenger = new_ric()
    request = impose_request(passenger, source="railway_passenger_credit")
    request.ClearField("effective_from")
    before = int(time.time())
    imposed = registry.Impose(request)
    after = int(time.time())
    assert imposed.restriction.status == registry_pb2.RESTRICTION_STATUS_PUBLICITY
    start = imposed.restriction.effective_from.seconds
    # 7 working days (Monday to Friday) after the imposition, at the same time of day: 9 calendar days from a
    # Sunday to a Wednesday, 10 from a Saturday, 11 from a Thursday or a Friday.
    [imposed_at] = [t for t in range(before, after + 1) if (start - t) % DAY == 0]  # whole days after the call
    weekday = datetime.fromtimestamp(imposed_at, UTC).weekday()
    assert start - imposed_at == {0: 9, 1: 9, 2: 9, 3: 11, 4: 11, 5: 10, 6: 9}[weekday] * DAY
    assert imposed.restriction.effective_until.seconds == start + 180 * DAY
    assert checks.Check(check_request(passenger, "RAIL_TICKET_BAN")).outcome == ALLOW
    assert checks.Check(check_request(passenger, "RAIL_TICKET_BAN", at=start + 1)).outcome == DENY


@pytest.mark.parametrize(
    ("make", "field", "reason"),
    [
        (lambda: check_request(bad_checksum(new_ric()), "RAIL_G_TRAIN"), "subject.id", "check character"),
        (lambda: check_request("1234", "RAIL_G_TRAIN"), "subject.id", "18 characters"),
        (lambda: check_request(new_ric(), "RAIL_GOLD_TRAIN"), "measure", "unknown measure"),
        (lambda: check_request(new_ric(), ""), "measure", "empty"),
        (lambda: check_request(new_ric(), "RAIL_G_TRAIN", at=10), "at", "2000-01-01"),
    ],
)
def test_bad_check_input_is_invalid_argument_naming_the_field(checks, make, field, reason):
    with pytest.raises(grpc.RpcError) as raised:
        checks.Check(make())
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(f"{field}:")
    assert reason in raised.value.details()


def test_missing_id_type_is_invalid_argument(checks):
    request = check_request(new_ric(), "RAIL_G_TRAIN")
    request.subject.id_type = common_pb2.ID_TYPE_UNSPECIFIED
    with pytest.raises(grpc.RpcError) as raised:
        checks.Check(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("subject.id_type:")


def test_min_revision_ahead_of_the_data_is_failed_precondition(checks, registry):
    imposed = registry.Impose(impose_request(new_ric()))
    with pytest.raises(grpc.RpcError) as raised:
        checks.Check(check_request(new_ric(), "RAIL_G_TRAIN", min_revision=imposed.revision + 1000))
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    fresh = checks.Check(check_request(new_ric(), "RAIL_G_TRAIN", min_revision=imposed.revision))
    assert fresh.revision >= imposed.revision


def test_batch_of_1000_mixed_items_answers_in_order_with_per_item_errors(checks, registry):
    denied = new_ric()
    registry.Impose(impose_request(denied))
    allowed = new_ric()
    items, expected = [], []
    for i in range(1000):
        kind = i % 4
        if kind == 0:
            items.append(check_request(denied, "RAIL_G_TRAIN"))
            expected.append("deny")
        elif kind == 1:
            items.append(check_request(allowed, "RAIL_G_TRAIN"))
            expected.append("allow")
        elif kind == 2:
            items.append(check_request(bad_checksum(denied), "RAIL_G_TRAIN"))
            expected.append("subject.id")
        else:
            items.append(check_request(denied, "NOT_A_MEASURE"))
            expected.append("measure")
    from debar.v1 import sanction_pb2

    response = checks.BatchCheck(sanction_pb2.BatchCheckRequest(items=items))
    assert len(response.results) == 1000
    seen_ids = set()
    for i, (result, want) in enumerate(zip(response.results, expected, strict=True)):
        if want in ("deny", "allow"):
            assert result.WhichOneof("result") == "response", i
            assert result.response.outcome == (DENY if want == "deny" else ALLOW), i
            seen_ids.add(result.response.decision_id)
        else:
            assert result.WhichOneof("result") == "error", i
            assert result.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
            assert result.error.message.startswith(f"items[{i}].{want}:"), result.error.message
    assert len(seen_ids) == 500  # every decision has its own id


def test_batch_over_the_limit_is_rejected_whole(checks):
    from debar.v1 import sanction_pb2

    items = [check_request(new_ric(), "RAIL_G_TRAIN")] * 1001
    with pytest.raises(grpc.RpcError) as raised:
        checks.BatchCheck(sanction_pb2.BatchCheckRequest(items=items))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("items:")


def test_list_measures_serves_the_catalogue(checks):
    from debar.v1 import sanction_pb2

    catalogue = checks.ListMeasures(sanction_pb2.ListMeasuresRequest())
    codes = {m.code for m in catalogue.measures}
    assert {"RAIL_G_TRAIN", "HOTEL_STAR_RATED", "PROCUREMENT_BID", "RAIL_TICKET_BAN"} <= codes
    sources = {s.code: s for s in catalogue.sources}
    assert sources["railway_passenger_credit"].publicity_working_days == 7
    assert list(sources["railway_passenger_credit"].default_measures) == ["RAIL_TICKET_BAN"]
    assert catalogue.catalogue_version
