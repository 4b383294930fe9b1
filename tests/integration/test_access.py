"""Who may ask what, over real gRPC and a real Redis: mutual TLS with `debar certs dev` certificates, scopes per
method and per measure, the caller in the decision log, per-caller rates shared by replicas, signed tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from debar.local.certs import write_dev_certs
from debar.rpc.tokens import mint
from debar.v1 import (
    common_pb2,
    decision_pb2,
    decision_pb2_grpc,
    railway_pb2,
    railway_pb2_grpc,
    registry_pb2_grpc,
    sanction_pb2,
    sanction_pb2_grpc,
)
from tests.support.requests import check_request, impose_request, subject
from tests.support.servers import ServiceProcess, start_service
from tests.support.subjects import new_ric

TIMEOUT = 5
TOKEN_KEY = "integration-token-key-0123"
DENIED, EXHAUSTED = grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.RESOURCE_EXHAUSTED
# Callers only these tests know: tiny rates in long windows, so that a window boundary almost never falls inside one.
EXTRA = {
    "scraper": {"scopes": ["check:*"], "rate": {"checks": 3, "window_s": 3600}},
    "crawler": {"scopes": ["check:*"], "rate": {"checks": 4, "window_s": 3600}},
}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("certs")
    write_dev_certs(directory)
    write_dev_certs(directory, services=(), clients=tuple(EXTRA))
    return directory


@pytest.fixture(scope="module")
def foreign_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same names, signed by another CA."""
    directory = tmp_path_factory.mktemp("foreign-certs")
    write_dev_certs(directory, services=(), clients=("railway",))
    return directory


@pytest.fixture(scope="module")
def access_env(service_env: dict[str, str], certs: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from importlib import resources

    scopes = json.loads(resources.files("debar").joinpath("data/scopes.json").read_text())
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
def sanction_tls(access_env: dict[str, str], certs: Path, logs_dir: Path) -> Iterator[ServiceProcess]:
    service = start_mtls("sanction", access_env, certs, logs_dir)
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
    assert results[3].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert results[3].error.message.startswith("items[3].measure")  # indices are the request's, not the checked
    assert results[0].response.decision_id and results[2].response.decision_id


def test_only_registry_writers_impose(as_caller):
    request = impose_request(new_ric())
    error = rpc_error(registry_pb2_grpc.RegistryServiceStub(as_caller("railway")).Impose, request)
    assert error.code() == DENIED
    assert "caller 'railway' may not call /debar.v1.RegistryService/Impose" in error.details()
    written = registry_pb2_grpc.RegistryServiceStub(as_caller("registry")).Impose(request, timeout=TIMEOUT)
    assert written.restriction.id


def test_the_decision_log_records_the_certificate_name(as_caller):
    person = new_ric()
    registry_pb2_grpc.RegistryServiceStub(as_caller("registry")).Impose(impose_request(person), timeout=TIMEOUT)
    refused = checks_of(as_caller("railway")).Check(
        check_request(person, "RAIL_G_TRAIN"),
        metadata=[("x-debar-caller", "bench")],  # ignored under mTLS: the certificate names the caller
        timeout=TIMEOUT,
    )
    assert refused.outcome == common_pb2.OUTCOME_DENY
    request = decision_pb2.GetDecisionRequest(decision_id=refused.decision_id)
    assert rpc_error(decision_pb2_grpc.DecisionServiceStub(as_caller("railway")).GetDecision, request).code() == DENIED
    logged = decision_pb2_grpc.DecisionServiceStub(as_caller("portal")).GetDecision(request, timeout=TIMEOUT)
    assert logged.caller == "railway"


def test_a_domain_service_asks_with_its_own_certificate_and_serves_mtls(sanction_tls, access_env, certs, logs_dir):
    person = new_ric()
    with grpc.secure_channel(sanction_tls.address, credentials(certs, "registry")) as channel:
        registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(person), timeout=TIMEOUT)
    railway = start_mtls("railway", {**access_env, "DEBAR_SANCTION_ADDRESS": sanction_tls.address}, certs, logs_dir)
    try:
        ticket = railway_pb2.CheckTicketRequest(
            passenger=subject(person), train_number="G1", seat_class=railway_pb2.SEAT_CLASS_SECOND
        )
        with grpc.insecure_channel(railway.address) as plain:
            assert (
                rpc_error(railway_pb2_grpc.RailwayServiceStub(plain).CheckTicket, ticket).code().name == "UNAVAILABLE"
            )
        with grpc.secure_channel(railway.address, credentials(certs, "portal")) as channel:
            verdict = railway_pb2_grpc.RailwayServiceStub(channel).CheckTicket(ticket, timeout=TIMEOUT)
        assert not verdict.allowed
        with grpc.secure_channel(sanction_tls.address, credentials(certs, "portal")) as channel:
            logged = decision_pb2_grpc.DecisionServiceStub(channel).GetDecision(
                decision_pb2.GetDecisionRequest(decision_id=verdict.refusals[0].decision_id), timeout=TIMEOUT
            )
        assert logged.caller == "railway"
    finally:
        assert railway.stop() == 0, railway.log()


# --- rates --------------------------------------------------------------------------------------------------------


