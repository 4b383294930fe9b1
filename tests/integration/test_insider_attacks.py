"""A security review of issue 11, as the insiders it names, over real gRPC with `debar certs dev` certificates and a
real Redis: each test is an attack that worked on the reviewed main and is refused now."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest

from debar.local.certs import write_dev_certs
from debar.sanction.adapters.keys import ObjectionKeys
from debar.v1 import common_pb2, decision_pb2, railway_pb2_grpc, registry_pb2, watch_pb2, watch_pb2_grpc
from tests.integration import test_access
from tests.integration.test_access import (
    KEYS,
    RAILWAY,
    SANCTION,
    TIMEOUT,
    acting_for,
    audit_lines,
    bearer,
    checks_of,
    credentials,
    decisions_of,
    g_ticket,
    packaged_scopes,
    refused_decision,
    registry_of,
    rpc_error,
    start_mtls,
)
from tests.support.requests import DAY, PERMIT_DOCUMENT, check_request, impose_request, permit_confirmation, subject, ts
from tests.support.servers import ServiceProcess
from tests.support.subjects import new_ric

# test_access's token-mode sanction service (its trust file and keys), started again for this module.
access_env, token_files, sanction_token = test_access.access_env, test_access.token_files, test_access.sanction_token
NOT_FOUND, EXHAUSTED = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED
# A portal with a tiny rate in a long window: its reads run out after a few.
EXTRA = {
    # A tool's identity (a bare name, no person) that an operator gave objection scopes, say for a triage job.
    "triage-bot": {"scopes": ["objections:review", "decisions:read"]},
    # A platform with its own certificate and a tiny rate: three items an hour.
    "platform:nosy": {"scopes": ["watch"], "rate": {"checks": 3, "window_s": 3600}},
    "platform:greedy": {"scopes": ["watch"], "rate": {"checks": 3, "window_s": 3600}},
    "platform:greedier": {"scopes": ["watch"], "rate": {"checks": 3, "window_s": 3600}},
    "portal:tiny": {"scopes": ["decisions:read", "objections:file"], "rate": {"checks": 3, "window_s": 3600}},
    "reviewer:tiny": {
        "scopes": ["objections:review", "decisions:read", "registry:read"],
        "rate": {"checks": 3, "window_s": 3600},
    },
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("attack-certs")
    write_dev_certs(directory)
    write_dev_certs(directory, services=(), clients=(*EXTRA, "local", "clerk:zhao"))
    return directory


@pytest.fixture(scope="module")
def sanction_tls(
    service_env: dict[str, str],
    certs: Path,
    logs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
    token_files: dict[str, str],
) -> Iterator[ServiceProcess]:
    scopes = packaged_scopes()
    scopes["callers"].update(EXTRA)
    path = tmp_path_factory.mktemp("attack-scopes") / "scopes.json"
    path.write_text(json.dumps(scopes))
    env = {k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"}
    env.update(DEBAR_SCOPES_FILE=str(path), DEBAR_TOKEN_TRUST_FILE=token_files["trust"])  # people's proofs' issuers
    service = start_mtls("sanction", env, certs, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


@pytest.fixture(scope="module")
def as_caller(sanction_tls: ServiceProcess, certs: Path) -> Iterator[Callable[[str], grpc.Channel]]:
    channels: dict[str, grpc.Channel] = {}

    def channel(name: str) -> grpc.Channel:
        if name not in channels:
            channels[name] = grpc.secure_channel(sanction_tls.address, credentials(certs, name))
        return channels[name]

    yield channel
    for chan in channels.values():
        chan.close()


# --- a portal: FileObjection and RequestReconsideration as an ownership oracle ------------------------------------


def test_filing_is_no_unmetered_unaudited_oracle_of_whose_decision_it_is(as_caller, sanction_tls):
    """Before: FileObjection with a guessed `subject` and an empty statement answered NOT_FOUND for a wrong guess and
    INVALID_ARGUMENT (statement) for the right one, filing nothing, counted against no rate and written to no audit
    log: a portal could try every identifier of a region and birth date against one decision id, unseen."""
    person = new_ric()
    decision_id = refused_decision(as_caller, person)
    portal = decisions_of(as_caller("portal:tiny"))

    def guess(number: str) -> grpc.RpcError:
        request = decision_pb2.FileObjectionRequest(decision_id=decision_id, statement="", contact="x@example.cn",
                                                    subject=subject(number))  # fmt: skip
        return rpc_error(portal.FileObjection, request)

    answers = [guess(new_ric()).code() for _ in range(3)]
    assert answers == [NOT_FOUND] * 3
    assert guess(person).code() == EXHAUSTED  # the fourth try is past the rate: the right guess is not told
    lines = audit_lines(sanction_tls, "portal:tiny", "FileObjection")
    assert [line.split("status=")[1].split()[0] for line in lines] == [*(["NOT_FOUND"] * 3), "RESOURCE_EXHAUSTED"]
    reconsider = rpc_error(portal.RequestReconsideration, decision_pb2.RequestReconsiderationRequest(
        objection_id="O" + "0" * 15, statement="again", subject=subject(person)))  # fmt: skip
    assert reconsider.code() == EXHAUSTED
    assert audit_lines(sanction_tls, "portal:tiny", "RequestReconsideration")


# --- a registry clerk: a court list's restriction weakened by Impose, with no second identity -------------------


@pytest.mark.parametrize("weakening", ["ended", "measure dropped", "starts later"])
def test_one_clerk_cannot_lift_a_court_restriction_by_imposing_it_again_weaker(as_caller, weakening):
    """Before: Lift of a court list's restriction waited for a second registry identity, but the same clerk could
    Impose the record again (same source and source id) ending now, without the refused measure, or starting
    years ahead: the next check allowed, on one credential."""
    person, source_id = new_ric(), f"W-{time.time_ns()}"
    clerk = registry_of(as_caller("clerk:wang"))
    clerk.Impose(impose_request(person, source_id=source_id), timeout=TIMEOUT)
    railway = checks_of(as_caller("railway"))
    assert railway.Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT).outcome == common_pb2.OUTCOME_DENY
    weaker = {
        "ended": impose_request(person, source_id=source_id, end=time.time() - 60),
        "measure dropped": impose_request(person, source_id=source_id, measures=["AIR_TRAVEL"]),
        "starts later": impose_request(person, source_id=source_id, start=time.time() + 3650 * DAY),
    }[weakening]
    error = rpc_error(clerk.Impose, weaker)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    assert "Lift" in error.details()
    assert railway.Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT).outcome == common_pb2.OUTCOME_DENY


# --- the console: a delegate acting for no one is no reviewer -----------------------------------------------------


def test_the_console_cannot_be_the_second_pair_of_eyes_under_its_own_name(as_caller):
    """Before: the console holds objections:review (its person pages read as itself), so a call from it naming no
    reviewer acted as "console": reviewer:li overturned with her own certificate, and the console's credential alone
    confirmed, a role and not a person, and the restriction was lifted."""
    person = new_ric()
    decision_id = refused_decision(as_caller, person)
    filed = decisions_of(as_caller("portal")).FileObjection(
        decision_pb2.FileObjectionRequest(decision_id=decision_id, statement="Not me.", contact="me@x.cn",
                                          subject=subject(person)), timeout=TIMEOUT)  # fmt: skip
    li = decisions_of(as_caller("reviewer:li"))
    li.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=filed.objection_id), timeout=TIMEOUT)
    li.ResolveObjection(decision_pb2.ResolveObjectionRequest(
        objection_id=filed.objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="mistaken"),
        timeout=TIMEOUT)  # fmt: skip
    console = decisions_of(as_caller("console"))
    error = rpc_error(console.ConfirmResolution, decision_pb2.ConfirmResolutionRequest(objection_id=filed.objection_id))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "acts only for the person it names" in error.details()
    # Nor by naming itself (or another delegate) as the person it acts for.
    for principal in ("console", "railway"):
        named = rpc_error(console.ConfirmResolution, decision_pb2.ConfirmResolutionRequest(
            objection_id=filed.objection_id), metadata=[("x-debar-on-behalf-of", principal)])  # fmt: skip
        assert named.code() == grpc.StatusCode.PERMISSION_DENIED, principal
        assert "a delegate acts for people and platforms" in named.details()
    railway = checks_of(as_caller("railway"))
    assert railway.Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT).outcome == common_pb2.OUTCOME_DENY
    # For a person (the reviewer signed in to it, with their proof) it acts as that person, and four eyes hold.
    own = rpc_error(console.ConfirmResolution, decision_pb2.ConfirmResolutionRequest(objection_id=filed.objection_id),
                    metadata=acting_for("reviewer:li"))  # fmt: skip
    assert own.code() == grpc.StatusCode.PERMISSION_DENIED and "different reviewer" in own.details()
    confirmed = console.ConfirmResolution(
        decision_pb2.ConfirmResolutionRequest(objection_id=filed.objection_id),
        metadata=acting_for("reviewer:zhang"),
        timeout=TIMEOUT,
    )
    assert confirmed.history[-1].actor == "reviewer:zhang"


# --- a leaked token: one token, one service -----------------------------------------------------------------------


def test_a_token_for_several_services_is_refused(sanction_token):
    """Before: `aud` was checked as PyJWT does by default, where a list naming this service passes: a token for the
    railway service and the sanction service together, sent to one, could be replayed at the other."""
    now = int(time.time())
    claims = {"iss": "staff", "sub": "clerk:wang", "aud": [RAILWAY, SANCTION], "iat": now, "exp": now + 300,
              "jti": "multi"}  # fmt: skip
    with grpc.insecure_channel(sanction_token.address) as channel:
        error = rpc_error(registry_of(channel).ListRestrictions,
                          registry_pb2.ListRestrictionsRequest(subject=subject(new_ric())),
                          metadata=bearer(jwt.encode(claims, KEYS["staff"], algorithm="EdDSA")))  # fmt: skip
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "not for this service" in error.details()


# --- Envoy's (or any unlisted) certificate asking through a domain service ----------------------------------------


@pytest.fixture(scope="module")
def railway_tls(sanction_tls, service_env, certs, logs_dir) -> Iterator[ServiceProcess]:
    env = {k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"}
    env = {**env, "DEBAR_SANCTION_ADDRESS": sanction_tls.address, "DEBAR_PLATFORM_RATE_CHECKS": "0"}
    service = start_mtls("railway", env, certs, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


@pytest.mark.parametrize("unlisted", ["envoy", "local"])
def test_an_identity_the_scopes_file_does_not_name_gets_no_domain_services_rate(
    railway_tls, sanction_tls, certs, unlisted
):
    """Before: the railway service asked for whoever called it; for an identity with no entry in the scopes file
    (`envoy`, say, or `bench` in production) the sanction service counted the calls at the railway service's own
    rate (5000 a second), on a key of their own: an Envoy's key enumerated five times faster than any platform.
    A certificate named `local` (no one outside local mode) was let through the same way."""
    with grpc.secure_channel(railway_tls.address, credentials(certs, unlisted)) as channel:
        stub = railway_pb2_grpc.RailwayServiceStub(channel)
        error = rpc_error(stub.CheckTicket, g_ticket())
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "PERMISSION_DENIED" in error.details()
    assert f"may not act on behalf of {unlisted!r}, named in no scopes entry" in sanction_tls.log()
    with grpc.secure_channel(railway_tls.address, credentials(certs, "platform:12306")) as channel:
        assert railway_pb2_grpc.RailwayServiceStub(channel).CheckTicket(g_ticket(), timeout=TIMEOUT).allowed


# --- a registry clerk: a permit granted alone ahead of the court order it will meet --------------------------------


def ticket_permit(person: str) -> registry_pb2.GrantExemptionRequest:
    """A RAIL_TICKET_BAN permit: no court list imposes that measure by default, so for a person nothing restricts it
    needs no second identity and is in force at once."""
    return registry_pb2.GrantExemptionRequest(
        subject=subject(person), measure="RAIL_TICKET_BAN", effective_from=ts(time.time() - DAY),
        effective_until=ts(time.time() + 300 * DAY), authority="Chaoyang Court", reason="travel for treatment",
        document_number=PERMIT_DOCUMENT,
    )  # fmt: skip


def listed_permits(as_caller, person: str) -> list[tuple[str, bool, str]]:  # type: ignore[no-untyped-def]
    listed = registry_of(as_caller("clerk:wang")).ListRestrictions(
        registry_pb2.ListRestrictionsRequest(subject=subject(person)), timeout=TIMEOUT
    )
    return [(x.id, x.awaiting_confirmation, x.confirmed_by) for x in listed.exemptions]


def test_a_permit_granted_alone_does_not_override_a_later_court_order_naming_its_measure(as_caller):
    """Before: one clerk grants a RAIL_TICKET_BAN permit to a person nothing restricts (in force at once: its need
    for a second identity was judged at the grant); a court order naming RAIL_TICKET_BAN explicitly arrives later;
    the permit, confirmed by no one, turned the court's refusal into an allow."""
    person = new_ric()
    clerk = registry_of(as_caller("clerk:wang"))
    assert not clerk.GrantExemption(ticket_permit(person), timeout=TIMEOUT).exemption.awaiting_confirmation
    clerk.Impose(impose_request(person, measures=["RAIL_TICKET_BAN"]), timeout=TIMEOUT)
    answer = checks_of(as_caller("railway")).Check(check_request(person, "RAIL_TICKET_BAN"), timeout=TIMEOUT)
    assert answer.outcome == common_pb2.OUTCOME_DENY


