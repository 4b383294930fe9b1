"""Who may ask what, over real gRPC and a real Redis: mutual TLS with `debar certs dev` certificates (one per
actor), scopes per method and per measure, the acting identity taken from the credential, the caller (and the
platform it asks for) in the decision log, delegation, per-caller and per-platform rates shared by replicas, and
signed tokens that no issuer can stretch beyond the identities its trust-file entry names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import jwt
import pytest
import redis

from debar.common.identifiers import IdKind, Pseudonymiser, parse_keys, validate_identifier
from debar.local.certs import write_dev_certs
from debar.local.embedded_redis import free_port
from debar.rpc import tokens
from debar.rpc.trust import trust_entry
from debar.v1 import (
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    railway_pb2,
    railway_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    sanction_pb2,
    sanction_pb2_grpc,
)
from tests.conftest import ON_CLUSTER, TEST_KEYS
from tests.support.metrics import scrape, total
from tests.support.requests import check_request, impose_request, subject
from tests.support.servers import ServiceProcess, start_service, wait_for
from tests.support.subjects import new_ric

TIMEOUT = 5
DENIED, EXHAUSTED = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED
UNAUTHENTICATED, INVALID = grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.INVALID_ARGUMENT
ON_BEHALF_OF = "x-debar-on-behalf-of"
# Identities only these tests know: tiny rates in long windows, so that a window boundary almost never falls inside
# one. platform:busy and platform:quiet ask through the railway service, each at its own rate there.
EXTRA = {
    "scraper": {"scopes": ["check:*"], "rate": {"checks": 3, "window_s": 3600}},
    "crawler": {"scopes": ["check:*"], "rate": {"checks": 4, "window_s": 3600}},
    "platform:busy": {"scopes": [], "rate": {"checks": 4, "window_s": 3600}},
    "platform:quiet": {"scopes": [], "rate": {"checks": 4, "window_s": 3600}},
    "hoarder": {"scopes": ["check:*"], "rate": {"checks": 2, "window_s": 3600}},
    # The enumerators: one asking the sanction service itself, one a platform asking through railway, one reading.
    "enumerator": {"scopes": ["check:*"], "rate": {"checks": 50, "window_s": 3600}},
    "platform:harvester": {"scopes": [], "rate": {"checks": 100, "window_s": 3600}},
    "reader": {"scopes": ["registry:read", "decisions:read"], "rate": {"checks": 5, "window_s": 3600}},
}
# Certificates beyond the demo actors': the attackers' and the extra callers'.
EXTRA_CERTS = (*EXTRA, "local", "platform:greedy", "platform:patient")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    write_dev_certs(directory)
    write_dev_certs(directory, services=(), clients=EXTRA_CERTS)
    return directory


@pytest.fixture(scope="module")
def foreign_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same names, signed by another CA."""
    directory = tmp_path_factory.mktemp("foreign-certs")
    write_dev_certs(directory, services=(), clients=("railway",))
    return directory


