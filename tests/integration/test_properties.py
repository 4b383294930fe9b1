"""Properties of the sanction service over real gRPC, for every request message of SanctionService,
RegistryService and DecisionService: whatever a caller sends (identifiers valid or not, any Unicode, huge strings
and lists, timestamps and enum values out of range), the answer is a proper status naming the field, never
UNKNOWN or INTERNAL, the server stays SERVING, and a rejected request writes nothing."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from debar.sanction.domain.model import restriction_id
from debar.v1 import (
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    sanction_pb2,
    sanction_pb2_grpc,
)
from tests.support import strategies as gen
from tests.support.requests import LIFT_DOCUMENT, SECOND_REGISTRY, check_request, impose_request, subject
from tests.support.servers import ServiceProcess, health_status, start_service
from tests.support.strategies import set_time
from tests.support.subjects import new_ric

OK = grpc.StatusCode.OK
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
DENIED = grpc.StatusCode.PERMISSION_DENIED
EXISTS = grpc.StatusCode.ALREADY_EXISTS
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
MAX_BATCH = 1000
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
TIMEOUT = 10
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
# An error's message starts with the field it is about: "measure: ...", "items[3].subject.id: ...".
_FIELD = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): ")


@pytest.fixture(scope="module")
def server(service_env: dict[str, str], logs_dir: Path) -> Iterator[ServiceProcess]:
    """A sanction service of this module's own, on the session's Redis: its log is read for tracebacks."""
    service = start_service("sanction", service_env, logs_dir)
    yield service
    assert service.stop() == 0, service.log()
    assert "Traceback" not in service.log(), service.log()


@pytest.fixture(scope="module")
def chan(server: ServiceProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.address) as channel:
        yield channel


@pytest.fixture(scope="module")
def stubs(chan: grpc.Channel) -> tuple[Any, Any, Any]:
    return (
        sanction_pb2_grpc.SanctionServiceStub(chan),
        registry_pb2_grpc.RegistryServiceStub(chan),
        decision_pb2_grpc.DecisionServiceStub(chan),
    )


@pytest.fixture(scope="module")
def data_store(service_env: dict[str, str]) -> Iterator[Any]:
    """The test's private Redis, to read the data revision (`debar:rev`) directly."""
    url = service_env["DEBAR_REDIS_URL"]
    client = (
        redis.RedisCluster.from_url(url) if service_env["DEBAR_REDIS_CLUSTER"] == "true" else redis.Redis.from_url(url)
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def known_measures(stubs: tuple[Any, Any, Any]) -> list[str]:
    return [m.code for m in stubs[0].ListMeasures(sanction_pb2.ListMeasuresRequest(), timeout=TIMEOUT).measures]


@pytest.fixture(autouse=True)
def stays_serving(server: ServiceProcess) -> Iterator[None]:
    yield
    assert server.process.poll() is None, server.log()
    assert health_status(server.address) == "SERVING", server.log()


def revision(data: Any) -> int:
    return int(data.get("debar:rev") or 0)


def call(
    method: Callable[..., Any], request: Any, allowed: set[grpc.StatusCode], metadata: Any = ()
) -> tuple[grpc.StatusCode, Any]:
    """The status of one call (and its answer or error message); fails on a status outside `allowed`."""
    try:
        answer = method(request, timeout=TIMEOUT, metadata=metadata)
    except grpc.RpcError as error:
        code, details = error.code(), error.details() or ""
    else:
        event("OK")
        return OK, answer
    event(code.name)  # --hypothesis-show-statistics: how often each side was reached
    assert code in allowed, f"{code.name}: {details[:300]}"
    assert details, code
    if code is INVALID:
        assert _FIELD.match(details), f"the message names no field: {details[:300]}"
    return code, details


def field_of(details: str) -> str:
    found = _FIELD.match(details)
    return found[1] if found else ""


def reaching(registry: Any, number: str) -> list[bytes]:
    """What ListRestrictions says reaches this identifier (serialised, for comparing before and after)."""
    try:
        found = registry.ListRestrictions(
            registry_pb2.ListRestrictionsRequest(subject=subject(number), include_inactive=True), timeout=TIMEOUT
        )
    except grpc.RpcError:
        return []
    return sorted(r.SerializeToString(deterministic=True) for r in found.restrictions)


# -- SanctionService -------------------------------------------------------------------------------------------


@st.composite
def check_requests(draw: st.DrawFn, known: list[str]) -> sanction_pb2.CheckRequest:
    request = sanction_pb2.CheckRequest(
        subject=draw(gen.subjects()),
        measure=draw(gen.measure_codes(known)),
        min_revision=draw(st.one_of(st.just(0), st.integers(0, 2**64 - 1))),
    )
    set_time(request, "at", draw(gen.timestamps()))
    return request


CHECK_FIELDS = {"subject", "subject.id_type", "subject.id", "measure", "at", "min_revision"}


@given(data=st.data())
@PROPERTY
def test_check_answers_a_status_and_writes_no_restriction(stubs, data, known_measures, data_store):  # type: ignore[no-untyped-def]
    checks, _, _ = stubs
    request = data.draw(check_requests(known_measures))
    before = revision(data_store)
    code, answer = call(checks.Check, request, {INVALID, PRECONDITION})
    assert revision(data_store) == before
    if code is INVALID:
        assert field_of(answer) in CHECK_FIELDS
    elif code is OK:
        assert answer.outcome in (common_pb2.OUTCOME_ALLOW, common_pb2.OUTCOME_DENY)
        assert answer.decision_id


@given(data=st.data())
@PROPERTY
def test_batch_check_answers_each_item_and_refuses_a_batch_past_the_limit(stubs, data, known_measures, data_store):  # type: ignore[no-untyped-def]
    checks, _, _ = stubs
    items = data.draw(st.lists(check_requests(known_measures), max_size=8))
    repeat = data.draw(st.sampled_from([1, 1, 1, MAX_BATCH // max(len(items), 1) + 1]))
    request = sanction_pb2.BatchCheckRequest(items=items * repeat)
    before = revision(data_store)
    code, answer = call(checks.BatchCheck, request, {INVALID, EXHAUSTED})
    assert revision(data_store) == before
    if request.ByteSize() > MAX_MESSAGE_BYTES:
        assert code is EXHAUSTED, answer
        return
    if len(request.items) > MAX_BATCH:
        assert code is INVALID and field_of(answer) == "items", answer
        return
    assert code is OK, answer
    assert len(answer.results) == len(request.items)
    for i, result in enumerate(answer.results):
        if result.WhichOneof("result") == "error":
            assert result.error.code in (INVALID.value[0], PRECONDITION.value[0]), result.error
            if result.error.code == INVALID.value[0]:
                item_field = field_of(result.error.message)
                assert item_field.startswith(f"items[{i}]."), result.error.message
                assert item_field.partition(".")[2] in CHECK_FIELDS, result.error.message
        else:
            assert result.response.outcome in (common_pb2.OUTCOME_ALLOW, common_pb2.OUTCOME_DENY)


def test_list_measures_ignores_unknown_fields(chan: grpc.Channel) -> None:
    raw = chan.unary_unary("/debar.v1.SanctionService/ListMeasures")
    answer = sanction_pb2.ListMeasuresResponse.FromString(raw(b"\x08\x01\x12\x03abc\xa0\x06\x07", timeout=TIMEOUT))
    assert answer.measures


def test_a_request_past_the_message_size_limit_is_resource_exhausted(stubs, data_store) -> None:  # type: ignore[no-untyped-def]
    checks, registry, _ = stubs
    before = revision(data_store)
    with pytest.raises(grpc.RpcError) as caught:
        checks.Check(check_request("1" * (5 * 1024 * 1024), "RAIL_G_TRAIN"), timeout=TIMEOUT)
    assert caught.value.code() is EXHAUSTED
    request = impose_request(new_ric())
    request.name = "x" * (5 * 1024 * 1024)
    with pytest.raises(grpc.RpcError) as caught:
        registry.Impose(request, timeout=TIMEOUT)
    assert caught.value.code() is EXHAUSTED
    assert revision(data_store) == before


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("/debar.v1.SanctionService/Check", b"\x12\x02\xff\xfe"),  # measure: invalid UTF-8
        ("/debar.v1.RegistryService/Impose", b"\x0a\x03\xc3\x28\x41"),  # source: invalid UTF-8
        ("/debar.v1.DecisionService/GetDecision", b"\x0a\x01\x80"),
        ("/debar.v1.SanctionService/BatchCheck", b"\x0a\x05\x12\x03abc\x0a"),  # truncated
    ],
)
def test_a_message_that_is_not_valid_protobuf_is_invalid_argument(chan, data_store, method, message) -> None:  # type: ignore[no-untyped-def]
    before = revision(data_store)
    with pytest.raises(grpc.RpcError) as caught:
        chan.unary_unary(method)(message, timeout=TIMEOUT)
    assert caught.value.code() is INVALID, caught.value.details()
    assert revision(data_store) == before


# -- RegistryService -------------------------------------------------------------------------------------------


IMPOSE_FIELDS = {
    "source",
    "source_id",
    "list_version",
    "subject.id_type",
    "subject.id",
    "name",
    "legal_basis",
    "authority",
    "case_number",
    "document_number",
    "decided_on",
    "effective_from",
    "effective_until",
    "principals",
}


@st.composite
def impose_requests(draw: st.DrawFn, known: list[str]) -> registry_pb2.ImposeRequest:
    """Mostly a valid record with some fields replaced by random values, so that both sides are reached."""
    debtor = draw(st.one_of(gen.valid_rics(), gen.valid_usccs()))
    request = impose_request(debtor, source_id=f"P-{draw(st.integers(0, 10**12))}")
    request.ClearField("effective_from")
    replace = draw(
        st.sets(
            st.sampled_from(
                [
                    "source",
                    "source_id",
                    "list_version",
                    "subject",
                    "name",
                    "legal_basis",
                    "authority",
                    "case_number",
                    "document_number",
                    "decided_on",
                    "measures",
                    "effective_from",
                    "effective_until",
                    "principals",
                ]
            ),
            max_size=4,
        )
    )
    for name in ["source_id", "list_version", "name", "legal_basis", "authority", "case_number", "document_number"]:
        if name in replace:
            setattr(request, name, draw(gen.texts))
    if "source" in replace:
        request.source = draw(st.one_of(st.sampled_from(["court_consumption_order", "dishonest_persons"]), gen.texts))
    if "decided_on" in replace:
        request.decided_on = draw(st.one_of(st.dates().map(str), gen.texts, st.just("20250101")))
    if "subject" in replace:
        request.subject.CopyFrom(draw(gen.subjects()))
    if "measures" in replace:
        request.measures[:] = draw(
            st.one_of(
                st.lists(gen.measure_codes(known), max_size=5),
                st.lists(st.sampled_from(known), min_size=100, max_size=300),
            )
        )
    set_time(request, "effective_from", draw(gen.timestamps()) if "effective_from" in replace else None)
    set_time(request, "effective_until", draw(gen.timestamps()) if "effective_until" in replace else None)
    if "principals" in replace:
        principal = st.builds(registry_pb2.PrincipalInput, subject=gen.subjects(), role=gen.roles, name=gen.texts)
        many = st.integers(60, 70).map(
            lambda n: [registry_pb2.PrincipalInput(subject=subject(new_ric()), role=2) for _ in range(n)]
        )
        request.principals.extend(draw(st.one_of(st.lists(principal, max_size=3), many)))
    return request


@given(data=st.data())
@PROPERTY
def test_impose_accepts_or_names_the_field_and_writes_nothing_when_rejected(stubs, data, known_measures, data_store):  # type: ignore[no-untyped-def]
    _, registry, _ = stubs
    request = data.draw(impose_requests(known_measures))
    rid = restriction_id(request.source, request.source_id.strip())
    numbers = [request.subject.id, *(p.subject.id for p in request.principals[:3])]
    before = revision(data_store), [reaching(registry, n) for n in numbers], stored(registry, rid)
    # A drawn source_id may name a record stored by an earlier example: weakening a court list's record by Impose
    # is FAILED_PRECONDITION (a lift needs ConfirmLift), and writes nothing either.
    code, answer = call(registry.Impose, request, {INVALID, PRECONDITION})
    if code is OK:
        assert answer.restriction.id == rid
        return
    if code is PRECONDITION:
        assert "would weaken it" in answer, answer
        assert (revision(data_store), [reaching(registry, n) for n in numbers], stored(registry, rid)) == before
        return
    assert field_of(answer).split("[")[0].split(".")[0] in {f.split(".")[0] for f in IMPOSE_FIELDS | {"measures"}}
    assert (revision(data_store), [reaching(registry, n) for n in numbers], stored(registry, rid)) == before


def stored(registry: Any, rid: str) -> bytes | None:
    try:
        found = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid), timeout=TIMEOUT)
    except grpc.RpcError as error:
        assert error.code() is NOT_FOUND, error
        return None
    return found.SerializeToString(deterministic=True)