def test_a_permit_granted_alone_overrides_the_later_court_order_once_a_second_identity_confirms_it(as_caller):
    """The registry says the permit now awaits confirmation; its granter cannot give it; another clerk can, and then
    the permit overrides the court order (and the check names it)."""
    person = new_ric()
    wang, zhao = registry_of(as_caller("clerk:wang")), registry_of(as_caller("clerk:zhao"))
    permit = wang.GrantExemption(ticket_permit(person), timeout=TIMEOUT).exemption
    assert listed_permits(as_caller, person) == [(permit.id, False, "")]
    order = wang.Impose(impose_request(person, measures=["RAIL_TICKET_BAN"]), timeout=TIMEOUT).restriction
    assert listed_permits(as_caller, person) == [(permit.id, True, "")]

    def meeting() -> list[tuple[str, bool]]:
        got = wang.GetRestriction(registry_pb2.GetRestrictionRequest(restriction_id=order.id), timeout=TIMEOUT)
        return [(x.id, x.awaiting_confirmation) for x in got.exemptions]

    assert meeting() == [(permit.id, True)]
    confirm = permit_confirmation(subject(person), permit.id, permit)
    own = rpc_error(wang.ConfirmExemption, confirm)
    assert own.code() == grpc.StatusCode.PERMISSION_DENIED and "a different registry identity" in own.details()
    railway = checks_of(as_caller("railway"))
    assert railway.Check(check_request(person, "RAIL_TICKET_BAN"), timeout=TIMEOUT).outcome == common_pb2.OUTCOME_DENY
    confirmed = zhao.ConfirmExemption(confirm, timeout=TIMEOUT)
    assert not confirmed.exemption.awaiting_confirmation and confirmed.exemption.confirmed_by == "clerk:zhao"
    assert listed_permits(as_caller, person) == [(permit.id, False, "clerk:zhao")]
    assert meeting() == [(permit.id, False)]
    answer = railway.Check(check_request(person, "RAIL_TICKET_BAN", min_revision=confirmed.revision), timeout=TIMEOUT)
    assert answer.outcome == common_pb2.OUTCOME_ALLOW and answer.exemption.exemption_id == permit.id