def packaged_scopes() -> dict[str, dict[str, object]]:
    from importlib import resources

    return json.loads(resources.files("debar").joinpath("data/scopes.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def access_env(service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    scopes = packaged_scopes()
    scopes["callers"].update(EXTRA)
    path = tmp_path_factory.mktemp("scopes") / "scopes.json"
    path.write_text(json.dumps(scopes))
    env = {k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"}
    return {**env, "DEBAR_SCOPES_FILE": str(path)}


def tls_env(certs: Path, name: str) -> dict[str, str]:
    return {
        "DEBAR_TLS_CA": str(certs / "ca.pem"),
        "DEBAR_TLS_CERT": str(certs / f"{name}.pem"),
        "DEBAR_TLS_KEY": str(certs / f"{name}-key.pem"),
    }


def credentials(certs: Path, name: str | None, ca_dir: Path | None = None) -> grpc.ChannelCredentials:
    ca = ((ca_dir or certs) / "ca.pem").read_bytes()
    if name is None:
        return grpc.ssl_channel_credentials(root_certificates=ca)
    return grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=(certs / f"{name}-key.pem").read_bytes(),
        certificate_chain=(certs / f"{name}.pem").read_bytes(),
    )


def start_mtls(name: str, env: dict[str, str], certs: Path, logs_dir: Path) -> ServiceProcess:
    return start_service(name, {**env, **tls_env(certs, name)}, logs_dir, credentials=credentials(certs, "bench"))


@pytest.fixture(scope="module")
def metrics_port() -> int:
    """The mTLS sanction service's Prometheus port."""
    return free_port()


@pytest.fixture(scope="module")
def sanction_tls(
    access_env: dict[str, str], certs: Path, logs_dir: Path, metrics_port: int, token_files: dict[str, str]
) -> Iterator[ServiceProcess]:
    """Callers known by certificate; the trust file names the issuers of people's proofs (a delegate acting for a
    reviewer or clerk must bring their token: DEBAR_DELEGATION_PROOF's default, required)."""
    env = {**access_env, "DEBAR_METRICS_PORT": str(metrics_port), "DEBAR_TOKEN_TRUST_FILE": token_files["trust"]}
    service = start_mtls("sanction", env, certs, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


@pytest.fixture(scope="module")
def as_caller(sanction_tls: ServiceProcess, certs: Path) -> Iterator[Callable[[str], grpc.Channel]]:
    """A channel to the mTLS sanction service with the named client certificate (one per name, reused)."""
    channels: dict[str, grpc.Channel] = {}

    def channel(name: str) -> grpc.Channel:
        if name not in channels:
            channels[name] = grpc.secure_channel(sanction_tls.address, credentials(certs, name))
        return channels[name]

    yield channel
    for chan in channels.values():
        chan.close()


def rpc_error(call: Callable[..., object], request: object, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=TIMEOUT, **kwargs)
    return caught.value


def checks_of(channel: grpc.Channel) -> sanction_pb2_grpc.SanctionServiceStub:
    return sanction_pb2_grpc.SanctionServiceStub(channel)


def registry_of(channel: grpc.Channel) -> registry_pb2_grpc.RegistryServiceStub:
    return registry_pb2_grpc.RegistryServiceStub(channel)


def decisions_of(channel: grpc.Channel) -> decision_pb2_grpc.DecisionServiceStub:
    return decision_pb2_grpc.DecisionServiceStub(channel)


def g_ticket(person: str | None = None) -> railway_pb2.CheckTicketRequest:
    return railway_pb2.CheckTicketRequest(
        passenger=subject(person or new_ric()), train_number="G123", seat_class=railway_pb2.SEAT_CLASS_SECOND
    )


# --- mutual TLS ---------------------------------------------------------------------------------------------------


def test_the_handshake_works_with_dev_certificates(as_caller):
    answer = checks_of(as_caller("railway")).Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT)
    assert answer.outcome == common_pb2.OUTCOME_ALLOW


def test_a_client_without_a_certificate_is_refused(sanction_tls, certs):
    with grpc.secure_channel(sanction_tls.address, credentials(certs, None)) as channel:
        error = rpc_error(checks_of(channel).Check, check_request(new_ric(), "RAIL_G_TRAIN"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_from_another_ca_is_refused(sanction_tls, certs, foreign_certs):
    # The client trusts our CA (so it would accept the server); the server does not trust the client's CA.
    with grpc.secure_channel(sanction_tls.address, credentials(foreign_certs, "railway", ca_dir=certs)) as channel:
        error = rpc_error(checks_of(channel).Check, check_request(new_ric(), "RAIL_G_TRAIN"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_a_plaintext_client_is_refused(sanction_tls):
    with grpc.insecure_channel(sanction_tls.address) as channel:
        error = rpc_error(checks_of(channel).Check, check_request(new_ric(), "RAIL_G_TRAIN"))
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_whose_name_is_no_identity_is_unauthenticated(sanction_tls, certs, tmp_path):
    write_dev_certs(certs, services=(), clients=("Registry Admin",))  # the same CA: only the name is wrong
    with grpc.secure_channel(sanction_tls.address, credentials(certs, "Registry Admin")) as channel:
        error = rpc_error(registry_of(channel).Impose, impose_request(new_ric()))
    assert error.code() == UNAUTHENTICATED
    assert "common name must be an identity" in error.details()


# --- scopes -------------------------------------------------------------------------------------------------------


def test_railway_checks_railway_measures_only(as_caller):
    railway = checks_of(as_caller("railway"))
    person = new_ric()
    assert railway.Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT).decision_id
    error = rpc_error(railway.Check, check_request(person, "HOTEL_STAR_RATED"))
    assert error.code() == DENIED
    assert error.details() == "measure: caller 'railway' may not check HOTEL_STAR_RATED"


def test_a_batch_refuses_out_of_scope_items_alone(as_caller):
    person = new_ric()
    batch = sanction_pb2.BatchCheckRequest(
        items=[check_request(person, m) for m in ("RAIL_G_TRAIN", "HOTEL_STAR_RATED", "RAIL_SOFT_SLEEPER", "NOPE")]
    )
    results = checks_of(as_caller("railway")).BatchCheck(batch, timeout=TIMEOUT).results
    assert [r.WhichOneof("result") for r in results] == ["response", "error", "response", "error"]
    assert results[1].error.code == DENIED.value[0]
    assert results[1].error.message == "items[1].measure: caller 'railway' may not check HOTEL_STAR_RATED"
    assert results[3].error.code == INVALID.value[0]
    assert results[3].error.message.startswith("items[3].measure")  # indices are the request's, not the checked
    assert results[0].response.decision_id and results[2].response.decision_id


def test_only_registry_clerks_impose(as_caller):
    request = impose_request(new_ric())
    error = rpc_error(registry_of(as_caller("railway")).Impose, request)
    assert error.code() == DENIED
    assert "caller 'railway' may not call /debar.v1.RegistryService/Impose" in error.details()
    assert rpc_error(registry_of(as_caller("reviewer:li")).Impose, request).code() == DENIED
    written = registry_of(as_caller("clerk:wang")).Impose(request, timeout=TIMEOUT)
    assert written.restriction.id


def test_a_platform_cannot_call_the_sanction_service_itself(as_caller):
    error = rpc_error(checks_of(as_caller("platform:12306")).Check, check_request(new_ric(), "RAIL_G_TRAIN"))
    assert error.code() == DENIED


def test_the_decision_log_records_the_certificate_name(as_caller):
    person = new_ric()
    registry_of(as_caller("clerk:wang")).Impose(impose_request(person), timeout=TIMEOUT)
    refused = checks_of(as_caller("railway")).Check(
        check_request(person, "RAIL_G_TRAIN"),
        metadata=[("x-debar-caller", "bench")],  # ignored under mTLS: the certificate names the caller
        timeout=TIMEOUT,
    )
    assert refused.outcome == common_pb2.OUTCOME_DENY
    request = decision_pb2.GetDecisionRequest(decision_id=refused.decision_id, subject=subject(person))
    assert rpc_error(decisions_of(as_caller("railway")).GetDecision, request).code() == DENIED
    logged = decisions_of(as_caller("portal")).GetDecision(request, timeout=TIMEOUT)
    assert logged.caller == "railway"


# --- a certificate named local ------------------------------------------------------------------------------------


def test_a_certificate_named_local_is_no_one_outside_local_mode(as_caller):
    """Before: the packaged scopes file granted `local` every scope, so any certificate of the CA named local was a
    superuser (it could Impose, Lift and review)."""
    local = as_caller("local")
    assert rpc_error(registry_of(local).Impose, impose_request(new_ric())).code() == DENIED
    assert rpc_error(checks_of(local).Check, check_request(new_ric(), "RAIL_G_TRAIN")).code() == DENIED
    request = decision_pb2.ListObjectionsRequest()
    assert rpc_error(decisions_of(local).ListObjections, request).code() == DENIED


@pytest.mark.parametrize("transport", ["mtls", "token"])
def test_a_server_not_in_local_mode_refuses_to_start_with_a_scopes_file_granting_local(
    access_env, certs, tmp_path, transport
):
    scopes = packaged_scopes()
    scopes["callers"]["local"] = {"scopes": ["check:*", "registry:write"]}
    path = tmp_path / "scopes.json"
    path.write_text(json.dumps(scopes))
    trust = tmp_path / "trust.json"
    trust.write_text(json.dumps({"issuers": {}}))
    mode = tls_env(certs, "sanction") if transport == "mtls" else {
        "DEBAR_PLAINTEXT": "true", "DEBAR_TOKEN_TRUST_FILE": str(trust)
    }  # fmt: skip
    env = {**os.environ, **access_env, **mode, "DEBAR_SCOPES_FILE": str(path), "DEBAR_SANCTION_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "debar.cli.main", "serve", "sanction"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "callers.local: 'local' is the identity of local mode" in done.stderr


# --- people, not roles --------------------------------------------------------------------------------------------


def refused_and_objected(as_caller: Callable[[str], grpc.Channel]) -> tuple[str, str]:
    """A restriction on a new person, a refused check and an objection to it; (person, objection id)."""
    person = new_ric()
    registry_of(as_caller("clerk:wang")).Impose(impose_request(person), timeout=TIMEOUT)
    refused = checks_of(as_caller("railway")).Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT)
    assert refused.outcome == common_pb2.OUTCOME_DENY
    filed = decisions_of(as_caller("portal")).FileObjection(
        decision_pb2.FileObjectionRequest(
            decision_id=refused.decision_id, statement="Not me.", contact="me@x.cn", subject=subject(person)
        ),
        timeout=TIMEOUT,
    )
    return person, filed.objection_id


def test_one_reviewer_credential_cannot_act_under_two_names(as_caller):
    """Before: the shared `reviewer` identity reviewed as "judge-li" and overturned as "judge-zhang": the history
    showed two reviewers and the restriction was lifted on one credential."""
    person, objection_id = refused_and_objected(as_caller)
    li = decisions_of(as_caller("reviewer:li"))
    error = rpc_error(li.ReviewObjection, decision_pb2.ReviewObjectionRequest(objection_id=objection_id,
                                                                              reviewer="judge-li"))  # fmt: skip
    assert error.code() == INVALID
    assert error.details().startswith("reviewer: must be empty or your own identity 'reviewer:li'")
    reviewed = li.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=objection_id), timeout=TIMEOUT)
    assert reviewed.history[-1].actor == "reviewer:li"
    overturn = decision_pb2.ResolveObjectionRequest(
        objection_id=objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reviewer="judge-zhang",
        reason="a second reviewer agrees",
    )  # fmt: skip
    error = rpc_error(li.ResolveObjection, overturn)
    assert error.code() == INVALID and error.details().startswith("reviewer:")
    # Nothing changed: the objection is as reviewed, and the restriction still refuses.
    now = li.GetObjection(decision_pb2.GetObjectionRequest(objection_id=objection_id), timeout=TIMEOUT)
    assert now.state == decision_pb2.OBJECTION_STATE_UNDER_REVIEW
    assert [t.actor for t in now.history] == ["subject", "reviewer:li"]
    again = checks_of(as_caller("railway")).Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT)
    assert again.outcome == common_pb2.OUTCOME_DENY


def test_each_reviewer_acts_as_their_own_certificate(as_caller):
    _, objection_id = refused_and_objected(as_caller)
    decisions_of(as_caller("reviewer:li")).ReviewObjection(
        decision_pb2.ReviewObjectionRequest(objection_id=objection_id, reviewer="reviewer:li"), timeout=TIMEOUT
    )  # naming oneself is allowed
    upheld = decisions_of(as_caller("reviewer:zhang")).ResolveObjection(
        decision_pb2.ResolveObjectionRequest(
            objection_id=objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_UPHELD, reason="the record is right"
        ),
        timeout=TIMEOUT,
    )
    assert [t.actor for t in upheld.history] == ["subject", "reviewer:li", "reviewer:zhang"]


# --- delegation ---------------------------------------------------------------------------------------------------


def test_on_behalf_of_from_a_caller_without_delegate_is_refused(as_caller, sanction_tls):
    """Before: the header did not exist, and a caller's rate was the only thing standing for every platform."""
    for name in ("scraper", "portal", "reviewer:li"):
        error = rpc_error(checks_of(as_caller(name)).Check, check_request(new_ric(), "RAIL_G_TRAIN"),
                          metadata=[(ON_BEHALF_OF, "platform:12306")])  # fmt: skip
        assert error.code() == DENIED, name
        assert f"caller {name!r} may not act on behalf of others" in error.details()
    assert "may not act on behalf of others" in sanction_tls.log()
    error = rpc_error(checks_of(as_caller("railway")).Check, check_request(new_ric(), "RAIL_G_TRAIN"),
                      metadata=[(ON_BEHALF_OF, "Platform 12306")])  # fmt: skip
    assert error.code() == INVALID and error.details().startswith(ON_BEHALF_OF)


def test_a_delegate_acting_for_someone_gains_nothing_of_theirs_it_does_not_hold(as_caller):
    # railway may delegate, but holds no reviewer scope: naming a reviewer does not make it one.
    error = rpc_error(decisions_of(as_caller("railway")).ListObjections, decision_pb2.ListObjectionsRequest(),
                      metadata=acting_for("reviewer:li"))  # fmt: skip
    assert error.code() == DENIED
    assert "caller 'railway' for 'reviewer:li' may not call" in error.details()
    # The console acts for the reviewer signed in to it (with their proof), as that reviewer.
    _, objection_id = refused_and_objected(as_caller)
    reviewed = decisions_of(as_caller("console")).ReviewObjection(
        decision_pb2.ReviewObjectionRequest(objection_id=objection_id), metadata=acting_for("reviewer:zhang"),
        timeout=TIMEOUT,
    )  # fmt: skip
    assert reviewed.history[-1].actor == "reviewer:zhang"


# --- a delegate acting for a person brings that person's proof -----------------------------------------------------
# "staff" stands for the identity provider behind the console's authenticating proxy (trust file: clerk:*,
# reviewer:*); the console's own certificate cannot mint its tokens.

PROOF = "x-debar-on-behalf-of-token"


def acting_for(person: str, proof: str | None = None) -> list[tuple[str, str]]:
    """The metadata of a delegated call for `person`, with their token from the identity provider (or `proof`)."""
    return [(ON_BEHALF_OF, person), (PROOF, token("staff", person) if proof is None else proof)]


def overturned_by_li(as_caller: Callable[[str], grpc.Channel]) -> tuple[str, str]:
    """An objection reviewer:li overturned with her own certificate, awaiting a second reviewer; (person, id)."""
    person, objection_id = refused_and_objected(as_caller)
    li = decisions_of(as_caller("reviewer:li"))
    li.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=objection_id), timeout=TIMEOUT)
    li.ResolveObjection(decision_pb2.ResolveObjectionRequest(
        objection_id=objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="not this person"),
        timeout=TIMEOUT)  # fmt: skip
    return person, objection_id