@given(data=st.data())
@PROPERTY
def test_lift_and_get_restriction_answer_a_status_and_a_rejected_lift_writes_nothing(stubs, data, data_store):  # type: ignore[no-untyped-def]
    _, registry, _ = stubs
    source = data.draw(st.sampled_from(["court_consumption_order", "railway_passenger_credit"]))
    imposed = registry.Impose(impose_request(data.draw(gen.valid_rics()), source=source), timeout=TIMEOUT).restriction
    rid = data.draw(st.one_of(st.just(imposed.id), st.just(f" {imposed.id} "), gen.texts, st.just("R" + "A" * 16)))
    reason = data.draw(gen.texts)
    document = data.draw(st.one_of(st.just(LIFT_DOCUMENT), gen.texts))
    before = revision(data_store), stored(registry, imposed.id)
    code, answer = call(
        registry.Lift,
        registry_pb2.LiftRequest(restriction_id=rid, reason=reason, document_number=document),
        {INVALID, NOT_FOUND},
    )
    if code is OK:
        if source == "railway_passenger_credit":
            assert answer.restriction.status == registry_pb2.RESTRICTION_STATUS_LIFTED
        else:  # a court list: pending a second identity, still in force
            assert answer.restriction.status == registry_pb2.RESTRICTION_STATUS_ACTIVE
            assert answer.restriction.pending_lift.asked_by == "local"
    else:
        assert (revision(data_store), stored(registry, imposed.id)) == before
        if code is INVALID:
            assert field_of(answer) in {"restriction_id", "reason", "document_number"}
    # A confirmation, by the asker or by a second identity, of whatever document: a status, and nothing written
    # when refused.
    confirmer = data.draw(st.sampled_from([(), SECOND_REGISTRY]))
    confirm_document = data.draw(st.one_of(st.just(document), gen.texts))
    before = revision(data_store), stored(registry, imposed.id)
    code, answer = call(
        registry.ConfirmLift,
        registry_pb2.ConfirmLiftRequest(restriction_id=rid, document_number=confirm_document),
        {INVALID, NOT_FOUND, PRECONDITION, DENIED},
        metadata=confirmer,
    )
    if code is OK:
        assert answer.restriction.status == registry_pb2.RESTRICTION_STATUS_LIFTED
        assert confirmer == SECOND_REGISTRY or source == "railway_passenger_credit"
    else:
        assert (revision(data_store), stored(registry, imposed.id)) == before
        if code is INVALID:
            assert field_of(answer) in {"restriction_id", "document_number"}
        if code is DENIED:
            assert confirmer == ()
    code, answer = call(
        registry.GetRestriction, registry_pb2.GetRestrictionRequest(restriction_id=rid), {INVALID, NOT_FOUND}
    )
    if code is INVALID:
        assert field_of(answer) == "restriction_id"


