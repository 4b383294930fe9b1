"""Objections against the real service: a refusal objected to and overturned corrects the record so the next
check allows; the record is marked disputed while the objection is open; every transition is hash-chained."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
import redis as redis_client
from redis.asyncio import Redis

from debar.common.settings import DEV_BUCKET_KEY
from debar.local.embedded_redis import EmbeddedRedis
from debar.local.local_cluster import LocalCluster
from debar.sanction.adapters.keys import Keys, ObjectionKeys
from debar.sanction.adapters.sequenced_log import RedisSequencedLog
from debar.sanction.domain.decision_ids import DecisionIds
from debar.sanction.domain.log_entries import ObjectionEntry
from debar.sanction.domain.objections import NOTHING_DUE, ObjectionState
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2, registry_pb2_grpc, sanction_pb2_grpc
from tests.support.keys import TEST_OBJECTION_KEYS
from tests.support.objections import filed_days_ago
from tests.support.requests import check_request, confirm_resolution, impose_request, lift_confirmed
from tests.support.servers import start_service
from tests.support.subjects import new_ric, new_uscc

KEYS = "t1:test-secret-one-at-least-32-bytes"
UPHELD, OVERTURNED = decision_pb2.OBJECTION_OUTCOME_UPHELD, decision_pb2.OBJECTION_OUTCOME_OVERTURNED
ALLOW, DENY = common_pb2.OUTCOME_ALLOW, common_pb2.OUTCOME_DENY
# Local mode: the caller names itself; a reviewer acts as that identity, never as a name in the request.
AS_REVIEWER = [("x-debar-caller", "reviewer:wang")]


def refused(registry, checks, person: str, principals=()) -> tuple[str, str]:
    """Imposes a restriction reaching `person`; returns (restriction id, the refused check's decision id)."""
    if principals:
        company = new_uscc()
        imposed = registry.Impose(impose_request(company, principals=[(person, role) for role in principals]))
    else:
        imposed = registry.Impose(impose_request(person))
    decision = checks.Check(check_request(person, "HOTEL_STAR_RATED"))
    assert decision.outcome == common_pb2.OUTCOME_DENY
    return imposed.restriction.id, decision.decision_id


def file(decisions, decision_id: str) -> decision_pb2.Objection:
    return decisions.FileObjection(
        decision_pb2.FileObjectionRequest(
            decision_id=decision_id, statement="That is not me.", contact="me@example.com"
        )
    )


def review(decisions, objection_id: str) -> decision_pb2.Objection:
    request = decision_pb2.ReviewObjectionRequest(objection_id=objection_id)
    return decisions.ReviewObjection(request, metadata=AS_REVIEWER)


def resolve(decisions, objection_id: str, outcome: int) -> decision_pb2.Objection:
    return decisions.ResolveObjection(
        decision_pb2.ResolveObjectionRequest(objection_id=objection_id, outcome=outcome, reason="why"),
        metadata=AS_REVIEWER,
    )


def status_of(registry, rid: str) -> int:
    return registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid)).status


def rpc_error(call) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value