def assert_unchanged(as_caller: Callable[[str], grpc.Channel], person: str, objection_id: str, state: int,
                     actors: list[str]) -> None:  # fmt: skip
    now = decisions_of(as_caller("reviewer:li")).GetObjection(
        decision_pb2.GetObjectionRequest(objection_id=objection_id), timeout=TIMEOUT
    )
    assert now.state == state and [t.actor for t in now.history] == actors
    again = checks_of(as_caller("railway")).Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT)
    assert again.outcome == common_pb2.OUTCOME_DENY  # the court's restriction still refuses


def test_the_console_credential_alone_cannot_act_as_two_reviewers(as_caller, sanction_tls):
    """Before: a leaked console certificate (scope `delegate`) named reviewer:li to review and overturn, then
    reviewer:zhang to confirm, and the court's restriction was lifted on one credential: four eyes defeated."""
    person, objection_id = refused_and_objected(as_caller)
    console = decisions_of(as_caller("console"))
    review = decision_pb2.ReviewObjectionRequest(objection_id=objection_id)
    error = rpc_error(console.ReviewObjection, review, metadata=[(ON_BEHALF_OF, "reviewer:li")])
    assert error.code() == UNAUTHENTICATED
    assert error.details().startswith("acting for 'reviewer:li' needs their own signed token in " + PROOF)
    overturn = decision_pb2.ResolveObjectionRequest(
        objection_id=objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="lifted by a thief"
    )
    assert rpc_error(console.ResolveObjection, overturn,
                     metadata=[(ON_BEHALF_OF, "reviewer:li")]).code() == UNAUTHENTICATED  # fmt: skip
    assert_unchanged(as_caller, person, objection_id, decision_pb2.OBJECTION_STATE_FILED, ["subject"])
    # The second pair of eyes: an overturn awaiting confirmation, confirmed by the console "as" reviewer:zhang.
    person, objection_id = overturned_by_li(as_caller)
    confirm = decision_pb2.ConfirmResolutionRequest(objection_id=objection_id)
    error = rpc_error(console.ConfirmResolution, confirm, metadata=[(ON_BEHALF_OF, "reviewer:zhang")])
    assert error.code() == UNAUTHENTICATED and PROOF in error.details()
    # Nor with a token the console could make itself: it holds no key an issuer of people's tokens trusts.
    forged = tokens.mint(tokens.new_signing_key(), "staff", "reviewer:zhang", SANCTION, time.time())
    error = rpc_error(console.ConfirmResolution, confirm, metadata=acting_for("reviewer:zhang", forged))
    assert error.code() == UNAUTHENTICATED and "signature does not match" in error.details()
    assert_unchanged(as_caller, person, objection_id, decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION,
                     ["subject", "reviewer:li", "reviewer:li"])  # fmt: skip
    assert "without their proof" in sanction_tls.log()