@given(data=st.data())
@PROPERTY
def test_list_restrictions_answers_a_status_and_writes_nothing(stubs, data, data_store):  # type: ignore[no-untyped-def]
    _, registry, _ = stubs
    request = registry_pb2.ListRestrictionsRequest(
        subject=data.draw(gen.subjects()), include_inactive=data.draw(st.booleans())
    )
    before = revision(data_store)
    code, answer = call(registry.ListRestrictions, request, {INVALID})
    assert revision(data_store) == before
    if code is OK:
        assert answer.revision >= 0
    else:
        assert field_of(answer) in {"subject.id_type", "subject.id"}


@given(data=st.data())
@PROPERTY
def test_grant_exemption_accepts_or_names_the_field_and_writes_nothing_when_rejected(  # type: ignore[no-untyped-def]
    stubs, data, known_measures, data_store
):
    _, registry, _ = stubs
    request = registry_pb2.GrantExemptionRequest(
        subject=data.draw(st.one_of(gen.valid_rics().map(subject), gen.subjects())),
        measure=data.draw(gen.measure_codes(known_measures)),
        authority=data.draw(st.one_of(st.just("Beijing Chaoyang District People's Court"), gen.texts)),
        reason=data.draw(st.one_of(st.just("funeral"), gen.texts)),
        document_number=data.draw(st.one_of(st.just(""), gen.texts)),
    )
    set_time(request, "effective_from", data.draw(gen.timestamps()))
    set_time(request, "effective_until", data.draw(gen.timestamps()))
    before = revision(data_store)
    code, answer = call(registry.GrantExemption, request, {INVALID})
    if code is OK:
        assert answer.exemption.id and answer.revision > before
    else:
        assert revision(data_store) == before
        assert field_of(answer) in {
            "subject.id_type",
            "subject.id",
            "measure",
            "effective_from",
            "effective_until",
            "authority",
            "reason",
            "document_number",
        }