def test_a_refusal_objected_to_and_overturned_then_allows(registry, checks, decisions):
    person = new_ric()
    rid, decision_id = refused(registry, checks, person)
    assert decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=decision_id)).outcome == (
        common_pb2.OUTCOME_DENY
    )
    objection = file(decisions, decision_id)
    assert objection.state == decision_pb2.OBJECTION_STATE_FILED
    assert list(objection.restriction_ids) == [rid]
    assert objection.review_due.seconds == objection.filed_at.seconds + 15 * 86400
    assert not objection.overdue
    assert status_of(registry, rid) == registry_pb2.RESTRICTION_STATUS_DISPUTED
    # Disputed, but still in force.
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == common_pb2.OUTCOME_DENY

    review(decisions, objection.objection_id)
    proposed = resolve(decisions, objection.objection_id, OVERTURNED)
    assert proposed.state == decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION
    assert (proposed.resolved_by, proposed.confirmation_awaited, proposed.confirmed_by) == ("reviewer:wang", True, "")
    assert proposed.correction_due.seconds > proposed.filed_at.seconds
    assert status_of(registry, rid) == registry_pb2.RESTRICTION_STATUS_DISPUTED
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == common_pb2.OUTCOME_DENY
    done = confirm_resolution(decisions, objection.objection_id)
    assert done.state == decision_pb2.OBJECTION_STATE_OVERTURNED
    assert (done.resolved_by, done.confirmation_awaited, done.confirmed_by) == (
        "reviewer:wang",
        False,
        "reviewer:zhang",
    )
    assert done.correction_due == proposed.correction_due
    assert [(t.from_state, t.to_state) for t in done.history] == [
        (decision_pb2.OBJECTION_STATE_UNSPECIFIED, decision_pb2.OBJECTION_STATE_FILED),
        (decision_pb2.OBJECTION_STATE_FILED, decision_pb2.OBJECTION_STATE_UNDER_REVIEW),
        (decision_pb2.OBJECTION_STATE_UNDER_REVIEW, decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION),
        (decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION, decision_pb2.OBJECTION_STATE_OVERTURNED),
    ]
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == common_pb2.OUTCOME_ALLOW
    lifted = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid))
    assert lifted.status == registry_pb2.RESTRICTION_STATUS_LIFTED
    assert objection.objection_id in lifted.lift_reason
    # The decision itself stays as it was made.
    assert decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=decision_id)).outcome == (
        common_pb2.OUTCOME_DENY
    )


def test_overturning_a_legal_representatives_objection_lifts_only_their_link(registry, checks, decisions):
    person = new_ric()
    rid, decision_id = refused(registry, checks, person, principals=[common_pb2.ROLE_LEGAL_REPRESENTATIVE])
    objection = file(decisions, decision_id)
    review(decisions, objection.objection_id)
    resolve(decisions, objection.objection_id, OVERTURNED)
    confirm_resolution(decisions, objection.objection_id)
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == common_pb2.OUTCOME_ALLOW
    record = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid))
    assert record.status == registry_pb2.RESTRICTION_STATUS_ACTIVE  # the company stays restricted
    [link] = record.principals
    assert link.lifted_at.seconds and objection.objection_id in link.lift_reason