def clear_of_a_window_end(window_s: int = 3600, margin_s: float = 30) -> None:
    """Rates count in fixed windows: a test that meets a window's end sees its count start again. Within the last
    `margin_s` of one, wait for the next (about one run in a hundred waits, at most that long)."""
    into = time.time() % window_s
    if into > window_s - margin_s:
        time.sleep(window_s - into + 0.5)


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


# --- signed tokens ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sanction_token(access_env: dict[str, str], logs_dir: Path) -> Iterator[ServiceProcess]:
    """TLS terminated in front (here: none, on loopback): callers prove who they are with signed tokens."""
    service = start_service("sanction", {**access_env, "DEBAR_PLAINTEXT": "true", "DEBAR_TOKEN_KEY": TOKEN_KEY},
                            logs_dir)  # fmt: skip
    yield service
    assert service.stop() == 0, service.log()


def bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def test_a_signed_token_names_the_caller(sanction_token):
    with grpc.insecure_channel(sanction_token.address) as channel:
        stub = checks_of(channel)
        token = mint(TOKEN_KEY, "railway", int(time.time()) + 60)
        assert stub.Check(check_request(new_ric(), "RAIL_G_TRAIN"), metadata=bearer(token), timeout=TIMEOUT)
        error = rpc_error(stub.Check, check_request(new_ric(), "HOTEL_STAR_RATED"), metadata=bearer(token))
        assert error.code() == DENIED


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        (bearer(mint(TOKEN_KEY, "railway", int(time.time()) - 1)), "token expired"),
        (bearer(mint(TOKEN_KEY, "railway", int(time.time()) + 60).replace("railway", "registry")), "signature"),
        (bearer(mint("another-key-0123456789", "railway", int(time.time()) + 60)), "signature"),
        ([("x-debar-caller", "railway")], "signed token is required"),
    ],
)
def test_expired_tampered_or_missing_tokens_are_refused(sanction_token, metadata, reason):
    with grpc.insecure_channel(sanction_token.address) as channel:
        error = rpc_error(checks_of(channel).Check, check_request(new_ric(), "RAIL_G_TRAIN"), metadata=metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason in error.details()


@pytest.fixture(scope="module")
def railway_token(
    sanction_token: ServiceProcess, access_env: dict[str, str], logs_dir: Path
) -> Iterator[ServiceProcess]:
    """A domain service behind the same TLS-terminating front: it signs its own calls to the sanction service and
    asks its callers (the ticketing platforms) for theirs."""
    env = {**access_env, "DEBAR_PLAINTEXT": "true", "DEBAR_TOKEN_KEY": TOKEN_KEY,
           "DEBAR_SANCTION_ADDRESS": sanction_token.address}  # fmt: skip
    service = start_service("railway", env, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


def g_ticket() -> railway_pb2.CheckTicketRequest:
    return railway_pb2.CheckTicketRequest(
        passenger=subject(new_ric()), train_number="G123", seat_class=railway_pb2.SEAT_CLASS_SECOND
    )


def test_a_domain_service_behind_tokens_answers_only_signed_callers(sanction_token, railway_token):
    passenger = new_ric()
    with grpc.insecure_channel(sanction_token.address) as channel:
        writer = bearer(mint(TOKEN_KEY, "registry", int(time.time()) + 60))
        registry_pb2_grpc.RegistryServiceStub(channel).Impose(impose_request(passenger), metadata=writer)
    with grpc.insecure_channel(railway_token.address) as channel:
        stub = railway_pb2_grpc.RailwayServiceStub(channel)
        token = mint(TOKEN_KEY, "ticketing-platform", int(time.time()) + 60)
        verdict = stub.CheckTicket(g_ticket(), metadata=bearer(token), timeout=TIMEOUT)
        assert verdict.allowed and len(verdict.decision_ids) == 2
        restricted = g_ticket()
        restricted.passenger.id = passenger
        assert not stub.CheckTicket(restricted, metadata=bearer(token), timeout=TIMEOUT).allowed
        refusals = {
            "none": (),
            "declared only": (("x-debar-caller", "ticketing-platform"),),
            "expired": bearer(mint(TOKEN_KEY, "ticketing-platform", int(time.time()) - 1)),
            "another key": bearer(mint("another-key-0123456789", "ticketing-platform", int(time.time()) + 60)),
        }
        for name, metadata in refusals.items():
            with pytest.raises(grpc.RpcError) as caught:
                stub.CheckTicket(g_ticket(), metadata=metadata, timeout=TIMEOUT)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        # probes need no token
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    refused = [line for line in railway_token.log().splitlines() if "refused" in line]
    assert refused and all("caller=ticketing-platform" in line for line in refused), refused


def test_a_server_beyond_loopback_refuses_to_start_in_plaintext(access_env):
    real_keys = {"DEBAR_BUCKET_KEY": "b" * 32, "DEBAR_OBJECTION_KEYS": "o1:" + "o" * 32}  # not the dev ones
    env = {**os.environ, **access_env, **real_keys, "DEBAR_HOST": "0.0.0.0", "DEBAR_SANCTION_PORT": "0"}
    done = subprocess.run([sys.executable, "-m", "debar.cli.main", "serve", "sanction"], env=env,
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2
    assert "needs DEBAR_TLS_CA, DEBAR_TLS_CERT and DEBAR_TLS_KEY" in done.stderr