# -- DecisionService -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def refusal(stubs: tuple[Any, Any, Any]) -> tuple[str, str]:
    """(a refused check's decision id, an allowed check's decision id)."""
    checks, registry, _ = stubs
    person = new_ric()
    registry.Impose(impose_request(person), timeout=TIMEOUT)
    deny = checks.Check(check_request(person, "HOTEL_STAR_RATED"), timeout=TIMEOUT)
    allow = checks.Check(check_request(new_ric(), "HOTEL_STAR_RATED"), timeout=TIMEOUT)
    assert deny.outcome == common_pb2.OUTCOME_DENY and allow.outcome == common_pb2.OUTCOME_ALLOW
    return deny.decision_id, allow.decision_id


def decision_ids(real: tuple[str, str]) -> st.SearchStrategy[str]:
    deny, allow = real
    return st.one_of(
        st.sampled_from([deny, allow, f" {deny}\n"]),
        gen.texts,
        st.sampled_from(
            [
                "1764250000000-0-a3f-0",  # an internal location is no id
                "999999999999999-999999999-fff-99999",
                "S1764250000000-0123abcd-a3f",
                "aaaaaaaaaaaaaaaaaaaaaaaaaa",
                deny[:-1] + ("a" if deny[-1] != "a" else "b"),  # a neighbour of a real id
                "١٧٦٤٢٥٠٠٠٠٠٠٠-0-a3f-0",
                "１７６４２５００００００００-0-a3f-0",
                "1764250000000-٠-a3f-٠",
                deny + "\n",
            ]
        ),
        st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=26, max_size=26),  # well formed, guessed
    )