@pytest.mark.parametrize(
    ("proof", "reason"),
    [
        (lambda: token("staff", "reviewer:li"), "the token is 'reviewer:li''s, not 'reviewer:zhang''s"),
        (lambda: _expired("reviewer:zhang"), "token expired"),
        (lambda: token("staff", "reviewer:zhang", aud=RAILWAY), "not for this service"),
        (lambda: token("operator", "reviewer:zhang"), "issuer 'operator' may not issue tokens for 'reviewer:zhang'"),
        (lambda: "not-a-token", "malformed"),
    ],
    ids=["another-reviewers", "expired", "another-audience", "issuer-not-allowed", "malformed"],
)
def test_a_proof_that_is_not_the_named_reviewers_own_and_valid_is_refused(as_caller, proof, reason):
    person, objection_id = overturned_by_li(as_caller)
    console = decisions_of(as_caller("console"))
    error = rpc_error(console.ConfirmResolution, decision_pb2.ConfirmResolutionRequest(objection_id=objection_id),
                      metadata=acting_for("reviewer:zhang", proof()))  # fmt: skip
    assert error.code() == UNAUTHENTICATED
    assert error.details().startswith(PROOF) and reason in error.details(), error.details()
    assert_unchanged(as_caller, person, objection_id, decision_pb2.OBJECTION_STATE_AWAITING_CONFIRMATION,
                     ["subject", "reviewer:li", "reviewer:li"])  # fmt: skip


def test_a_refused_proof_is_counted_as_unauthenticated(as_caller, metrics_port):
    before = total(scrape(metrics_port), "debar_access_unauthenticated_total")
    error = rpc_error(decisions_of(as_caller("console")).ListObjections, decision_pb2.ListObjectionsRequest(),
                      metadata=[(ON_BEHALF_OF, "clerk:wang")])  # fmt: skip
    assert error.code() == UNAUTHENTICATED and "acting for 'clerk:wang'" in error.details()  # clerks are people too
    assert total(scrape(metrics_port), "debar_access_unauthenticated_total") == before + 1


@pytest.mark.parametrize(
    ("setting", "refused"), [({}, "no token issuer is trusted here"), ({"DEBAR_DELEGATION_PROOF": "off"}, "")]
)
def test_without_a_trust_file_no_person_can_be_named_unless_proofs_are_off(access_env, certs, logs_dir, setting,
                                                                            refused):  # fmt: skip
    """Required (the default) with no issuer to believe: every delegation to a person is refused, never believed;
    `off` believes the delegate again (the old rule, for a migration). Platforms are asked for no proof either way."""
    service = start_mtls("sanction", {**access_env, **setting}, certs, logs_dir)
    try:
        with grpc.secure_channel(service.address, credentials(certs, "console")) as console:
            listing = decisions_of(console).ListObjections
            if refused:
                error = rpc_error(listing, decision_pb2.ListObjectionsRequest(), metadata=acting_for("reviewer:li"))
                assert error.code() == UNAUTHENTICATED and refused in error.details()
            else:
                assert listing(decision_pb2.ListObjectionsRequest(), metadata=[(ON_BEHALF_OF, "reviewer:li")],
                               timeout=TIMEOUT) is not None  # fmt: skip
        with grpc.secure_channel(service.address, credentials(certs, "railway")) as railway:
            assert checks_of(railway).Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT,
                                            metadata=[(ON_BEHALF_OF, "platform:12306")])  # fmt: skip
    finally:
        assert service.stop() == 0, service.log()


def _expired(subject: str) -> str:
    now = int(time.time())
    claims = {"iss": "staff", "sub": subject, "aud": SANCTION, "iat": now - 300, "exp": now - 60, "jti": "old"}
    return jwt.encode(claims, KEYS["staff"], algorithm="EdDSA")


def test_the_console_with_each_reviewers_own_proof_acts_as_each(as_caller):
    _, objection_id = refused_and_objected(as_caller)
    console = decisions_of(as_caller("console"))
    console.ReviewObjection(decision_pb2.ReviewObjectionRequest(objection_id=objection_id),
                            metadata=acting_for("reviewer:li"), timeout=TIMEOUT)  # fmt: skip
    console.ResolveObjection(decision_pb2.ResolveObjectionRequest(
        objection_id=objection_id, outcome=decision_pb2.OBJECTION_OUTCOME_OVERTURNED, reason="not this person"),
        metadata=acting_for("reviewer:li"), timeout=TIMEOUT)  # fmt: skip
    confirm = decision_pb2.ConfirmResolutionRequest(objection_id=objection_id)
    own = rpc_error(console.ConfirmResolution, confirm, metadata=acting_for("reviewer:li"))
    assert own.code() == DENIED and "different reviewer" in own.details()  # four eyes still hold
    done = console.ConfirmResolution(confirm, metadata=acting_for("reviewer:zhang"), timeout=TIMEOUT)
    assert done.state == decision_pb2.OBJECTION_STATE_OVERTURNED
    assert [t.actor for t in done.history] == ["subject", "reviewer:li", "reviewer:li", "reviewer:zhang"]