def test_a_permit_granted_alone_over_a_railway_record_is_in_force_at_once_as_before(as_caller):
    """A railway record's lifts need no second identity: the permit overrides it unconfirmed, awaits nothing, and a
    confirmation is refused as there is nothing to confirm."""
    person = new_ric()
    wang, zhao = registry_of(as_caller("clerk:wang")), registry_of(as_caller("clerk:zhao"))
    record = impose_request(person, source="railway_passenger_credit", start=time.time() - DAY)
    wang.Impose(record, timeout=TIMEOUT)
    permit = wang.GrantExemption(ticket_permit(person), timeout=TIMEOUT)
    assert not permit.exemption.awaiting_confirmation
    assert listed_permits(as_caller, person) == [(permit.exemption.id, False, "")]
    railway = checks_of(as_caller("railway"))
    answer = railway.Check(check_request(person, "RAIL_TICKET_BAN", min_revision=permit.revision), timeout=TIMEOUT)
    assert answer.outcome == common_pb2.OUTCOME_ALLOW and answer.exemption.exemption_id == permit.exemption.id
    confirm = permit_confirmation(subject(person), permit.exemption.id, permit.exemption)
    error = rpc_error(zhao.ConfirmExemption, confirm)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "awaits no confirmation" in error.details()


def test_the_console_acting_for_a_clerk_writes_nothing(as_caller):
    """Held before and after (a regression check of the review): delegation narrows the clerk's scopes to the
    console's, which hold no registry:write."""
    person = new_ric()
    imposed = registry_of(as_caller("clerk:wang")).Impose(impose_request(person), timeout=TIMEOUT)
    lift = registry_pb2.LiftRequest(restriction_id=imposed.restriction.id, reason="paid", document_number="D-1")
    error = rpc_error(registry_of(as_caller("console")).Lift, lift, metadata=acting_for("clerk:wang"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "caller 'console' for 'clerk:wang' may not call /debar.v1.RegistryService/Lift" in error.details()


# --- a reviewer: two rates, one with their own certificate and one through the console -----------------------


def test_a_reviewer_has_one_rate_directly_and_through_the_console(as_caller, sanction_tls):
    """Before: reviewer:tiny's reads counted on `reviewer:tiny` when made with their own certificate and on
    `console/reviewer:tiny` through the console, each at the reviewer's rate: twice the reads (and two figures in
    the enumeration alarm, neither showing all of them). A person's rate is theirs however they reach the service."""
    read = decision_pb2.GetDecisionRequest(decision_id=refused_decision(as_caller, new_ric()))
    direct = decisions_of(as_caller("reviewer:tiny"))
    for _ in range(3):
        direct.GetDecision(read, timeout=TIMEOUT)
    console = decisions_of(as_caller("console"))
    through = rpc_error(console.GetDecision, read, metadata=acting_for("reviewer:tiny"))
    assert through.code() == EXHAUSTED, through.details()
    line = audit_lines(sanction_tls, "console", "GetDecision")[-1]
    assert "on_behalf_of=reviewer:tiny" in line and "status=RESOURCE_EXHAUSTED" in line


# --- a Redis insider (no key) and one reviewer: the objection record rewritten ----------------------------------


def _redis(service_env: dict[str, str]) -> Any:
    import redis as redis_client

    from tests.conftest import ON_CLUSTER

    return (redis_client.RedisCluster if ON_CLUSTER else redis_client.Redis).from_url(service_env["DEBAR_REDIS_URL"])


def test_a_rewritten_objection_record_cannot_make_one_reviewer_the_second_pair_of_eyes(as_caller, service_env):
    """Before: the objection record is plain JSON in Redis (only the person's words sealed). An insider with Redis
    write access and no key rewrote a filed objection to 'awaiting_confirmation', overturned by a reviewer:zhang who
    never saw it, and reviewer:li alone confirmed it: the court's restriction was lifted by one reviewer, every log
    entry written on the way genuine and signed. Now the record carries a seal over all of it (DEBAR_OBJECTION_KEYS,
    which Redis never holds): a rewritten record does not open, and nothing is done with it."""
    person, objection_id = test_access.refused_and_objected(as_caller)
    r = _redis(service_env)
    key = ObjectionKeys().records(objection_id)
    genuine = r.hget(key, objection_id)
    record = json.loads(genuine)
    filed_at = record["history"][0][4]
    record["state"] = "awaiting_confirmation"
    record["history"] += [
        ["filed", "under_review", "reviewer:zhang", "", filed_at + 1],
        ["under_review", "awaiting_confirmation", "reviewer:zhang", "not this person", filed_at + 2],
    ]
    r.hset(key, objection_id, json.dumps(record, separators=(",", ":"), ensure_ascii=False))
    li = decisions_of(as_caller("reviewer:li"))
    try:
        error = rpc_error(li.ConfirmResolution, decision_pb2.ConfirmResolutionRequest(objection_id=objection_id))
        assert error.code() == grpc.StatusCode.INTERNAL and "altered" in error.details(), error.details()
        again = checks_of(as_caller("railway")).Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT)
        assert again.outcome == common_pb2.OUTCOME_DENY  # the court's restriction still refuses
    finally:  # the session's Redis is shared: a record that does not open fails every listing that meets it
        r.hset(key, objection_id, genuine)
        r.close()


# --- the console's certificate alone, and an identity that is no person ------------------------------------------


def test_the_console_cannot_act_for_an_identity_that_is_no_person_in_an_act_that_records_who_acted(as_caller):
    """Before: a person's proof is asked for `kind:name` identities only; a bare name (a service or tool) is taken on
    the delegate's word. With a scopes file giving such a name objections:review (triage-bot here), the console's
    certificate alone confirmed reviewer:li's overturn "as" triage-bot: a second pair of eyes nobody proved, and
    the court's restriction lifted. Now an act that records who acted, done by a delegate, must be for a person
    (who then must prove it): PERMISSION_DENIED, nothing written."""
    person, objection_id = test_access.overturned_by_li(as_caller)
    console = decisions_of(as_caller("console"))
    error = rpc_error(console.ConfirmResolution, decision_pb2.ConfirmResolutionRequest(objection_id=objection_id),
                      metadata=[("x-debar-on-behalf-of", "triage-bot")])  # fmt: skip
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error.details()
    assert "'triage-bot', which is no person" in error.details(), error.details()
    test_access.assert_unchanged(as_caller, person, objection_id, decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION,
                                 ["subject", "reviewer:li", "reviewer:li"])  # fmt: skip
    # Its reads, which record no actor, are the delegate's to make for it as before.
    read = console.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id),
                                metadata=[("x-debar-on-behalf-of", "triage-bot")], timeout=TIMEOUT)  # fmt: skip
    assert read.objection_id == objection_id


