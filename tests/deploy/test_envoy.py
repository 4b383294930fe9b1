"""The Envoy and Istio examples in deploy/envoy, checked offline: no Envoy binary is packaged on PyPI or in Debian,
so the Envoy configuration is parsed into Envoy's own messages from xds-protos (json_format refuses an unknown
field, a wrong enum name or an unknown "@type", at any depth), and every route's context_extensions go through
debar's own route parser. What Envoy would only check at start-up (its proto-validate rules, files present) is
left to Envoy."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from debar.authz.route import route_config
from debar.common.settings import SERVICE_PORTS

ENVOY_DIR = Path(__file__).resolve().parents[2] / "deploy" / "envoy"
EXT_AUTHZ = "envoy.filters.http.ext_authz"
# Every message type the example's "@type"s name must be in the descriptor pool before it is parsed.
TYPED_CONFIGS = [
    "envoy.config.bootstrap.v3.bootstrap_pb2",
    "envoy.extensions.filters.network.http_connection_manager.v3.http_connection_manager_pb2",
    "envoy.extensions.filters.http.ext_authz.v3.ext_authz_pb2",
    "envoy.extensions.filters.http.router.v3.router_pb2",
    "envoy.extensions.transport_sockets.tls.v3.tls_pb2",
    "envoy.extensions.upstreams.http.v3.http_protocol_options_pb2",
]
for module in TYPED_CONFIGS:
    importlib.import_module(module)

from envoy.config.bootstrap.v3 import bootstrap_pb2  # noqa: E402
from envoy.config.route.v3 import route_components_pb2  # noqa: E402
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2  # noqa: E402
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2  # noqa: E402


def envoy_text() -> str:
    return (ENVOY_DIR / "envoy.yaml").read_text()


def parse_bootstrap(text: str) -> Any:
    return json_format.ParseDict(yaml.safe_load(text), bootstrap_pb2.Bootstrap())


def connection_manager(bootstrap: Any) -> Any:
    [listener] = bootstrap.static_resources.listeners
    [chain] = listener.filter_chains
    [hcm] = chain.filters
    manager = http_connection_manager_pb2.HttpConnectionManager()
    assert hcm.typed_config.Unpack(manager)
    return manager


def ext_authz_of(manager: Any) -> Any:
    [authz] = [f for f in manager.http_filters if f.name == EXT_AUTHZ]
    config = ext_authz_pb2.ExtAuthz()
    assert authz.typed_config.Unpack(config)
    return config


def per_route(route: Any) -> Any:
    settings = ext_authz_pb2.ExtAuthzPerRoute()
    assert route.typed_per_filter_config[EXT_AUTHZ].Unpack(settings)
    return settings


def test_the_envoy_example_is_a_valid_envoy_bootstrap() -> None:
    parse_bootstrap(envoy_text())


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("failure_mode_allow: false", "failure_mode_alow: false"),  # a misspelt field
        ("code: ServiceUnavailable", "code: Unavailable"),  # not an HTTP status name
        ("ext_authz.v3.ExtAuthzPerRoute", "ext_authz.v3.ExtAuthzRoute"),  # an unknown @type
        ("allow_partial_message: false", "allow_partial_message: nope"),
    ],
)
def test_the_schema_check_bites(good: str, bad: str) -> None:
    assert good in envoy_text()
    with pytest.raises(json_format.ParseError):
        parse_bootstrap(envoy_text().replace(good, bad))


def test_the_filter_never_fails_open_and_turns_debars_unavailable_into_503() -> None:
    config = ext_authz_of(connection_manager(parse_bootstrap(envoy_text())))
    assert config.failure_mode_allow is False
    assert config.status_on_error.code == 503
    assert config.grpc_service.envoy_grpc.cluster_name == "debar-authz"
    assert config.transport_api_version == 2  # V3
    assert config.with_request_body.max_request_bytes > 0 and not config.with_request_body.allow_partial_message
    assert 0.2 < config.grpc_service.timeout.ToTimedelta().total_seconds() <= 2


def test_every_checked_route_says_what_debar_checks_and_only_static_files_go_unchecked() -> None:
    manager = connection_manager(parse_bootstrap(envoy_text()))
    checked, unchecked = [], []
    for host in manager.route_config.virtual_hosts:
        for route in host.routes:
            settings = per_route(route)
            if settings.disabled:
                unchecked.append(route.name)
                continue
            config = route_config(dict(settings.check_settings.context_extensions))  # raises if debar would 500
            checked.append((route.name, config.rule_set or ",".join(config.measures)))
    assert unchecked == ["static"]
    assert dict(checked) == {
        "g-train-tickets": "rail-g-train", "ticket-orders": "RAIL_TICKET_BAN", "star-rated-bookings": "hotel-booking",
        "bids": "tender-bid",
    }  # fmt: skip


def test_debar_authz_is_called_over_http2_and_mutual_tls_on_its_port() -> None:
    bootstrap = parse_bootstrap(envoy_text())
    [cluster] = [c for c in bootstrap.static_resources.clusters if c.name == "debar-authz"]
    [endpoint] = cluster.load_assignment.endpoints[0].lb_endpoints
    assert endpoint.endpoint.address.socket_address.port_value == SERVICE_PORTS["authz"]
    assert "envoy.extensions.upstreams.http.v3.HttpProtocolOptions" in cluster.typed_extension_protocol_options
    assert cluster.transport_socket.typed_config.type_url.endswith("UpstreamTlsContext")


# --- Istio ----------------------------------------------------------------------------------------------------------


def istio_objects() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((ENVOY_DIR / "istio.yaml").read_text()) if doc}


def test_the_istio_provider_never_fails_open_and_sends_the_body() -> None:
    objects = istio_objects()
    [provider] = objects["IstioOperator"]["spec"]["meshConfig"]["extensionProviders"]
    grpc = provider["envoyExtAuthzGrpc"]
    assert grpc["failOpen"] is False and grpc["statusOnError"] == "503"
    assert (grpc["service"], grpc["port"]) == ("authz.debar.svc.cluster.local", SERVICE_PORTS["authz"])
    assert grpc["includeRequestBodyInCheck"]["packAsBytes"] is True
    policy = objects["AuthorizationPolicy"]["spec"]
    assert policy["action"] == "CUSTOM" and policy["provider"]["name"] == provider["name"]


def test_the_istio_route_patches_are_envoy_routes_debar_understands_for_routes_that_exist() -> None:
    objects = istio_objects()
    routes = {r["name"] for r in objects["VirtualService"]["spec"]["http"]}
    patched = []
    for patch in objects["EnvoyFilter"]["spec"]["configPatches"]:
        assert patch["applyTo"] == "HTTP_ROUTE" and patch["patch"]["operation"] == "MERGE"
        route = json_format.ParseDict(patch["patch"]["value"], route_components_pb2.Route())
        route_config(dict(per_route(route).check_settings.context_extensions))
        patched.append(patch["match"]["routeConfiguration"]["vhost"]["route"]["name"])
    assert sorted(patched) == sorted(routes)
    assert objects["DestinationRule"]["spec"]["trafficPolicy"]["tls"]["mode"] == "MUTUAL"