@pytest.fixture(scope="module")
def railway_tls(sanction_tls, access_env, certs, logs_dir) -> Iterator[ServiceProcess]:
    env = {**access_env, "DEBAR_SANCTION_ADDRESS": sanction_tls.address, "DEBAR_PLATFORM_RATE_CHECKS": "0"}
    service = start_mtls("railway", env, certs, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


def test_a_domain_service_asks_with_its_own_certificate_for_the_platform(sanction_tls, railway_tls, certs):
    person = new_ric()
    with grpc.secure_channel(sanction_tls.address, credentials(certs, "clerk:wang")) as channel:
        registry_of(channel).Impose(impose_request(person), timeout=TIMEOUT)
    with grpc.insecure_channel(railway_tls.address) as plain:
        assert rpc_error(railway_pb2_grpc.RailwayServiceStub(plain).CheckTicket, g_ticket()).code().name == (
            "UNAVAILABLE"
        )
    with grpc.secure_channel(railway_tls.address, credentials(certs, "platform:12306")) as channel:
        verdict = railway_pb2_grpc.RailwayServiceStub(channel).CheckTicket(g_ticket(person), timeout=TIMEOUT)
    assert not verdict.allowed
    with grpc.secure_channel(sanction_tls.address, credentials(certs, "portal")) as channel:
        logged = decisions_of(channel).GetDecision(
            decision_pb2.GetDecisionRequest(decision_id=verdict.refusals[0].decision_id, subject=subject(person)),
            timeout=TIMEOUT,
        )
    assert logged.caller == "railway"
    # Who asked, all the way down: the checker is told the platform (today in the `decisions` line; the log entry
    # gets its field with the transparency log).
    decided = [line for line in sanction_tls.log().splitlines() if verdict.refusals[0].decision_id in line]
    assert decided and all("on_behalf_of=platform:12306" in line for line in decided), decided


def test_a_platform_naming_another_platform_to_a_domain_service_is_still_asked_for_as_itself(
    sanction_tls, railway_tls, certs
):
    """The domain service names whoever authenticated to it; what a platform's own metadata says about who asks
    (x-debar-on-behalf-of, twice, and x-debar-caller) is not passed on: the sanction service is told the
    certificate's platform, and counts and logs it as that one."""
    person = new_ric()
    with grpc.secure_channel(sanction_tls.address, credentials(certs, "clerk:wang")) as channel:
        registry_of(channel).Impose(impose_request(person), timeout=TIMEOUT)
    forged = (("x-debar-on-behalf-of", "platform:trip"), ("x-debar-on-behalf-of", "platform:ccgp"),
              ("x-debar-caller", "platform:trip"))  # fmt: skip
    with grpc.secure_channel(railway_tls.address, credentials(certs, "platform:12306")) as channel:
        verdict = railway_pb2_grpc.RailwayServiceStub(channel).CheckTicket(
            g_ticket(person), metadata=forged, timeout=TIMEOUT
        )
    assert not verdict.allowed
    decided = [line for line in sanction_tls.log().splitlines() if verdict.refusals[0].decision_id in line]
    assert decided and all("on_behalf_of=platform:12306" in line for line in decided), decided
    assert not any("platform:trip" in line or "platform:ccgp" in line for line in decided), decided


def clear_of_a_window_end(window_s: int = 3600, margin_s: float = 30) -> None:
    """Rates count in fixed windows: a test that meets a window's end sees its count start again. Within the last
    `margin_s` of one, wait for the next (about one run in a hundred waits, at most that long)."""
    into = time.time() % window_s
    if into > window_s - margin_s:
        time.sleep(window_s - into + 0.5)


def tickets_answered(address: str, certs: Path, platform: str, tickets: int) -> list[str]:
    """Asks for `tickets` CheckTickets (two checks each) as `platform`; the outcome of each: allowed or a code."""
    outcomes = []
    with grpc.secure_channel(address, credentials(certs, platform)) as channel:
        stub = railway_pb2_grpc.RailwayServiceStub(channel)
        for _ in range(tickets):
            try:
                outcomes.append("allowed" if stub.CheckTicket(g_ticket(), timeout=TIMEOUT).allowed else "refused")
            except grpc.RpcError as error:
                outcomes.append(error.code().name)
    return outcomes


def test_one_platform_exhausting_its_rate_at_the_sanction_service_leaves_anothers_answered(railway_tls, certs):
    """Before: every platform behind the railway service shared railway's rate at the sanction service, so one
    platform's burst refused the others."""
    clear_of_a_window_end()
    # platform:busy's rate at the sanction service is 4 checks an hour (two tickets): the third is refused...
    assert tickets_answered(railway_tls.address, certs, "platform:busy", 3) == ["allowed", "allowed", EXHAUSTED.name]
    # ...and platform:quiet, asking through the same railway service, is answered on its own rate.
    assert tickets_answered(railway_tls.address, certs, "platform:quiet", 2) == ["allowed", "allowed"]


def test_one_platform_exhausting_its_rate_at_the_domain_service_leaves_anothers_answered(
    sanction_tls, access_env, certs, logs_dir
):
    env = {**access_env, "DEBAR_SANCTION_ADDRESS": sanction_tls.address,
           "DEBAR_PLATFORM_RATE_CHECKS": "4", "DEBAR_PLATFORM_RATE_WINDOW_S": "3600"}  # fmt: skip
    railway = start_mtls("railway", env, certs, logs_dir)
    try:
        clear_of_a_window_end()
        greedy = tickets_answered(railway.address, certs, "platform:greedy", 3)
        assert greedy == ["allowed", "allowed", EXHAUSTED.name]
        assert tickets_answered(railway.address, certs, "platform:patient", 2) == ["allowed", "allowed"]
    finally:
        assert railway.stop() == 0, railway.log()


# --- rates --------------------------------------------------------------------------------------------------------


def test_a_caller_past_its_rate_is_slowed_and_flagged(as_caller, sanction_tls):
    clear_of_a_window_end()
    scraper = checks_of(as_caller("scraper"))
    scraper.BatchCheck(
        sanction_pb2.BatchCheckRequest(items=[check_request(new_ric(), "RAIL_G_TRAIN") for _ in range(2)]),
        timeout=TIMEOUT,
    )
    scraper.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT)
    error = rpc_error(scraper.Check, check_request(new_ric(), "RAIL_G_TRAIN"))
    assert error.code() == EXHAUSTED
    assert "at most 3 items per 3600 s" in error.details()
    assert "flagged: caller 'scraper'" in sanction_tls.log()
    # Others are not slowed by it.
    assert checks_of(as_caller("railway")).Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT)