# --- a platform with its own certificate: subscriptions as an unmetered oracle ---------------------------------


def _subscriptions(people: list[str], measure: str) -> watch_pb2.SubscribeBatchRequest:
    return watch_pb2.SubscribeBatchRequest(items=[
        watch_pb2.SubscribeRequest(subject=subject(person), measures=[measure], until=ts(time.time() + 30 * DAY),
                                   tag=f"order-{i}")
        for i, person in enumerate(people)
    ])  # fmt: skip


def test_a_platforms_subscriptions_count_against_its_rate_and_are_audited(as_caller, sanction_tls):
    """Before: Subscribe and SubscribeBatch counted against no rate, in no distinct-subjects figure and no audit
    line. A platform (its own certificate, scope watch) could hold a million subscriptions on ID numbers it walks,
    of any domain's measures, and be told each one's BECAME_RESTRICTED with every ground, or NO_LONGER_RESTRICTED
    (so: restricted until now), as no check or read would let it. Now each item subscribed counts one against the
    caller's rate, as a checked or read item does, its subject goes into the caller's distinct subjects, and the
    call is in the audit log."""
    watch = watch_pb2_grpc.WatchServiceStub(as_caller("platform:nosy"))
    people = [new_ric() for _ in range(10)]
    error = rpc_error(watch.SubscribeBatch, _subscriptions(people, "PROCUREMENT_BID"))
    assert error.code() == EXHAUSTED, error.details()
    line = audit_lines(sanction_tls, "platform:nosy", "SubscribeBatch")[-1]
    assert "status=RESOURCE_EXHAUSTED" in line, line
    done = watch_pb2_grpc.WatchServiceStub(as_caller("platform:12306")).SubscribeBatch(
        _subscriptions(people[:2], "RAIL_G_TRAIN"), timeout=TIMEOUT
    )  # within its rate, as before
    assert all(r.HasField("subscription") for r in done.results)
    line = audit_lines(sanction_tls, "platform:12306", "SubscribeBatch")[-1]
    assert "status=OK" in line and "subject_count=2" in line, line


