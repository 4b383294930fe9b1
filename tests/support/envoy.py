"""CheckRequests as Envoy's ext_authz filter sends them (envoy.service.auth.v3, from xds-protos): the peers, the
HTTP request with its headers in the `headers` map (the default) or in `header_map` as raw bytes (the filter's
`encode_raw_headers`), its body as text in `body` (`with_request_body`) or as bytes in `raw_body`
(`pack_as_bytes`), and the route's `context_extensions`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from envoy.config.core.v3 import address_pb2, base_pb2
from envoy.service.auth.v3 import attribute_context_pb2, external_auth_pb2
from google.protobuf.timestamp_pb2 import Timestamp

Http = attribute_context_pb2.AttributeContext.HttpRequest
PLATFORM = "spiffe://cluster.local/ns/shop/sa/checkout"


def check_request(
    extensions: Mapping[str, str],
    headers: Mapping[str, str] = {},  # read only
    *,
    body: Any = None,
    raw_headers: bool = False,
    raw_body: bool = False,
    method: str = "POST",
    path: str = "/api/tickets",
    request_id: str = "0f6b1a2c-7d3e-4c55-9a51-3c1f1f1b7a01",
    principal: str = PLATFORM,
) -> external_auth_pb2.CheckRequest:
    """`body`: a dict or list (sent as JSON), str or bytes (sent as is), or None (no body)."""
    if body is None:
        payload = b""
    elif isinstance(body, bytes):
        payload = body
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = json.dumps(body).encode()
    every = {
        ":authority": "tickets.example.com", ":method": method, ":path": path, ":scheme": "https",
        "user-agent": "curl/8.5.0", "x-forwarded-proto": "https", "x-request-id": request_id,
        **({"content-type": "application/json", "content-length": str(len(payload))} if payload else {}),
        **headers,
    }  # fmt: skip
    http = Http(
        id=request_id, method=method, path=path, host="tickets.example.com", scheme="https", protocol="HTTP/2",
        size=len(payload) if payload else -1,
    )  # fmt: skip
    if raw_headers:
        http.header_map.headers.extend(base_pb2.HeaderValue(key=k, raw_value=v.encode()) for k, v in every.items())
    else:
        http.headers.update(every)
    if payload:
        if raw_body:
            http.raw_body = payload
        else:
            http.body = payload.decode()
    attributes = attribute_context_pb2.AttributeContext(
        source=attribute_context_pb2.AttributeContext.Peer(
            address=_address("10.0.3.17", 51234), principal=principal
        ),
        destination=attribute_context_pb2.AttributeContext.Peer(
            address=_address("10.0.1.5", 8443), principal="spiffe://cluster.local/ns/shop/sa/tickets-gateway"
        ),
        request=attribute_context_pb2.AttributeContext.Request(time=Timestamp(seconds=1_900_000_000), http=http),
    )  # fmt: skip
    attributes.context_extensions.update(extensions)
    return external_auth_pb2.CheckRequest(attributes=attributes)


def _address(ip: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=ip, port_value=port))


def upstream_headers(response: external_auth_pb2.CheckResponse) -> dict[str, str]:
    return {option.header.key: option.header.value for option in response.ok_response.headers}


def denied_headers(response: external_auth_pb2.CheckResponse) -> dict[str, str]:
    return {option.header.key: option.header.value for option in response.denied_response.headers}


def denied_body(response: external_auth_pb2.CheckResponse) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(response.denied_response.body)
    return body
