"""The writing side: idempotent impose, nothing written on bad input, role reach in listings."""

from __future__ import annotations

import grpc
import pytest

from debar.v1 import common_pb2, registry_pb2
from tests.support.requests import LIFT_DOCUMENT, impose_request, lift_confirmed, subject
from tests.support.subjects import bad_checksum, new_ric, new_uscc


def test_imposing_the_same_record_twice_changes_nothing(registry):
    request = impose_request(new_ric(), measures=["AIR_TRAVEL"])
    first = registry.Impose(request)
    second = registry.Impose(request)
    assert first.effect == registry_pb2.WRITE_EFFECT_CREATED
    assert second.effect == registry_pb2.WRITE_EFFECT_UNCHANGED
    assert second.restriction.id == first.restriction.id
    changed = registry_pb2.ImposeRequest()
    changed.CopyFrom(request)
    changed.measures.append("RAIL_G_TRAIN")
    third = registry.Impose(changed)
    assert third.effect == registry_pb2.WRITE_EFFECT_UPDATED
    assert third.revision > first.revision
    assert list(third.restriction.measures) == ["RAIL_G_TRAIN", "AIR_TRAVEL"]  # catalogue order
    # Narrowing a court list's record again is a lift by another name: Lift and a second identity do that.
    with pytest.raises(grpc.RpcError) as narrowed:
        registry.Impose(request)
    assert narrowed.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_record_keeps_no_clear_identifier_and_masks_names(registry):
    person = new_ric()
    imposed = registry.Impose(impose_request(person, name="Zhang Sanfeng"))
    stored = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=imposed.restriction.id))
    assert person not in str(stored)
    assert stored.masked_name == "Z************"
    assert stored.subject_pseudonym.startswith("t1.")
    assert stored.status == registry_pb2.RESTRICTION_STATUS_ACTIVE


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: setattr(r, "source", "rumour_mill"), "source"),
        (lambda r: setattr(r, "legal_basis", ""), "legal_basis"),
        (lambda r: setattr(r, "case_number", ""), "case_number"),
        (lambda r: r.measures.append("FLYING_CARPET"), "measures[0]"),
        (lambda r: setattr(r.subject, "id", bad_checksum(r.subject.id)), "subject.id"),
        (lambda r: r.effective_until.CopyFrom(r.effective_from), "effective_until"),
        (lambda r: setattr(r, "decided_on", "01/02/2025"), "decided_on"),
    ],
)
def test_bad_impose_is_invalid_argument_and_writes_nothing(registry, checks, mutate, field):
    person = new_ric()
    request = impose_request(person)
    mutate(request)
    with pytest.raises(grpc.RpcError) as raised:
        registry.Impose(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(f"{field}:")
    listed = registry.ListRestrictions(
        registry_pb2.ListRestrictionsRequest(subject=subject(person), include_inactive=True)
    )
    assert not listed.restrictions


def _with_principals(request: registry_pb2.ImposeRequest, count: int) -> None:
    request.subject.CopyFrom(subject(new_uscc()))
    for _ in range(count):
        request.principals.add(subject=subject(new_ric()), role=common_pb2.ROLE_PRINCIPAL)


@pytest.mark.parametrize(
    ("field", "limit", "fill"),
    [
        ("legal_basis", 512, lambda r, n: setattr(r, "legal_basis", "B" * n)),
        ("authority", 512, lambda r, n: setattr(r, "authority", "A" * n)),
        ("name", 256, lambda r, n: setattr(r, "name", "N" * n)),
        ("case_number", 128, lambda r, n: setattr(r, "case_number", "C" * n)),
        ("source_id", 128, lambda r, n: setattr(r, "source_id", "S" * n)),
        ("document_number", 128, lambda r, n: setattr(r, "document_number", "D" * n)),
        ("list_version", 64, lambda r, n: setattr(r, "list_version", "V" * n)),
        ("principals", 64, _with_principals),
    ],
)
def test_the_documented_limits_hold_to_the_character(registry, field, limit, fill):
    """README "Limits": at the limit the record is stored; one past it is INVALID_ARGUMENT naming the field, and
    nothing is stored."""
    at_limit = impose_request(new_ric())
    fill(at_limit, limit)
    assert registry.Impose(at_limit).restriction.id
    past = impose_request(new_ric())
    fill(past, limit + 1)
    with pytest.raises(grpc.RpcError) as raised:
        registry.Impose(past)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith(field)
    listed = registry.ListRestrictions(
        registry_pb2.ListRestrictionsRequest(subject=past.subject, include_inactive=True)
    )
    assert not listed.restrictions


def test_bad_principal_rejects_the_whole_record(registry):
    company, good, bad = new_uscc(), new_ric(), bad_checksum(new_ric())
    request = impose_request(
        company, principals=[(good, common_pb2.ROLE_LEGAL_REPRESENTATIVE), (bad, common_pb2.ROLE_ACTUAL_CONTROLLER)]
    )
    with pytest.raises(grpc.RpcError) as raised:
        registry.Impose(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("principals[1].subject.id:")
    for number in (company, good):
        listed = registry.ListRestrictions(registry_pb2.ListRestrictionsRequest(subject=subject(number)))
        assert not listed.restrictions


def test_listing_a_person_shows_restrictions_reaching_them_through_a_role(registry):
    company, controller = new_uscc(), new_ric()
    own = registry.Impose(impose_request(controller))
    via = registry.Impose(impose_request(company, principals=[(controller, common_pb2.ROLE_ACTUAL_CONTROLLER)]))
    listed = registry.ListRestrictions(registry_pb2.ListRestrictionsRequest(subject=subject(controller)))
    reach = {r.restriction.id: r for r in listed.restrictions}
    assert set(reach) == {own.restriction.id, via.restriction.id}
    assert reach[own.restriction.id].role == common_pb2.ROLE_DEBTOR
    assert reach[via.restriction.id].role == common_pb2.ROLE_ACTUAL_CONTROLLER
    assert reach[via.restriction.id].via == via.restriction.masked_name


def test_lifted_restrictions_are_listed_only_on_request(registry):
    person = new_ric()
    imposed = registry.Impose(impose_request(person))
    lift_confirmed(registry, imposed.restriction.id, "performed")
    active = registry.ListRestrictions(registry_pb2.ListRestrictionsRequest(subject=subject(person)))
    everything = registry.ListRestrictions(
        registry_pb2.ListRestrictionsRequest(subject=subject(person), include_inactive=True)
    )
    assert not active.restrictions
    [lifted] = everything.restrictions
    assert lifted.restriction.status == registry_pb2.RESTRICTION_STATUS_LIFTED
    assert lifted.restriction.lift_reason == "performed"


def test_unknown_restriction_is_not_found(registry):
    with pytest.raises(grpc.RpcError) as raised:
        registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id="RNOSUCHRECORD0000"))
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as raised:
        registry.Lift(
            registry_pb2.LiftRequest(restriction_id="RNOSUCHRECORD0000", reason="x", document_number=LIFT_DOCUMENT)
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_lift_needs_a_reason(registry):
    imposed = registry.Impose(impose_request(new_ric()))
    with pytest.raises(grpc.RpcError) as raised:
        registry.Lift(
            registry_pb2.LiftRequest(restriction_id=imposed.restriction.id, reason=" ", document_number=LIFT_DOCUMENT)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("reason:")