def _overturned(registry, checks, decisions, person: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The refusal of `person` by the first restriction reaching them, objected to, overturned and confirmed;
    returns (restriction id, objection id)."""
    decision = checks.Check(check_request(person, "HOTEL_STAR_RATED"))
    assert decision.outcome == common_pb2.OUTCOME_DENY
    objection = file(decisions, decision.decision_id)
    review(decisions, objection.objection_id)
    resolve(decisions, objection.objection_id, OVERTURNED)
    confirm_resolution(decisions, objection.objection_id)
    return objection.restriction_ids[0], objection.objection_id


def _outcome(checks, person: str, at: float | None = None) -> int:  # type: ignore[no-untyped-def]
    return checks.Check(check_request(person, "HOTEL_STAR_RATED", at=at)).outcome  # type: ignore[no-any-return]


def test_an_overturned_record_refuses_at_no_checked_time(registry, checks, decisions):
    # The attack: the record (in force for 30 days) was wrong from the start, yet a check dated before the overturn
    # (a booking for last week, a purchase contract signed then) still refused once it had been corrected.
    person, paid = new_ric(), new_ric()
    registry.Impose(impose_request(person))
    rid, _ = _overturned(registry, checks, decisions, person)
    now = time.time()
    assert [_outcome(checks, person, at) for at in (now - 29 * 86400, now - 86400, None)] == [ALLOW] * 3
    record = registry.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=rid))
    assert record.status == registry_pb2.RESTRICTION_STATUS_LIFTED
    # A lift is not a correction: a debt paid today was owed last week, and a check dated then still refuses.
    paid_rid, _ = refused(registry, checks, paid)
    lift_confirmed(registry, paid_rid, "debt paid")
    assert [_outcome(checks, paid, at) for at in (now - 86400, None)] == [DENY, ALLOW]


def test_a_record_lifted_before_its_overturn_refuses_at_no_time_either(registry, checks, decisions):
    person = new_ric()
    rid = registry.Impose(impose_request(person)).restriction.id
    refusal = checks.Check(check_request(person, "HOTEL_STAR_RATED")).decision_id
    lift_confirmed(registry, rid, "debt paid")  # lifted first; the objection to the refusal before it goes on
    objection = file(decisions, refusal)
    review(decisions, objection.objection_id)
    resolve(decisions, objection.objection_id, OVERTURNED)
    assert _outcome(checks, person, time.time() - 86400) == DENY  # awaiting confirmation: nothing changes yet
    confirm_resolution(decisions, objection.objection_id)
    assert _outcome(checks, person, time.time() - 86400) == ALLOW


def test_an_overturned_role_link_refuses_its_person_at_no_time_and_the_company_still(registry, checks, decisions):
    person, company = new_ric(), new_uscc()
    registry.Impose(impose_request(company, principals=[(person, common_pb2.ROLE_LEGAL_REPRESENTATIVE)]))
    _overturned(registry, checks, decisions, person)
    a_week_ago = time.time() - 7 * 86400
    assert _outcome(checks, person, a_week_ago) == ALLOW
    assert _outcome(checks, company, a_week_ago) == DENY  # the company's own record stands, at every time


def test_an_allow_cannot_be_objected_to(checks, decisions):
    allowed = checks.Check(check_request(new_ric(), "HOTEL_STAR_RATED"))
    assert allowed.outcome == common_pb2.OUTCOME_ALLOW
    error = rpc_error(lambda: file(decisions, allowed.decision_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


def _filed_or_named(decisions, decision_id: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """The objection a filing made ("filed", its id), or the one ALREADY_EXISTS names ("exists", its id)."""
    try:
        return "filed", file(decisions, decision_id).objection_id
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.ALREADY_EXISTS, error
        found = re.fullmatch(
            rf"decision {decision_id} already has objection (O[0-9a-f]+); nothing was filed", error.details()
        )
        assert found, error.details()
        return "exists", found.group(1)


def test_a_second_objection_names_the_open_one_even_when_filed_at_once(registry, checks, decisions):
    _, decision_id = refused(registry, checks, new_ric())
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _filed_or_named(decisions, decision_id), range(8)))
    assert sorted(kind for kind, _ in answers) == ["exists"] * 7 + ["filed"]
    ids = {objection_id for _, objection_id in answers}
    assert len(ids) == 1
    [objection_id] = ids
    listed = decisions.ListObjections(decision_pb2.ListObjectionsRequest(state=decision_pb2.OBJECTION_STATE_FILED))
    assert [o.objection_id for o in listed.objections].count(objection_id) == 1


def test_upheld_then_one_reconsideration_then_overturned(registry, checks, decisions):
    person = new_ric()
    rid, decision_id = refused(registry, checks, person)
    objection = file(decisions, decision_id)
    review(decisions, objection.objection_id)
    upheld = resolve(decisions, objection.objection_id, UPHELD)
    assert upheld.state == decision_pb2.OBJECTION_STATE_UPHELD
    assert upheld.reconsideration_request_due.seconds > upheld.filed_at.seconds
    assert status_of(registry, rid) == registry_pb2.RESTRICTION_STATUS_ACTIVE  # no longer disputed

    ask = decision_pb2.RequestReconsiderationRequest(objection_id=objection.objection_id, statement="Look again")
    again = decisions.RequestReconsideration(ask)
    assert again.state == decision_pb2.OBJECTION_STATE_RECONSIDERATION
    assert status_of(registry, rid) == registry_pb2.RESTRICTION_STATUS_DISPUTED
    error = rpc_error(lambda: decisions.RequestReconsideration(ask))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "reconsideration" in error.details()

    assert resolve(decisions, objection.objection_id, OVERTURNED).state == (
        decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION
    )
    done = confirm_resolution(decisions, objection.objection_id)
    assert done.state == decision_pb2.OBJECTION_STATE_OVERTURNED
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == common_pb2.OUTCOME_ALLOW
    assert rpc_error(lambda: decisions.RequestReconsideration(ask)).code() == grpc.StatusCode.FAILED_PRECONDITION


def test_a_restriction_stays_disputed_while_another_objection_on_it_is_open(registry, checks, decisions):
    person = new_ric()
    rid, first = refused(registry, checks, person)
    second = checks.Check(check_request(person, "AIR_TRAVEL")).decision_id
    a, b = file(decisions, first), file(decisions, second)
    review(decisions, a.objection_id)
    resolve(decisions, a.objection_id, UPHELD)
    assert status_of(registry, rid) == registry_pb2.RESTRICTION_STATUS_DISPUTED
    review(decisions, b.objection_id)
    resolve(decisions, b.objection_id, UPHELD)
    assert status_of(registry, rid) == registry_pb2.RESTRICTION_STATUS_ACTIVE


def test_a_step_not_allowed_from_the_state_names_it_and_writes_nothing(registry, checks, decisions):
    _, decision_id = refused(registry, checks, new_ric())
    objection = file(decisions, decision_id)
    error = rpc_error(lambda: resolve(decisions, objection.objection_id, UPHELD))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "is filed" in error.details()
    stored = decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection.objection_id))
    assert stored == objection


@pytest.mark.parametrize(
    ("call", "code", "field"),
    [
        (lambda d: file(d, "nonsense"), grpc.StatusCode.INVALID_ARGUMENT, "decision_id:"),
        (lambda d: file(d, "aaaaaaaaaaaaaaaaaaaaaaaaaa"), grpc.StatusCode.NOT_FOUND, ""),
        (
            lambda d: d.FileObjection(decision_pb2.FileObjectionRequest(decision_id="aaaaaaaaaaaaaaaaaaaaaaaaaa")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "statement:",
        ),
        (lambda d: review(d, "bad"), grpc.StatusCode.INVALID_ARGUMENT, "objection_id:"),
        (lambda d: review(d, "Oabc000000000000"), grpc.StatusCode.NOT_FOUND, ""),
        (
            lambda d: d.GetObjection(decision_pb2.GetObjectionRequest(objection_id="Oabc000000000000")),
            grpc.StatusCode.NOT_FOUND,
            "",
        ),
    ],
)
def test_bad_requests(decisions, call, code, field):
    error = rpc_error(lambda: call(decisions))
    assert error.code() == code
    assert error.details().startswith(field)


def test_bad_resolve_is_invalid_argument_and_writes_nothing(registry, checks, decisions):
    _, decision_id = refused(registry, checks, new_ric())
    objection = review(decisions, file(decisions, decision_id).objection_id)
    cases = [
        (decision_pb2.OBJECTION_OUTCOME_UNSPECIFIED, "", "why", "outcome:"),
        (UPHELD, "Wang", "why", "reviewer:"),  # not the caller's own identity
        (UPHELD, "reviewer:wang", " ", "reason:"),
    ]
    for outcome, reviewer, reason, field in cases:
        request = decision_pb2.ResolveObjectionRequest(
            objection_id=objection.objection_id, outcome=outcome, reviewer=reviewer, reason=reason
        )
        error = rpc_error(lambda r=request: decisions.ResolveObjection(r, metadata=AS_REVIEWER))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details().startswith(field)
    stored = decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection.objection_id))
    assert stored == objection


def every_page(decisions, page_size: int = 0, **filters) -> list[list[decision_pb2.Objection]]:  # type: ignore[no-untyped-def]
    pages, token = [], ""
    while True:
        request = decision_pb2.ListObjectionsRequest(page_size=page_size, page_token=token, **filters)
        page = decisions.ListObjections(request)
        pages.append(list(page.objections))
        token = page.next_page_token
        if not token:
            return pages


def test_overdue_listing_leaves_out_fresh_objections(registry, checks, decisions):
    _, decision_id = refused(registry, checks, new_ric())
    fresh = file(decisions, decision_id)
    everything = [o for page in every_page(decisions) for o in page]
    assert fresh.objection_id in [o.objection_id for o in everything]
    late = [o for page in every_page(decisions, overdue_only=True) for o in page]
    assert fresh.objection_id not in [o.objection_id for o in late]
    assert all(o.overdue for o in late)


def test_an_objection_past_its_review_deadline_is_listed_and_counted_as_overdue(
    registry, checks, decisions, redis_server
):
    late = file(decisions, refused(registry, checks, new_ric())[1])
    fresh = file(decisions, refused(registry, checks, new_ric())[1])
    # Court lists: reviewed within 15 days.
    filed_days_ago(
        redis_server.url, late.objection_id, 16, cluster=isinstance(redis_server, LocalCluster),
        objection_keys=TEST_OBJECTION_KEYS,
    )  # fmt: skip
    overdue = [o for page in every_page(decisions, overdue_only=True) for o in page]
    assert late.objection_id in [o.objection_id for o in overdue]
    assert fresh.objection_id not in [o.objection_id for o in overdue]
    assert all(o.overdue for o in overdue)
    shown = decisions.GetObjection(decision_pb2.GetObjectionRequest(objection_id=late.objection_id))
    assert shown.overdue and shown.review_due.seconds < time.time()
    # Reviewed and overturned: the review deadline is met at the resolution, the correction's is days ahead.
    review(decisions, late.objection_id)
    resolve(decisions, late.objection_id, OVERTURNED)
    overdue = [o for page in every_page(decisions, overdue_only=True) for o in page]
    assert late.objection_id not in [o.objection_id for o in overdue]


def test_objections_are_listed_in_pages_soonest_deadline_first(registry, checks, decisions):
    filed = {file(decisions, refused(registry, checks, new_ric())[1]).objection_id for _ in range(5)}
    pages = every_page(decisions, page_size=2, state=decision_pb2.OBJECTION_STATE_FILED)
    assert all(len(page) == 2 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    listed = [(o.review_due.seconds, o.objection_id) for page in pages for o in page]
    assert listed == sorted(set(listed))  # in order, none twice
    assert filed <= {oid for _, oid in listed}  # none skipped


@pytest.mark.parametrize("token", ["7", "x.Oa3f000000000001", "99999999999999.Oa3f000000000001", "1.O zz"])
def test_a_page_token_not_given_by_the_service_is_invalid(decisions, token):
    request = decision_pb2.ListObjectionsRequest(page_token=token)
    error = rpc_error(lambda: decisions.ListObjections(request))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("page_token")


def test_a_corrected_objection_leaves_the_deadline_order(registry, checks, decisions, redis_server):
    """Overturned and corrected, nothing is due any more: its index place moves past every deadline, so that the
    overdue query (by deadline) never wades through the growing pile of settled objections."""
    objection = file(decisions, refused(registry, checks, new_ric())[1])
    review(decisions, objection.objection_id)
    resolve(decisions, objection.objection_id, OVERTURNED)
    assert confirm_resolution(decisions, objection.objection_id).state == decision_pb2.OBJECTION_STATE_OVERTURNED
    key = ObjectionKeys().state(ObjectionState.OVERTURNED)
    on_cluster = isinstance(redis_server, LocalCluster)
    client = (redis_client.RedisCluster if on_cluster else redis_client.Redis).from_url(redis_server.url)
    assert client.zscore(key, objection.objection_id) >= NOTHING_DUE


def _cli(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "debar.cli.main", "objections", *args, "--address", address],
        capture_output=True, text=True, timeout=60, env={"DEBAR_PSEUDONYM_KEYS": KEYS, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip


def test_the_cli_lists_shows_reviews_and_resolves(registry, checks, decisions, sanction):
    _, decision_id = refused(registry, checks, new_ric())
    objection = file(decisions, decision_id)
    listed = _cli(sanction.address, "list", "--state", "filed")
    assert listed.returncode == 0, listed.stderr
    assert objection.objection_id in listed.stdout and "filed" in listed.stdout
    assert _cli(sanction.address, "review", objection.objection_id).returncode == 0
    resolved = _cli(
        sanction.address, "resolve", objection.objection_id, "--outcome", "upheld", "--reason", "the record is right"
    )
    assert resolved.returncode == 0, resolved.stderr
    shown = _cli(sanction.address, "show", objection.objection_id)
    assert '"state": "OBJECTION_STATE_UPHELD"' in shown.stdout
    assert '"actor": "local"' in shown.stdout  # whoever called: local mode's identity here, never a typed name
    again = _cli(sanction.address, "review", objection.objection_id)
    assert again.returncode == 1 and "FAILED_PRECONDITION" in again.stderr


def test_the_cli_confirms_an_overturn_only_by_another_reviewer(registry, checks, decisions, sanction):
    person = new_ric()
    _, decision_id = refused(registry, checks, person)
    objection = file(decisions, decision_id)
    assert _cli(sanction.address, "review", objection.objection_id, "--reviewer", "reviewer:wang").returncode == 0
    resolved = _cli(
        sanction.address, "resolve", objection.objection_id, "--outcome", "overturned", "--reviewer", "reviewer:wang",
        "--reason", "mistaken identity",
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    assert '"state": "OBJECTION_STATE_AWAITING_CONFIRMATION"' in resolved.stdout
    listed = _cli(sanction.address, "list", "--state", "awaiting_confirmation")
    [line] = [line for line in listed.stdout.splitlines() if objection.objection_id in line]
    assert "awaiting_confirmation" in line and "reviewer:wang" in line  # who resolved: someone else must confirm
    own = _cli(sanction.address, "confirm", objection.objection_id, "--reviewer", "reviewer:wang")
    assert own.returncode == 1 and "PERMISSION_DENIED" in own.stderr and "different reviewer" in own.stderr
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == common_pb2.OUTCOME_DENY
    confirmed = _cli(sanction.address, "confirm", objection.objection_id, "--reviewer", "reviewer:li")
    assert confirmed.returncode == 0, confirmed.stderr
    assert '"state": "OBJECTION_STATE_OVERTURNED"' in confirmed.stdout
    assert '"confirmedBy": "reviewer:li"' in confirmed.stdout
    assert checks.Check(check_request(person, "HOTEL_STAR_RATED")).outcome == common_pb2.OUTCOME_ALLOW


# -- the transition log ---------------------------------------------------------------------------------------


@pytest.fixture
def private_system(tmp_path, logs_dir):
    server = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": server.url, "DEBAR_PSEUDONYM_KEYS": KEYS, "DEBAR_DATA_DIR": str(tmp_path)}
    service = start_service("sanction", env, logs_dir)
    yield server, service
    service.stop()
    server.stop()


async def _entries(url: str) -> list[ObjectionEntry]:
    """The objection log as the Merkle log's integrator reads it: each transition one canonical entry."""
    client = Redis.from_url(url)
    try:
        log = RedisSequencedLog(client, Keys(), DecisionIds.for_bucket_key(DEV_BUCKET_KEY))
        records = await log.read_after(ObjectionKeys().log, "", 1000)
        return [ObjectionEntry.decode(e) for r in records for e in r.entries]
    finally:
        await client.aclose()


async def test_every_transition_is_a_log_entry_and_a_rewrite_changes_its_bytes(private_system):
    """The transition log is a sequencing stream: its entries are Merkle leaves, so an insider who rewrites who
    took an objection under review changes the entry's bytes, and `debar log verify` names it (the attacks on
    every stream are tests/integration/test_tlog_attacks.py)."""
    server, service = private_system
    with grpc.insecure_channel(service.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        checks = sanction_pb2_grpc.SanctionServiceStub(channel)
        decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        _, decision_id = refused(registry, checks, new_ric())
        objection = file(decisions, decision_id)
        review(decisions, objection.objection_id)
        resolve(decisions, objection.objection_id, UPHELD)

    logged = await _entries(server.url)
    assert [(e.actor, e.to_state) for e in logged] == [
        ("subject", "filed"), ("reviewer:wang", "under_review"), ("reviewer:wang", "upheld"),
    ]  # fmt: skip
    assert {e.decision_id for e in logged} == {decision_id} and {e.objection_id for e in logged} == {
        objection.objection_id
    }
    r = redis_client.Redis.from_url(server.url)
    entries = [(sid, dict(fields)) for sid, fields in r.xrange("debar:objlog")]
    entries[1][1][b"a"] = b"someone else"  # rewrite who took it under review
    r.delete("debar:objlog")
    for sid, fields in entries:
        r.xadd("debar:objlog", fields, id=sid)
    rewritten = await _entries(server.url)
    assert rewritten[1].actor == "someone else" and rewritten[1].encode() != logged[1].encode()
    assert rewritten[0] == logged[0] and rewritten[2] == logged[2]