def command_calls(url: str) -> Counter[str]:
    """Redis's own count of each command it has run (commands run by scripts included)."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return Counter({name.removeprefix("cmdstat_"): int(figures["calls"]) for name, figures in stats.items()})


@contextmanager
def scripts_run(url: str) -> Iterator[Counter[str]]:
    """How many times each of debar's scripts (by name) was run by EVALSHA in the block, from Redis's slow log with
    every command in it: commandstats counts every EVALSHA alike, and the log's integrator (its own process) runs
    its lease and commit scripts on the same Redis whenever it likes."""
    import hashlib

    from debar.sanction.adapters.scripts import source

    names = {hashlib.sha1(source(n).encode()).hexdigest(): n for n in ("decide", "rate", "read", "replay")}
    client = redis.Redis.from_url(url)
    kept = client.config_get("slowlog-*")
    ran: Counter[str] = Counter()
    try:
        client.config_set("slowlog-max-len", 100_000)
        client.config_set("slowlog-log-slower-than", 0)
        client.slowlog_reset()
        yield ran
        for entry in client.slowlog_get(100_000):
            command = entry["command"].split()
            if command[:1] == [b"EVALSHA"] and len(command) > 1:
                ran[names.get(command[1].decode(), "another script")] += 1
    finally:
        client.config_set("slowlog-log-slower-than", kept["slowlog-log-slower-than"])
        client.config_set("slowlog-max-len", kept["slowlog-max-len"])
        client.close()


@pytest.mark.skipif(ON_CLUSTER, reason="on Redis Cluster a caller's counter may be on another node: its own call")
def test_a_rated_check_is_one_round_trip_and_a_call_past_its_rate_logs_nothing(as_caller, access_env):
    """Before: a caller with a rate cost two script calls per check (the rate, then the decision); the rate is
    now counted by the decide script, and a call it refuses is neither decided nor logged."""
    clear_of_a_window_end()
    url = access_env["DEBAR_REDIS_URL"]
    hoarder = checks_of(as_caller("hoarder"))
    before = command_calls(url)
    with scripts_run(url) as ran:
        for _ in range(2):
            hoarder.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT)
    assert (ran["decide"], ran["rate"]) == (2, 0), ran
    answered = command_calls(url)
    assert answered["xadd"] - before["xadd"] == 2 and answered["incrby"] - before["incrby"] == 2
    with scripts_run(url) as ran:
        assert rpc_error(hoarder.Check, check_request(new_ric(), "RAIL_G_TRAIN")).code() == EXHAUSTED
        batch = sanction_pb2.BatchCheckRequest(items=[check_request(new_ric(), "RAIL_G_TRAIN") for _ in range(2)])
        error = rpc_error(hoarder.BatchCheck, batch)
        assert error.code() == EXHAUSTED and "at most 2 items per 3600 s" in error.details()
    assert (ran["decide"], ran["rate"]) == (2, 0), ran  # counted, in the one call each...
    refused = command_calls(url)
    assert refused["xadd"] == answered["xadd"] and refused["lpush"] == answered["lpush"]  # ...and nothing logged


def test_a_rate_holds_across_replicas_sharing_redis(sanction_tls, access_env, certs, logs_dir):
    second = start_mtls("sanction", access_env, certs, logs_dir)
    clear_of_a_window_end()
    try:
        answered, refused = 0, 0
        for i in range(8):
            address = (sanction_tls, second)[i % 2].address
            with grpc.secure_channel(address, credentials(certs, "crawler")) as channel:
                try:
                    checks_of(channel).Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT)
                    answered += 1
                except grpc.RpcError as error:
                    assert error.code() == EXHAUSTED
                    refused += 1
        assert (answered, refused) == (4, 4)
    finally:
        assert second.stop() == 0, second.log()


# --- reads, enumeration, ownership --------------------------------------------------------------------------------

PSEUDONYMS = Pseudonymiser(parse_keys(TEST_KEYS))


def pseudonym(person: str) -> str:
    return PSEUDONYMS.pseudonym_and_alias(validate_identifier(IdKind.RIC, person))[0]


def distinct_subjects(port: int, caller: str, expected: int) -> float:
    """debar_distinct_subjects{caller} once it reaches `expected` (flushed each second, read when scraped and kept
    5 s), else its last value after 20 s."""
    seen = [0.0]

    def reached() -> bool:
        seen[0] = total(scrape(port), "debar_distinct_subjects", caller=caller)
        return seen[0] >= expected

    wait_for(reached, timeout_s=20)
    return seen[0]


def test_enumeration_by_checks_hits_the_rate_and_shows_in_the_distinct_subjects(as_caller, metrics_port):
    """Before: 20 CheckOrder calls of 50 tickets found the one restricted person among every sequence number of a
    region and birth date in 0.24 s, limited only by railway's rate, which every platform shares, and nothing
    counted the subjects one caller touched."""
    clear_of_a_window_end()
    stub = checks_of(as_caller("enumerator"))
    outcomes = []
    for _ in range(60):
        try:
            stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), timeout=TIMEOUT)
            outcomes.append("answered")
        except grpc.RpcError as error:
            outcomes.append(error.code().name)
    assert outcomes == ["answered"] * 50 + [EXHAUSTED.name] * 10
    assert abs(distinct_subjects(metrics_port, "enumerator", 49) - 50) <= 1  # a HyperLogLog: about 1% off


def test_enumeration_by_check_orders_through_a_domain_service_is_counted_for_the_platform(
    railway_tls, certs, metrics_port
):
    clear_of_a_window_end()
    with grpc.secure_channel(railway_tls.address, credentials(certs, "platform:harvester")) as channel:
        stub = railway_pb2_grpc.RailwayServiceStub(channel)
        order = railway_pb2.CheckOrderRequest(tickets=[g_ticket() for _ in range(50)])  # 100 checks: the rate
        assert len(stub.CheckOrder(order, timeout=TIMEOUT).verdicts) == 50
        again = railway_pb2.CheckOrderRequest(tickets=[g_ticket() for _ in range(50)])
        assert rpc_error(stub.CheckOrder, again).code() == EXHAUSTED
    # Counted for the platform behind railway, not for railway: the alert names who enumerates.
    counted = distinct_subjects(metrics_port, "railway/platform:harvester", 49)
    assert abs(counted - 50) <= 1


def audit_lines(service: ServiceProcess, caller: str, method: str) -> list[str]:
    return [
        line for line in service.log().splitlines()
        if "read" in line and f"caller={caller}" in line and f"method={method}" in line
    ]  # fmt: skip


def test_registry_reads_count_against_the_rate_and_are_audited_by_pseudonym(as_caller, sanction_tls, metrics_port):
    """Before: 1000 ListRestrictions in 0.74 s, with no rate and no log line."""
    clear_of_a_window_end()
    people = [new_ric() for _ in range(6)]
    reader = registry_of(as_caller("reader"))
    for person in people[:5]:
        reader.ListRestrictions(registry_pb2.ListRestrictionsRequest(subject=subject(person)), timeout=TIMEOUT)
    error = rpc_error(reader.ListRestrictions, registry_pb2.ListRestrictionsRequest(subject=subject(people[5])))
    assert error.code() == EXHAUSTED
    lines = audit_lines(sanction_tls, "reader", "ListRestrictions")
    assert len(lines) == 6, lines
    for person, line in zip(people[:5], lines, strict=False):
        assert pseudonym(person) in line and "status=OK" in line
        assert person not in line
    assert "status=RESOURCE_EXHAUSTED" in lines[-1]
    assert distinct_subjects(metrics_port, "reader", 5) == 5


def refused_decision(as_caller: Callable[[str], grpc.Channel], person: str) -> str:
    registry_of(as_caller("clerk:wang")).Impose(impose_request(person), timeout=TIMEOUT)
    refused = checks_of(as_caller("railway")).Check(check_request(person, "RAIL_G_TRAIN"), timeout=TIMEOUT)
    assert refused.outcome == common_pb2.OUTCOME_DENY
    return str(refused.decision_id)


def unknown_like(decision_id: str) -> str:
    """An id of the same form that names no decision (its last character changed)."""
    return decision_id[:-1] + ("a" if decision_id[-1] != "a" else "b")


def test_a_portal_read_without_the_matching_identifier_gets_what_an_unknown_id_gets(as_caller, sanction_tls):
    """Before: GetDecision checked no ownership: from one id, the neighbouring decisions of other people were read,
    with grounds."""
    person, other = new_ric(), new_ric()
    decision_id = refused_decision(as_caller, person)
    portal = decisions_of(as_caller("portal"))
    missing = rpc_error(portal.GetDecision, decision_pb2.GetDecisionRequest(decision_id=decision_id))
    assert missing.code() == INVALID and missing.details().startswith("subject: is required")
    someone_elses = rpc_error(
        portal.GetDecision, decision_pb2.GetDecisionRequest(decision_id=decision_id, subject=subject(other))
    )
    guessed_id = unknown_like(decision_id)
    guessed = rpc_error(portal.GetDecision, decision_pb2.GetDecisionRequest(decision_id=guessed_id,
                                                                            subject=subject(other)))  # fmt: skip
    assert someone_elses.code() == guessed.code() == grpc.StatusCode.NOT_FOUND
    assert someone_elses.details().replace(decision_id, "<id>") == guessed.details().replace(guessed_id, "<id>")
    mine = portal.GetDecision(
        decision_pb2.GetDecisionRequest(decision_id=decision_id, subject=subject(person)), timeout=TIMEOUT
    )
    assert mine.decision_id == decision_id
    # A reviewer reads any decision by its id alone.
    by_reviewer = decisions_of(as_caller("reviewer:li")).GetDecision(
        decision_pb2.GetDecisionRequest(decision_id=decision_id), timeout=TIMEOUT
    )
    assert by_reviewer.subject_pseudonym == mine.subject_pseudonym == pseudonym(person)
    # Every one of those reads is in the audit log, the refused ones too.
    statuses = [line.split("status=")[1].split()[0] for line in audit_lines(sanction_tls, "portal", "GetDecision")]
    assert statuses[-4:] == ["INVALID_ARGUMENT", "NOT_FOUND", "NOT_FOUND", "OK"]


def test_a_second_filer_learns_nothing_of_the_first(as_caller):
    """Before: filing on a decision that already had an objection returned the first filer's statement and
    contact; and ListObjections was open to objections:file."""
    person, other = new_ric(), new_ric()
    decision_id = refused_decision(as_caller, person)
    portal = decisions_of(as_caller("portal"))
    first = portal.FileObjection(
        decision_pb2.FileObjectionRequest(decision_id=decision_id, statement="I was in Harbin that week.",
                                          contact="first@example.cn", subject=subject(person)),
        timeout=TIMEOUT,
    )  # fmt: skip
    second = rpc_error(portal.FileObjection, decision_pb2.FileObjectionRequest(
        decision_id=decision_id, statement="Me too.", contact="second@example.cn", subject=subject(person)
    ))  # fmt: skip
    assert second.code() == grpc.StatusCode.ALREADY_EXISTS
    assert second.details() == f"decision {decision_id} already has objection {first.objection_id}; nothing was filed"
    # With someone else's identifier the decision is not found at all, nor the objection its id names.
    stranger = rpc_error(portal.FileObjection, decision_pb2.FileObjectionRequest(
        decision_id=decision_id, statement="Me too.", contact="second@example.cn", subject=subject(other)
    ))  # fmt: skip
    assert stranger.code() == grpc.StatusCode.NOT_FOUND
    peek = rpc_error(portal.GetObjection, decision_pb2.GetObjectionRequest(objection_id=first.objection_id,
                                                                          subject=subject(other)))  # fmt: skip
    assert peek.code() == grpc.StatusCode.NOT_FOUND and "Harbin" not in peek.details()
    reconsider = rpc_error(portal.RequestReconsideration, decision_pb2.RequestReconsiderationRequest(
        objection_id=first.objection_id, statement="Look again.", subject=subject(other)
    ))  # fmt: skip
    assert reconsider.code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(portal.ListObjections, decision_pb2.ListObjectionsRequest()).code() == DENIED
    # The person sees their own objection; a reviewer sees it by id.
    own = portal.GetObjection(
        decision_pb2.GetObjectionRequest(objection_id=first.objection_id, subject=subject(person)), timeout=TIMEOUT
    )
    assert own.contact == "first@example.cn"
    reviewer = decisions_of(as_caller("reviewer:li"))
    assert reviewer.GetObjection(decision_pb2.GetObjectionRequest(objection_id=first.objection_id), timeout=TIMEOUT)


# --- signed tokens ------------------------------------------------------------------------------------------------
# One trust file for every service here (each token names its audience): the operator's issuer may issue platform
# names, the staff issuer clerks and reviewers, the railway service's key only `railway`, platform 12306's key only
# `platform:12306`.

KEYS = {name: tokens.new_signing_key() for name in ("operator", "staff", "railway", "platform-12306", "stranger")}
SUBJECTS = {"operator": ["platform:*"], "staff": ["clerk:*", "reviewer:*"], "railway": ["railway"],
            "platform-12306": ["platform:12306"]}  # fmt: skip
SANCTION, RAILWAY = tokens.audience_of("sanction"), tokens.audience_of("railway")


def token(issuer: str, sub: str, aud: str = SANCTION, ttl_s: int = 300, key: str | None = None) -> str:
    return tokens.mint(KEYS[key or issuer], issuer, sub, aud, time.time(), ttl_s)


def bearer(value: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {value}")]


@pytest.fixture(scope="module")
def token_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tokens")
    trust = {"issuers": {name: trust_entry(KEYS[name].public_key(), subjects) for name, subjects in SUBJECTS.items()}}
    (folder / "trust.json").write_text(json.dumps(trust))
    tokens.write_signing_key(folder / "railway.pem", KEYS["railway"])
    return {"trust": str(folder / "trust.json"), "railway_key": str(folder / "railway.pem")}


@pytest.fixture(scope="module")
def sanction_token(access_env, token_files, logs_dir) -> Iterator[ServiceProcess]:
    """TLS terminated in front (here: none, on loopback): callers prove who they are with signed tokens."""
    env = {**access_env, "DEBAR_PLAINTEXT": "true", "DEBAR_TOKEN_TRUST_FILE": token_files["trust"]}
    service = start_service("sanction", env, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


def test_a_signed_token_names_the_caller(sanction_token):
    with grpc.insecure_channel(sanction_token.address) as channel:
        stub = checks_of(channel)
        railway = bearer(token("railway", "railway"))
        assert stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), metadata=railway, timeout=TIMEOUT)
        error = rpc_error(stub.Check, check_request(new_ric(), "HOTEL_STAR_RATED"), metadata=railway)
        assert error.code() == DENIED


def _lasting(seconds: int) -> str:
    now = int(time.time())
    claims = {"iss": "railway", "sub": "railway", "aud": SANCTION, "iat": now, "exp": now + seconds, "jti": "t"}
    return jwt.encode(claims, KEYS["railway"], algorithm="EdDSA")


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (bearer(token("railway", "railway", ttl_s=1)[:-4] + "AAAA"), "signature"),
        (bearer(token("railway", "railway", aud=RAILWAY)), "not for this service"),  # another audience
        (bearer(_lasting(tokens.MAX_LIFETIME_S + 60)), "lives longer than 3600 s"),  # exp > 1 h
        (bearer(_lasting(24 * 3600)), "lives longer than 3600 s"),  # what the old tokens allowed
        (bearer(token("railway", "railway", key="stranger")), "signature does not match"),  # a key not trusted
        (bearer(token("stranger", "railway")), "issuer 'stranger' is not trusted"),
        (bearer("railway.1999999999.c2lnbmF0dXJl"), "malformed"),  # the old HMAC format
        ([("x-debar-caller", "railway")], "signed token is required"),
    ],
)
def test_tampered_stretched_foreign_or_missing_tokens_are_refused(sanction_token, metadata, reason):
    with grpc.insecure_channel(sanction_token.address) as channel:
        error = rpc_error(checks_of(channel).Check, check_request(new_ric(), "RAIL_G_TRAIN"), metadata=metadata)
    assert error.code() == UNAUTHENTICATED
    assert reason in error.details()


def test_an_expired_token_is_refused(sanction_token):
    now = int(time.time())
    claims = {"iss": "railway", "sub": "railway", "aud": SANCTION, "iat": now - 300, "exp": now - 60, "jti": "t"}
    with grpc.insecure_channel(sanction_token.address) as channel:
        error = rpc_error(checks_of(channel).Check, check_request(new_ric(), "RAIL_G_TRAIN"),
                          metadata=bearer(jwt.encode(claims, KEYS["railway"], algorithm="EdDSA")))  # fmt: skip
    assert error.code() == UNAUTHENTICATED and "expired" in error.details()


@pytest.mark.parametrize(("issuer", "minted"), [("platform-12306", "registry"), ("platform-12306", "local"),
                                                ("platform-12306", "clerk:wang"), ("operator", "clerk:wang"),
                                                ("railway", "registry")])  # fmt: skip
def test_a_platform_or_service_key_cannot_mint_a_registry_token(sanction_token, issuer, minted):
    """Before: one HMAC key signed every hop, so whoever could mint a platform token could mint `registry` (a Lift
    succeeded) or `local` (every scope)."""
    person = new_ric()
    with grpc.insecure_channel(sanction_token.address) as channel:
        error = rpc_error(registry_of(channel).Impose, impose_request(person), metadata=bearer(token(issuer, minted)))
        assert error.code() == UNAUTHENTICATED
        assert f"issuer {issuer!r} may not issue tokens for {minted!r}" in error.details()
        listed = registry_of(channel).ListRestrictions(
            registry_pb2.ListRestrictionsRequest(subject=subject(person)),
            metadata=bearer(token("staff", "clerk:wang")), timeout=TIMEOUT,
        )  # fmt: skip
    assert list(listed.restrictions) == []  # nothing was written


def test_a_platform_token_for_the_sanction_service_grants_nothing_there(sanction_token):
    with grpc.insecure_channel(sanction_token.address) as channel:
        platform = bearer(token("platform-12306", "platform:12306"))
        assert rpc_error(checks_of(channel).Check, check_request(new_ric(), "RAIL_G_TRAIN"),
                         metadata=platform).code() == DENIED  # fmt: skip


@pytest.fixture(scope="module")
def railway_token(sanction_token, access_env, token_files, logs_dir) -> Iterator[ServiceProcess]:
    """A domain service behind the same TLS-terminating front: it signs its own calls to the sanction service with
    its own key, and asks its callers (the ticketing platforms) for theirs."""
    env = {
        **access_env,
        "DEBAR_PLAINTEXT": "true",
        "DEBAR_TOKEN_TRUST_FILE": token_files["trust"],
        "DEBAR_TOKEN_SIGNING_KEY": token_files["railway_key"],
        "DEBAR_SANCTION_ADDRESS": sanction_token.address,
    }
    service = start_service("railway", env, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


def test_a_domain_service_behind_tokens_answers_only_signed_callers(sanction_token, railway_token):
    passenger = new_ric()
    with grpc.insecure_channel(sanction_token.address) as channel:
        writer = bearer(token("staff", "clerk:wang"))
        registry_of(channel).Impose(impose_request(passenger), metadata=writer, timeout=TIMEOUT)
    with grpc.insecure_channel(railway_token.address) as channel:
        stub = railway_pb2_grpc.RailwayServiceStub(channel)
        platform = bearer(token("operator", "platform:12306", aud=RAILWAY))
        verdict = stub.CheckTicket(g_ticket(), metadata=platform, timeout=TIMEOUT)
        assert verdict.allowed and len(verdict.decision_ids) == 2
        own_key = bearer(token("platform-12306", "platform:12306", aud=RAILWAY))
        refused = stub.CheckTicket(g_ticket(passenger), metadata=own_key, timeout=TIMEOUT)
        assert not refused.allowed
        refusals = {
            "none": (),
            "declared only": (("x-debar-caller", "platform:12306"),),
            "for the sanction service": bearer(token("operator", "platform:12306")),
            "another platform's name": bearer(token("platform-12306", "platform:ctrip", aud=RAILWAY)),
            "a key not trusted": bearer(token("operator", "platform:12306", aud=RAILWAY, key="stranger")),
        }
        for name, metadata in refusals.items():
            with pytest.raises(grpc.RpcError) as caught:
                stub.CheckTicket(g_ticket(), metadata=metadata, timeout=TIMEOUT)
            assert caught.value.code() == UNAUTHENTICATED, name
        # probes need no token
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    lines = [line for line in railway_token.log().splitlines() if "refused" in line]
    assert lines and all("caller=platform:12306" in line for line in lines), lines
    decided = [line for line in sanction_token.log().splitlines() if refused.refusals[0].decision_id in line]
    assert decided and all("caller=railway" in line and "on_behalf_of=platform:12306" in line for line in decided)


def test_a_server_beyond_loopback_refuses_to_start_in_plaintext(access_env):
    real_keys = {"DEBAR_BUCKET_KEY": "b" * 32, "DEBAR_OBJECTION_KEYS": "o1:" + "o" * 32}  # not the dev ones
    env = {**os.environ, **access_env, **real_keys, "DEBAR_HOST": "0.0.0.0", "DEBAR_SANCTION_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "debar.cli.main", "serve", "sanction"], env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2
    assert "needs DEBAR_TLS_CA, DEBAR_TLS_CERT and DEBAR_TLS_KEY" in done.stderr