def objection_ids() -> st.SearchStrategy[str]:
    return st.one_of(
        gen.texts,
        st.text("0123456789abcdef", min_size=15, max_size=15).map(lambda s: "O" + s),
        st.sampled_from(["O" + "٠" * 15, "O3a7f0c1d2e3b4a59\n"]),
    )


def objections_now(decisions: Any) -> list[bytes]:
    found = decisions.ListObjections(decision_pb2.ListObjectionsRequest(), timeout=TIMEOUT).objections
    return sorted(o.SerializeToString(deterministic=True) for o in found)


@given(data=st.data())
@PROPERTY
def test_decision_reads_answer_a_status(stubs, data, refusal, data_store):  # type: ignore[no-untyped-def]
    _, _, decisions = stubs
    before = revision(data_store)
    code, answer = call(
        decisions.GetDecision,
        decision_pb2.GetDecisionRequest(decision_id=data.draw(decision_ids(refusal))),
        {INVALID, NOT_FOUND},
    )
    if code is INVALID:
        assert field_of(answer) == "decision_id"
    request = decision_pb2.ListDecisionsRequest(
        subject=data.draw(gen.subjects()),
        page_size=data.draw(st.one_of(st.integers(0, 200), st.integers(0, 2**32 - 1))),
        page_token=data.draw(
            st.one_of(st.integers(-5, 10**6).map(str), st.just("9" * 30), st.just("١٢"), st.just(" 1_0 "), gen.texts)
        ),
    )
    code, answer = call(decisions.ListDecisions, request, {INVALID})
    if code is INVALID:
        assert field_of(answer) in {"subject.id_type", "subject.id", "page_token"}
    assert revision(data_store) == before


