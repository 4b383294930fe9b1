"""`debar serve authz` as Envoy's ext_authz filter sees it: real CheckRequests (xds-protos messages, headers in
`headers` or `header_map`, bodies in `body` or `raw_body`) over real gRPC to an authz process that asks a real
sanction service on a real Redis. What a platform behind Envoy, the person refused, and the operator see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2_grpc
from google.rpc import code_pb2

import debar
from debar.authz.delegation import load_platforms
from debar.authz.servicer import AuthorizationServicer
from debar.common.identifiers import IdKind, InvalidIdentifier, mask_identifier, validate_identifier
from debar.common.settings import SettingsError
from debar.domain_services.sanction_client import SanctionClient
from debar.local.certs import write_dev_certs
from debar.local.embedded_redis import EmbeddedRedis, free_port
from debar.rpc.callers import CallerInterceptor, Identify
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, registry_pb2_grpc, sanction_pb2, sanction_pb2_grpc
from tests.support.envoy import PLATFORM, check_request, denied_body, denied_headers, upstream_headers
from tests.support.requests import impose_request
from tests.support.servers import ServiceProcess, start_service
from tests.support.subjects import bad_checksum, new_ric, new_uscc

TIMEOUT = 5
G_TRAIN = {"debar.check": "rail-g-train", "debar.subject.header": "x-passenger-id", "debar.subject.type": "RIC"}
BY_BODY = {"debar.measures": "RAIL_G_TRAIN,RAIL_TICKET_BAN", "debar.subject.json": "passenger.id",
           "debar.subject.type": "RIC"}  # fmt: skip


def start_authz(env: dict[str, str], sanction: ServiceProcess, logs_dir: Path, **kwargs) -> ServiceProcess:  # type: ignore[no-untyped-def]
    return start_service("authz", {**env, "DEBAR_SANCTION_ADDRESS": sanction.address}, logs_dir, **kwargs)


@pytest.fixture(scope="module")
def authz(sanction, service_env, logs_dir) -> Iterator[external_auth_pb2_grpc.AuthorizationStub]:  # type: ignore[no-untyped-def]
    service = start_authz(service_env, sanction, logs_dir)
    with grpc.insecure_channel(service.address) as channel:
        yield external_auth_pb2_grpc.AuthorizationStub(channel)
    assert service.stop() == 0, service.log()


def check(authz, *args, **kwargs):  # type: ignore[no-untyped-def]
    return authz.Check(check_request(*args, **kwargs), timeout=TIMEOUT)


# --- allow --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw_headers", [False, True], ids=["headers", "header_map"])
def test_an_unrestricted_passenger_goes_through_with_the_decision_ids_upstream(authz, decisions, raw_headers):
    person = new_ric()
    answer = check(authz, G_TRAIN, {"x-passenger-id": person}, raw_headers=raw_headers)
    assert answer.status.code == code_pb2.OK
    assert answer.WhichOneof("http_response") == "ok_response"
    ids = upstream_headers(answer)["x-debar-decision-ids"].split(",")
    assert len(ids) == 2  # rail-g-train: RAIL_G_TRAIN and RAIL_TICKET_BAN, one decision each
    logged = [decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=i), timeout=TIMEOUT) for i in ids]
    assert [d.measure for d in logged] == ["RAIL_G_TRAIN", "RAIL_TICKET_BAN"]
    assert {d.outcome for d in logged} == {common_pb2.OUTCOME_ALLOW}
    assert {d.caller for d in logged} == {"authz"}  # the sanction service knows this service by its own name
    assert person not in str(answer)


def test_a_client_cannot_smuggle_decision_headers_to_the_upstream(authz):
    forged = {"x-passenger-id": new_ric(), "x-debar-decision-ids": "forged", "x-debar-spooled-decision-ids": "forged"}
    answer = check(authz, G_TRAIN, forged)
    [option] = [o for o in answer.ok_response.headers if o.header.key == "x-debar-decision-ids"]
    assert option.append_action == base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD  # not appended to hers
    assert "forged" not in option.header.value
    assert "x-debar-spooled-decision-ids" in answer.ok_response.headers_to_remove


@pytest.mark.parametrize("raw_body", [False, True], ids=["body", "raw_body"])
def test_the_subject_may_come_from_a_json_body_field(authz, raw_body):
    body = {"train": "G123", "passenger": {"name": "Zhang San", "id": new_ric()}}
    answer = check(authz, BY_BODY, body=body, raw_body=raw_body)
    assert answer.status.code == code_pb2.OK
    assert len(upstream_headers(answer)["x-debar-decision-ids"].split(",")) == 2


def test_an_array_index_reaches_the_first_passenger(authz):
    route = {**BY_BODY, "debar.subject.json": "passengers.0.id"}
    answer = check(authz, route, body={"passengers": [{"id": new_ric()}, {"id": "not checked"}]})
    assert answer.status.code == code_pb2.OK


# --- refusal ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "where"),
    [(G_TRAIN, "header"), (BY_BODY, "body"), (BY_BODY, "raw_body"), (G_TRAIN, "header_map")],
)
def test_a_restricted_passenger_is_refused_with_what_she_needs_to_object(authz, registry, decisions, route, where):
    person = new_ric()
    registry.Impose(impose_request(person), timeout=TIMEOUT)
    if where.startswith("header"):
        answer = check(authz, route, {"x-passenger-id": person}, raw_headers=where == "header_map")
    else:
        answer = check(authz, route, body={"passenger": {"id": person}}, raw_body=where == "raw_body")

    assert answer.status.code == code_pb2.PERMISSION_DENIED
    assert answer.WhichOneof("http_response") == "denied_response"
    assert answer.denied_response.status.code == 403
    headers, body = denied_headers(answer), denied_body(answer)
    assert headers["content-type"] == "application/json"
    assert headers["x-debar-decision-id"] == body["decision_id"]
    assert body["allowed"] is False
    assert body["refused_measures"] == ["RAIL_G_TRAIN"]  # RAIL_TICKET_BAN was asked and allowed
    assert body["subject"] == mask_identifier(person)
    [refusal] = body["refusals"]
    assert refusal["decision_id"] == body["decision_id"]
    [ground] = refusal["grounds"]
    assert ground["source"] == "court_consumption_order"
    assert ground["authority"] == "Beijing Chaoyang District People's Court"
    assert ground["case_number"] in ground["summary"] and ground["effective_until"] is None
    assert refusal["objection"]["review_days"] == 15
    assert "enforcing court" in body["how_to_object"] and body["decision_id"] in body["how_to_object"]
    assert len(body["decision_ids"]) == 2
    assert person not in str(answer)  # masked, everywhere
    logged = decisions.GetDecision(decision_pb2.GetDecisionRequest(decision_id=body["decision_id"]), timeout=TIMEOUT)
    assert logged.outcome == common_pb2.OUTCOME_DENY and logged.measure == "RAIL_G_TRAIN"


def test_a_rule_set_that_checks_companies_refuses_a_debarred_bidder(authz, registry):
    company = new_uscc()
    registry.Impose(impose_request(company, source="procurement_debarment"), timeout=TIMEOUT)
    route = {"debar.check": "tender-bid", "debar.subject.json": "bidder.uscc"}  # the rule set says USCC
    answer = check(authz, route, body={"bidder": {"uscc": company}, "tender": "CG-2026-0042"})
    assert answer.denied_response.status.code == 403
    assert denied_body(answer)["refused_measures"] == ["PROCUREMENT_BID"]


# --- bad subject: 400 naming the field ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "kwargs", "field", "reason"),
    [
        (G_TRAIN, {}, "x-passenger-id", "is missing"),
        (G_TRAIN, {"headers": {"x-passenger-id": "12345"}}, "x-passenger-id", "RIC"),
        (G_TRAIN, {"headers": {"x-passenger-id": bad_checksum(new_ric())}}, "x-passenger-id", "RIC"),
        (BY_BODY, {"body": {"passenger": {"name": "Zhang San"}}}, "passenger.id", "passenger.id not found"),
        (BY_BODY, {"body": {"passenger": {"id": 110105194912310025}}}, "passenger.id", "must be a string"),
        (BY_BODY, {"body": "passenger=1", "raw_body": True}, "passenger.id", "not JSON"),
        (BY_BODY, {}, "passenger.id", "no body"),
    ],
)
def test_a_request_without_a_usable_subject_is_a_400_naming_the_field(authz, route, kwargs, field, reason):
    answer = check(authz, route, **kwargs)
    assert answer.status.code == code_pb2.INVALID_ARGUMENT
    assert answer.denied_response.status.code == 400
    body = denied_body(answer)
    assert body["field"] == field and body["in"] == ("header" if "debar.subject.header" in route else "body")
    assert reason in body["message"]


def test_a_body_naming_the_passenger_twice_is_refused_not_checked_on_one_of_them(authz, registry):
    """The attack: a restricted passenger's order with her id twice, a clean id last. A parser that keeps the last
    value (Python's json, orjson) would have debar check the clean one while a platform whose parser keeps the
    first books her."""
    restricted, clean = new_ric(), new_ric()
    registry.Impose(impose_request(restricted), timeout=TIMEOUT)
    body = f'{{"passenger": {{"id": "{restricted}", "id": "{clean}"}}}}'
    for raw_body in (False, True):
        answer = check(authz, BY_BODY, body=body, raw_body=raw_body)
        assert answer.status.code == code_pb2.INVALID_ARGUMENT, answer.status
        assert answer.denied_response.status.code == 400
        assert "twice" in denied_body(answer)["message"] and denied_body(answer)["field"] == "passenger.id"


def test_the_subject_header_given_twice_is_refused(authz):
    request = check_request(G_TRAIN, raw_headers=True)
    for number in (new_ric(), new_ric()):
        request.attributes.request.http.header_map.headers.append(
            base_pb2.HeaderValue(key="X-Passenger-Id", raw_value=number.encode())
        )
    answer = authz.Check(request, timeout=TIMEOUT)
    assert answer.denied_response.status.code == 400
    assert "more than once" in denied_body(answer)["message"]


# --- the route's configuration ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extensions", "key"),
    [
        ({}, "debar.measures"),
        ({"debar.check": "space-flight", "debar.subject.header": "x-id", "debar.subject.type": "RIC"}, "debar.check"),
        ({**G_TRAIN, "debar.subject.heder": "x-id"}, "debar.subject.heder"),
        ({"debar.measures": "RAIL_G_TRAIN", "debar.subject.header": "x-passenger-id"}, "debar.subject.type"),
        ({**G_TRAIN, "debar.subject.type": "PASSPORT"}, "debar.subject.type"),
        ({**G_TRAIN, "debar.measures": "RAIL_G_TRAIN"}, "debar.measures"),
        ({"debar.check": "tender-bid", "debar.subject.header": "x-id", "debar.subject.type": "RIC"},
         "debar.subject.type"),
        # Well-formed, and unknown to the catalogue: the sanction service says so, and it is the route's to fix.
        ({"debar.measures": "RAIL_MAGLEV", "debar.subject.header": "x-passenger-id", "debar.subject.type": "RIC"},
         "debar.measures"),
    ],
)  # fmt: skip
def test_a_misconfigured_route_never_allows_and_names_the_key(authz, extensions, key):
    answer = check(authz, extensions, {"x-passenger-id": new_ric(), "x-id": new_ric()})
    assert answer.status.code == code_pb2.INTERNAL
    assert answer.denied_response.status.code == 500
    body = denied_body(answer)
    assert body["error"] == "MISCONFIGURED" and body["what"] == f"context_extensions {key}"


def test_a_route_that_reads_the_body_without_with_request_body_is_misconfigured(authz):
    request = check_request(BY_BODY, body={"passenger": {"id": new_ric()}})
    request.attributes.request.http.ClearField("body")  # Envoy sent the size, not the body
    answer = authz.Check(request, timeout=TIMEOUT)
    assert answer.denied_response.status.code == 500
    assert denied_body(answer)["what"] == "ext_authz filter"


def test_a_body_cut_at_max_request_bytes_is_a_413(authz):
    answer = check(authz, BY_BODY, {"x-envoy-auth-partial-body": "true"}, body='{"passenger": {"id": "1101')
    assert answer.denied_response.status.code == 413


def test_a_measure_outside_this_services_scopes_is_misconfigured_not_allowed(authz):
    """AIR_TRAVEL is checked by no domain service, so authz's scopes (check:<domain> of each) do not cover it."""
    route = {"debar.measures": "AIR_TRAVEL", "debar.subject.header": "x-passenger-id", "debar.subject.type": "RIC"}
    answer = check(authz, route, {"x-passenger-id": new_ric()})
    assert answer.status.code == code_pb2.INTERNAL
    assert denied_body(answer)["what"] == "debar authz"


# --- the sanction service's Redis down ----------------------------------------------------------------------------


def test_redis_down_a_fail_open_measure_allows_with_spooled_ids_and_a_fail_closed_one_is_unavailable(
    tmp_path, logs_dir
):
    redis = EmbeddedRedis(tmp_path / "redis").start()
    env = {"DEBAR_REDIS_URL": redis.url, "DEBAR_PSEUDONYM_KEYS": "t1:test-secret-one-at-least-32-bytes",
           "DEBAR_DATA_DIR": str(tmp_path / "data"), "DEBAR_PLAINTEXT": "true"}  # fmt: skip
    sanction = start_service("sanction", env, logs_dir)
    service = start_authz(env, sanction, logs_dir)
    open_route = {"debar.check": "rail-ticket", "debar.subject.header": "x-passenger-id", "debar.subject.type": "RIC"}
    try:
        with grpc.insecure_channel(service.address) as channel:
            stub = external_auth_pb2_grpc.AuthorizationStub(channel)
            steady = check(stub, open_route, {"x-passenger-id": new_ric()})
            assert "x-debar-spooled-decision-ids" not in upstream_headers(steady)
            redis.stop(kill=True)

            degraded = check(stub, open_route, {"x-passenger-id": new_ric()})
            assert degraded.status.code == code_pb2.OK  # RAIL_TICKET_BAN fails open: allowed, and logged later
            headers = upstream_headers(degraded)
            [decision_id] = headers["x-debar-decision-ids"].split(",")
            assert len(decision_id) == 26 and headers["x-debar-spooled-decision-ids"] == decision_id

            with pytest.raises(grpc.RpcError) as raised:  # RAIL_G_TRAIN fails closed: Envoy answers 503
                check(stub, G_TRAIN, {"x-passenger-id": new_ric()})
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        service.stop()
        sanction.stop()
        redis.stop(kill=True)


def test_the_sanction_service_gone_is_unavailable(service_env, logs_dir):
    """Not a denied answer Envoy would show as a refusal, nor an allow: the call fails, and Envoy's
    status_on_error answers."""
    nobody = f"127.0.0.1:{free_port()}"
    service = start_service("authz", {**service_env, "DEBAR_SANCTION_ADDRESS": nobody}, logs_dir, wait_serving=False)
    try:
        with grpc.insecure_channel(service.address) as channel:
            grpc.channel_ready_future(channel).result(timeout=20)
            with pytest.raises(grpc.RpcError) as raised:
                check(external_auth_pb2_grpc.AuthorizationStub(channel), G_TRAIN, {"x-passenger-id": new_ric()})
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        service.stop()


# --- who calls: the Envoy, by its certificate ---------------------------------------------------------------------


@pytest.mark.parametrize("platforms", [None, {"platforms": {}}], ids=["no-platforms-file", "a-file-naming-no-proxies"])
def test_beyond_local_mode_authz_refuses_to_start_without_the_proxies_it_answers(service_env, tmp_path, platforms):
    """The attack (security review, a platform as insider): authz under mutual TLS with no platforms file, or one
    naming no proxies, answered every caller with a certificate of the CA: a platform calling it directly was asked
    for as authz, with authz's scopes and at its rate, measures of another domain included. Now it does not start."""
    certs = tmp_path / "certs"
    write_dev_certs(certs)
    env = {**os.environ, **{k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"},
           "DEBAR_TLS_CA": str(certs / "ca.pem"), "DEBAR_TLS_CERT": str(certs / "authz.pem"),
           "DEBAR_TLS_KEY": str(certs / "authz-key.pem"), "DEBAR_AUTHZ_PORT": str(free_port())}  # fmt: skip
    if platforms is not None:
        (tmp_path / "platforms.json").write_text(json.dumps(platforms))
        env["DEBAR_AUTHZ_PLATFORMS_FILE"] = str(tmp_path / "platforms.json")
    done = subprocess.run([sys.executable, "-m", "debar.cli.main", "serve", "authz"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "DEBAR_AUTHZ_PLATFORMS_FILE must name proxies" in done.stderr


def test_over_mutual_tls_only_a_certified_envoy_is_answered_and_authz_asks_as_itself(service_env, tmp_path, logs_dir):
    certs = tmp_path / "certs"
    write_dev_certs(certs)

    def tls(name: str) -> dict[str, str]:
        return {"DEBAR_TLS_CA": str(certs / "ca.pem"), "DEBAR_TLS_CERT": str(certs / f"{name}.pem"),
                "DEBAR_TLS_KEY": str(certs / f"{name}-key.pem")}  # fmt: skip

    def credentials(name: str | None) -> grpc.ChannelCredentials:
        ca = (certs / "ca.pem").read_bytes()
        if name is None:
            return grpc.ssl_channel_credentials(root_certificates=ca)
        return grpc.ssl_channel_credentials(
            ca, (certs / f"{name}-key.pem").read_bytes(), (certs / f"{name}.pem").read_bytes()
        )

    env = {k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"}
    probe = credentials("bench")
    sanction = start_service("sanction", {**env, **tls("sanction")}, logs_dir, credentials=probe)
    (tmp_path / "platforms.json").write_text(json.dumps({"proxies": ["envoy"], "platforms": {}}))
    service = start_authz({**env, **tls("authz"), "DEBAR_AUTHZ_PLATFORMS_FILE": str(tmp_path / "platforms.json")},
                          sanction, logs_dir, credentials=probe)  # fmt: skip
    try:
        with grpc.secure_channel(service.address, credentials("envoy")) as channel:
            answer = check(external_auth_pb2_grpc.AuthorizationStub(channel), G_TRAIN, {"x-passenger-id": new_ric()})
        ids = upstream_headers(answer)["x-debar-decision-ids"].split(",")
        with grpc.secure_channel(sanction.address, credentials("reviewer:li")) as channel:
            decision = decision_pb2_grpc.DecisionServiceStub(channel).GetDecision(
                decision_pb2.GetDecisionRequest(decision_id=ids[0]), timeout=TIMEOUT
            )
        assert decision.caller == "authz"
        with grpc.secure_channel(service.address, credentials(None)) as channel, pytest.raises(grpc.RpcError) as no:
            check(external_auth_pb2_grpc.AuthorizationStub(channel), G_TRAIN, {"x-passenger-id": new_ric()})
        assert no.value.code() == grpc.StatusCode.UNAVAILABLE  # no client certificate: no handshake
    finally:
        service.stop()
        sanction.stop()


def test_bodies_are_json_and_never_carry_a_clear_identifier_in_any_answer(authz, registry):
    person = new_ric()
    while _reads_as_uscc(person):  # 1 RIC in 32 is a valid USCC too: its second check would then be an allow
        person = new_ric()
    registry.Impose(impose_request(person), timeout=TIMEOUT)
    answers = [
        check(authz, G_TRAIN, {"x-passenger-id": person}),
        check(authz, {**G_TRAIN, "debar.subject.type": "USCC"}, {"x-passenger-id": person}),
        check(authz, {**G_TRAIN, "debar.subject.heder": "x"}, {"x-passenger-id": person}),
    ]
    for answer in answers:
        assert answer.HasField("denied_response"), answer  # a refusal and two bad requests
        json.loads(answer.denied_response.body)
        assert person not in str(answer)


def _reads_as_uscc(number: str) -> bool:
    try:
        validate_identifier(IdKind.USCC, number)
    except InvalidIdentifier:
        return False
    return True


# --- the delegation hook ------------------------------------------------------------------------------------------


class _RecordingSanction(sanction_pb2_grpc.SanctionServiceServicer):
    """Stands in for the sanction service only to see what authz sends it: the metadata of each BatchCheck."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    async def BatchCheck(self, request, context):  # type: ignore[no-untyped-def]
        self.metadata.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})
        response = sanction_pb2.CheckResponse(decision_id="d-1", outcome=common_pb2.OUTCOME_ALLOW)
        return sanction_pb2.BatchCheckResponse(
            results=[sanction_pb2.BatchResult(response=response)] * len(request.items)
        )


@asynccontextmanager
async def _authz_beside_a_recording_sanction(
    platforms: dict[str, str], proxies: frozenset[str] | None = None, *interceptors: grpc.aio.ServerInterceptor
) -> AsyncIterator[tuple[int, _RecordingSanction]]:
    """An in-process authz (with `interceptors`) asking a sanction service that records what it is asked: authz's
    port and the recording; both stopped on the way out."""
    recording = _RecordingSanction()
    sanction_server = grpc.aio.server()
    sanction_pb2_grpc.add_SanctionServiceServicer_to_server(recording, sanction_server)
    sanction_port = sanction_server.add_insecure_port("127.0.0.1:0")
    await sanction_server.start()
    client = SanctionClient.connect(f"127.0.0.1:{sanction_port}", "authz", TIMEOUT)
    authz_server = grpc.aio.server(interceptors=interceptors)
    external_auth_pb2_grpc.add_AuthorizationServicer_to_server(
        AuthorizationServicer(client, platforms=platforms, proxies=proxies), authz_server
    )
    authz_port = authz_server.add_insecure_port("127.0.0.1:0")
    await authz_server.start()
    try:
        yield authz_port, recording
    finally:
        await authz_server.stop(None)
        await client.close()
        await sanction_server.stop(None)


@pytest.mark.parametrize("platforms", [{}, {PLATFORM: "platform:shop"}, {"spiffe://elsewhere": "platform:x"}])
async def test_a_mapped_platform_goes_to_the_sanction_service_as_delegation(platforms):
    """The downstream principal Envoy authenticated travels as x-debar-on-behalf-of, as the platform identity the
    platforms file names for it; an unmapped principal (or no file) is asked for by authz alone."""
    async with _authz_beside_a_recording_sanction(platforms) as (authz_port, recording):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{authz_port}") as channel:
            answer = await external_auth_pb2_grpc.AuthorizationStub(channel).Check(
                check_request(G_TRAIN, {"x-passenger-id": new_ric()}, principal=PLATFORM), timeout=TIMEOUT
            )
        assert answer.status.code == code_pb2.OK
        [sent] = recording.metadata
        assert sent["x-debar-caller"] == "authz"
        assert sent.get("x-debar-on-behalf-of") == platforms.get(PLATFORM)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"platforms": {PLATFORM: "reviewer:li"}}, "expected a platform identity"),
        ({"platforms": {PLATFORM: "platform:Shop"}}, "expected a platform identity"),
        ({"platforms": {" x": "platform:x"}}, "without surrounding spaces"),
        ({"platforms": []}, "expected"),
        ({"platforms": {PLATFORM: "platform:x"}}, "proxies: required with platforms"),
        ({"proxies": ["Envoy One"], "platforms": {PLATFORM: "platform:x"}}, "proxies: expected a list of identities"),
    ],
)
def test_a_bad_platforms_file_stops_the_start(tmp_path, data, message):
    path = tmp_path / "platforms.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SettingsError, match=message):
        load_platforms(str(path))


def test_one_platform_behind_envoy_exhausting_its_rate_leaves_anothers_answered(service_env, tmp_path, logs_dir):
    """Issue 15's "the platform identity from the access issue's delegation": before, every platform behind the
    same Envoy was asked for as `authz`, on one shared rate, and the decision log named authz only."""
    certs = tmp_path / "certs"
    write_dev_certs(certs)
    ca = (certs / "ca.pem").read_bytes()

    def tls(name: str) -> dict[str, str]:
        return {"DEBAR_TLS_CA": str(certs / "ca.pem"), "DEBAR_TLS_CERT": str(certs / f"{name}.pem"),
                "DEBAR_TLS_KEY": str(certs / f"{name}-key.pem")}  # fmt: skip

    def credentials(name: str) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(ca, (certs / f"{name}-key.pem").read_bytes(),
                                            (certs / f"{name}.pem").read_bytes())  # fmt: skip

    scopes = json.loads((Path(debar.__file__).parent / "data" / "scopes.json").read_text())
    scopes["callers"]["platform:eager"] = {"scopes": [], "rate": {"checks": 4, "window_s": 3600}}
    scopes["callers"]["platform:steady"] = {"scopes": [], "rate": {"checks": 4, "window_s": 3600}}
    (tmp_path / "scopes.json").write_text(json.dumps(scopes))
    eager, steady = "spiffe://cluster.local/ns/eager/sa/shop", "spiffe://cluster.local/ns/steady/sa/shop"
    (tmp_path / "platforms.json").write_text(json.dumps(
        {"proxies": ["envoy"], "platforms": {eager: "platform:eager", steady: "platform:steady"}}
    ))  # fmt: skip
    env = {k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"}
    env["DEBAR_SCOPES_FILE"] = str(tmp_path / "scopes.json")
    probe = credentials("bench")
    sanction = start_service("sanction", {**env, **tls("sanction")}, logs_dir, credentials=probe)
    service = start_authz(
        {**env, **tls("authz"), "DEBAR_AUTHZ_PLATFORMS_FILE": str(tmp_path / "platforms.json")}, sanction, logs_dir,
        credentials=probe,
    )  # fmt: skip
    try:
        with grpc.secure_channel(service.address, credentials("envoy")) as channel:
            stub = external_auth_pb2_grpc.AuthorizationStub(channel)

            def answered(principal: str) -> str:
                answer = check(stub, G_TRAIN, {"x-passenger-id": new_ric()}, principal=principal)
                return "allowed" if answer.status.code == code_pb2.OK else str(answer.denied_response.status.code)

            into = time.time() % 3600  # the rates count in hour windows: not across an hour's end
            if into > 3600 - 30:
                time.sleep(3600 - into + 0.5)
            # rail-g-train is 2 checks: platform:eager's 4 an hour is two requests; the third is rate limited...
            assert [answered(eager) for _ in range(3)] == ["allowed", "allowed", "429"]  # Too Many Requests
            # ...and platform:steady, behind the same Envoy and the same authz, is answered on its own rate.
            assert answered(steady) == "allowed"
            person = new_ric()
            with grpc.secure_channel(sanction.address, credentials("clerk:wang")) as clerk:
                registry_pb2_grpc.RegistryServiceStub(clerk).Impose(impose_request(person), timeout=TIMEOUT)
            refused = check(stub, G_TRAIN, {"x-passenger-id": person}, principal=steady)
        decision_id = denied_headers(refused)["x-debar-decision-id"]
        # Who asked, all the way down: authz for platform:steady.
        logged = [line for line in sanction.log().splitlines() if decision_id in line]
        assert logged and all("caller=authz" in line and "on_behalf_of=platform:steady" in line for line in logged)
        assert "flagged: caller 'authz/platform:eager'" in sanction.log()
        # The attack (security review): a principal is the caller's word. Before, platform:trip's own certificate
        # called authz directly naming platform:steady's principal and was asked for as platform:steady, using up
        # its rate and checking in its name. With a platforms file, authz answers only its proxies.
        direct = grpc.secure_channel(service.address, credentials("platform:trip"))
        with direct, pytest.raises(grpc.RpcError) as spoofed:
            check(external_auth_pb2_grpc.AuthorizationStub(direct), G_TRAIN, {"x-passenger-id": new_ric()},
                  principal=steady)  # fmt: skip
        assert spoofed.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "not a proxy named in DEBAR_AUTHZ_PLATFORMS_FILE" in spoofed.value.details()
    finally:
        service.stop()
        sanction.stop()


async def test_a_platforms_file_naming_proxies_and_no_platform_yet_still_answers_only_its_proxies(tmp_path):
    """The attack (security review, platform as insider): an operator lists Envoy in `proxies` before mapping any
    platform ({"proxies": ["envoy"], "platforms": {}}). Before, the proxy rule applied only once a platform was
    mapped, so a platform's own credential calling authz directly was answered: it chose the route's measures
    (context_extensions are the caller's word) and checked any domain's, e.g. PROCUREMENT_BID from a hotel chain,
    asked as authz alone, at authz's rate and in its name. Now proxies are the only callers once named."""
    (tmp_path / "platforms.json").write_text(json.dumps({"proxies": ["envoy"], "platforms": {}}))
    platforms, proxies = load_platforms(str(tmp_path / "platforms.json"))
    bid = {"debar.measures": "PROCUREMENT_BID", "debar.subject.header": "x-bidder", "debar.subject.type": "RIC"}
    identified = CallerInterceptor(Identify("local"))  # as `serve` wires it
    async with (
        _authz_beside_a_recording_sanction(platforms, proxies, identified) as (authz_port, recording),
        grpc.aio.insecure_channel(f"127.0.0.1:{authz_port}") as channel,
    ):
        stub = external_auth_pb2_grpc.AuthorizationStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Check(check_request(bid, {"x-bidder": new_ric()}), timeout=TIMEOUT,
                             metadata=(("x-debar-caller", "platform:hotelchain"),))  # fmt: skip
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert recording.metadata == []  # nothing was asked of the sanction service
        answer = await stub.Check(check_request(G_TRAIN, {"x-passenger-id": new_ric()}), timeout=TIMEOUT,
                                  metadata=(("x-debar-caller", "envoy"),))  # fmt: skip
        assert answer.status.code == code_pb2.OK  # the proxy is answered
