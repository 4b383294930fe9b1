"""The subject of a request, found where the route says (route.SubjectSource) in the HTTP request as Envoy sends
it (`attributes.request.http`): headers in the `headers` map, or in `header_map` (a list of key and value or
raw_value, which Envoy sends with `encode_raw_headers`); the body in `body` (text) or `raw_body` (bytes, with
`pack_as_bytes`). Pure: an AttributeContext.HttpRequest in, a SubjectId or BadSubject out.

A body whose objects name a key twice is refused (which value counts differs between JSON parsers: debar must
check what the platform reads). Errors name the request's own part and field (`header x-passenger-id`,
`body passenger.id`) and never repeat the value: it may be someone's identity number."""

from __future__ import annotations

import json
from typing import Any

from debar.authz.route import SubjectSource
from debar.common.identifiers import InvalidIdentifier, SubjectId, validate_identifier

PARTIAL_BODY_HEADER = "x-envoy-auth-partial-body"  # Envoy's mark of a body cut at max_request_bytes


class BadSubject(Exception):
    """The request does not carry a usable identifier where the route says (HTTP 400)."""

    def __init__(self, where: str, field: str, reason: str) -> None:
        super().__init__(f"{where} {field}: {reason}")
        self.where = where  # "header" or "body"
        self.field = field
        self.reason = reason


class BodyNotSent(Exception):
    """The route reads the body, but Envoy sent none for a request that has one: the filter is not configured
    `with_request_body` (a misconfiguration, not the caller's fault)."""


class BodyTooLarge(Exception):
    """Envoy cut the body at the filter's max_request_bytes (allow_partial_message): the field may be past the cut."""


def find_subject(http: Any, source: SubjectSource) -> SubjectId:
    """`http`: an envoy.service.auth.v3.AttributeContext.HttpRequest."""
    raw = header_value(http, source.header) if source.header else body_field(http, source.json_path)
    try:
        return validate_identifier(source.kind, raw.strip())
    except InvalidIdentifier as error:
        raise BadSubject(source.where, source.field, f"{source.kind.value} {error.reason}") from None


def header_value(http: Any, name: str) -> str:
    """The one value of header `name` (lower case), from the `headers` map or from `header_map`."""
    if http.headers and not http.header_map.headers:  # Envoy's usual form, its keys lower case: one look-up
        found = http.headers.get(name)
        if found is not None:
            return str(found)
    values = [value for key, value in http.headers.items() if key.lower() == name]
    for entry in http.header_map.headers:
        if entry.key.lower() == name:
            values.append(entry.value or _text(entry.raw_value, "header", name))
    if not values:
        raise BadSubject("header", name, "is missing")
    if len(set(values)) > 1:
        raise BadSubject("header", name, "is given more than once")
    return str(values[0])


def body_field(http: Any, path: tuple[str, ...]) -> str:
    field = ".".join(path)
    body = http.raw_body or http.body.encode()
    if not body:
        if http.size > 0:
            raise BodyNotSent("the request has a body, but Envoy sent none: set with_request_body on the filter")
        raise BadSubject("body", field, "is missing: the request has no body")
    if _header(http, PARTIAL_BODY_HEADER) == "true":
        raise BodyTooLarge("the request body is larger than the filter's max_request_bytes")
    try:
        value: Any = json.loads(body, object_pairs_hook=_unique_keys)
    except _DuplicateKey as error:
        raise BadSubject("body", field, f"the body names the key {error.key[:64]!r} twice in one object") from None
    except (ValueError, RecursionError):  # JSONDecodeError, and bad UTF-8 in raw bytes
        raise BadSubject("body", field, "the body is not JSON") from None
    for depth, segment in enumerate(path):
        here = ".".join(path[: depth + 1])
        if isinstance(value, dict) and segment in value:
            value = value[segment]
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            raise BadSubject("body", field, f"is missing ({here} not found)")
    if not isinstance(value, str):
        raise BadSubject("body", field, "must be a string")
    return value


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names a key twice is refused: parsers differ on which value wins, so debar could check
    one passenger while the platform books another."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def _header(http: Any, name: str) -> str:
    for key, value in http.headers.items():
        if key.lower() == name:
            return str(value)
    for entry in http.header_map.headers:
        if entry.key.lower() == name:
            return str(entry.value) or entry.raw_value.decode("latin-1")
    return ""


def _text(raw: bytes, where: str, field: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadSubject(where, field, "is not UTF-8 text") from None