@given(data=st.data())
@PROPERTY
def test_objection_writes_answer_a_status_and_write_nothing_when_rejected(stubs, data, refusal, data_store):  # type: ignore[no-untyped-def]
    _, _, decisions = stubs
    before = revision(data_store), objections_now(decisions)
    method = data.draw(st.sampled_from(["file", "review", "resolve", "confirm", "reconsider"]))
    real = [o.objection_id for o in decisions.ListObjections(decision_pb2.ListObjectionsRequest()).objections]
    # Draw the same shape whatever the server holds (hypothesis replays draws): a made-up id, and a pick among
    # the real ones used when there are any.
    made_up, use_real, pick = data.draw(objection_ids()), data.draw(st.booleans()), data.draw(st.integers(0, 10**6))
    objection_id = real[pick % len(real)] if use_real and real else made_up
    text = st.one_of(st.just("That is not me."), gen.texts)
    if method == "file":
        request: Any = decision_pb2.FileObjectionRequest(
            decision_id=data.draw(decision_ids(refusal)), statement=data.draw(text), contact=data.draw(text)
        )
        fields = {"decision_id", "statement", "contact"}
        rpc = decisions.FileObjection
    elif method == "review":
        request = decision_pb2.ReviewObjectionRequest(objection_id=objection_id, reviewer=data.draw(text))
        fields, rpc = {"objection_id", "reviewer"}, decisions.ReviewObjection
    elif method == "resolve":
        request = decision_pb2.ResolveObjectionRequest(
            objection_id=objection_id, outcome=data.draw(gen.roles), reviewer=data.draw(text), reason=data.draw(text)
        )
        fields, rpc = {"objection_id", "outcome", "reviewer", "reason"}, decisions.ResolveObjection
    elif method == "confirm":
        request = decision_pb2.ConfirmResolutionRequest(objection_id=objection_id, reviewer=data.draw(text))
        fields, rpc = {"objection_id", "reviewer"}, decisions.ConfirmResolution
    else:
        request = decision_pb2.RequestReconsiderationRequest(objection_id=objection_id, statement=data.draw(text))
        fields, rpc = {"objection_id", "statement"}, decisions.RequestReconsideration
    refused_as = {INVALID, NOT_FOUND, PRECONDITION} | ({DENIED} if method == "confirm" else set())  # one's own
    if method == "file":
        refused_as |= {EXISTS}  # the decision already has an objection: its id only, nothing written
    code, answer = call(rpc, request, refused_as)
    if code is not OK:
        assert (revision(data_store), objections_now(decisions)) == before
        if code is INVALID:
            assert field_of(answer) in fields
    code, answer = call(
        decisions.GetObjection, decision_pb2.GetObjectionRequest(objection_id=objection_id), {INVALID, NOT_FOUND}
    )
    if code is INVALID:
        assert field_of(answer) == "objection_id"


@given(
    state=gen.roles,
    overdue=st.booleans(),
    page_size=st.integers(0, 2**32 - 1),
    page_token=st.one_of(
        st.just(""), st.just("1800000000.Oa3f0123456789ab"), st.just("99999999999.Oa3f0123456789ab"), gen.texts
    ),
)
@PROPERTY
def test_list_objections_answers_a_status(stubs, state, overdue, page_size, page_token) -> None:  # type: ignore[no-untyped-def]
    _, _, decisions = stubs
    request = decision_pb2.ListObjectionsRequest(
        state=state, overdue_only=overdue, page_size=page_size, page_token=page_token
    )
    code, answer = call(decisions.ListObjections, request, {INVALID})
    if code is INVALID:
        assert field_of(answer) in {"state", "page_token"}