WATCHED_BY_EVERY_DOMAIN = ["RAIL_G_TRAIN", "HOTEL_STAR_RATED", "REAL_ESTATE_PURCHASE", "PROCUREMENT_BID"]


@pytest.mark.parametrize("batch", [False, True], ids=["Subscribe", "SubscribeBatch"])
def test_one_subscription_of_many_measures_counts_each_measure_against_the_rate(as_caller, sanction_tls, batch):
    """The attack (security review, a platform as the insider): a subscription tells what a check would, for each
    of its measures, but counted one item whatever it named. platform:greedy (3 items an hour) subscribed one
    person to 4 measures (up to 32: every domain's) for the price of one check, and then again for others, told
    each measure's BECAME_RESTRICTED with every ground: a check of the same would cost 4. Now each measure of an
    item counts one, as a checked (subject, measure) item does."""
    name = "platform:greedier" if batch else "platform:greedy"  # each its own rate
    watch = watch_pb2_grpc.WatchServiceStub(as_caller(name))
    item = watch_pb2.SubscribeRequest(subject=subject(new_ric()), measures=WATCHED_BY_EVERY_DOMAIN,
                                      until=ts(time.time() + 30 * DAY), tag="order-1")  # fmt: skip
    if batch:
        error = rpc_error(watch.SubscribeBatch, watch_pb2.SubscribeBatchRequest(items=[item]))
    else:
        error = rpc_error(watch.Subscribe, item)
    assert error.code() == EXHAUSTED, error.details()
