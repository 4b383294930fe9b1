"""The CheckResponses debar gives Envoy. Pure: a verdict or an error in, an envoy.service.auth.v3.CheckResponse out.

Envoy lets a request through only when `status` is OK; any other status sends the client `denied_response` (its
HTTP status, headers and body). So every answer that is not an allow carries both a non-OK status and a denied
response, and none of them can be mistaken for an allow, whatever the filter's failure_mode_allow says:

    allowed          OK                 upstream gets x-debar-decision-ids (every decision, comma-separated;
                                        x-debar-spooled-decision-ids too for decisions taken while the log was
                                        down); a client's own headers of those names are overwritten or removed
    refused          PERMISSION_DENIED  403, x-debar-decision-id (the decision to object to), a JSON body: the
                                        decision ids, refused measures, grounds, how to object, masked subject
    bad subject      INVALID_ARGUMENT   400, a JSON body naming the header or body field
    body too large   INVALID_ARGUMENT   413: Envoy cut the body before the field (max_request_bytes)
    rate limited     RESOURCE_EXHAUSTED 429: this service checked more than the sanction service allows it
    misconfigured    INTERNAL           500, a JSON body naming what to fix (a context_extensions key, the filter,
                                        debar's own scopes)

A sanction service that cannot answer for a fail-closed measure is not answered here: the Check call itself fails
with UNAVAILABLE (servicer.py), so Envoy applies `status_on_error` (503 in deploy/envoy).

Bodies carry masked identifiers only; the grounds name organisations as the sanction service masked them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from envoy.config.core.v3 import base_pb2
from envoy.service.auth.v3 import external_auth_pb2
from envoy.type.v3 import http_status_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import code_pb2, status_pb2

from debar.v1 import common_pb2, verdict_pb2

DECISION_IDS_HEADER = "x-debar-decision-ids"
SPOOLED_DECISION_IDS_HEADER = "x-debar-spooled-decision-ids"
DECISION_ID_HEADER = "x-debar-decision-id"

_OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
_JSON = base_pb2.HeaderValueOption(
    header=base_pb2.HeaderValue(key="content-type", value="application/json"), append_action=_OVERWRITE
)


def allowed(verdict: verdict_pb2.Verdict) -> external_auth_pb2.CheckResponse:
    ok = external_auth_pb2.OkHttpResponse(headers=[_header(DECISION_IDS_HEADER, ",".join(verdict.decision_ids))])
    if verdict.spooled_decision_ids:
        ok.headers.append(_header(SPOOLED_DECISION_IDS_HEADER, ",".join(verdict.spooled_decision_ids)))
    else:  # a client must not be able to claim decisions for the upstream
        ok.headers_to_remove.append(SPOOLED_DECISION_IDS_HEADER)
    return external_auth_pb2.CheckResponse(status=status_pb2.Status(code=code_pb2.OK), ok_response=ok)


def refused(verdict: verdict_pb2.Verdict) -> external_auth_pb2.CheckResponse:
    first = verdict.refusals[0]
    body = {
        "allowed": False,
        "decision_id": first.decision_id,
        "subject": first.subject,
        "refused_measures": [r.measure for r in verdict.refusals],
        "refusals": [_refusal(r) for r in verdict.refusals],
        "how_to_object": _how_to_object(first),
        "decision_ids": list(verdict.decision_ids),
    }
    return _denied(
        code_pb2.PERMISSION_DENIED, http_status_pb2.Forbidden, "refused by a court-ordered restriction", body,
        extra=[_header(DECISION_ID_HEADER, first.decision_id)],
    )  # fmt: skip


def bad_subject(where: str, field: str, reason: str) -> external_auth_pb2.CheckResponse:
    message = f"{where} {field}: {reason}"
    body = {"error": "INVALID_ARGUMENT", "in": where, "field": field, "message": message}
    return _denied(code_pb2.INVALID_ARGUMENT, http_status_pb2.BadRequest, message, body)


def body_too_large(reason: str) -> external_auth_pb2.CheckResponse:
    body = {"error": "PAYLOAD_TOO_LARGE", "message": reason}
    return _denied(code_pb2.INVALID_ARGUMENT, http_status_pb2.PayloadTooLarge, reason, body)


def rate_limited() -> external_auth_pb2.CheckResponse:
    message = "too many restriction checks right now; try again shortly"
    body = {"error": "RESOURCE_EXHAUSTED", "message": message}
    return _denied(
        code_pb2.RESOURCE_EXHAUSTED, http_status_pb2.TooManyRequests, message, body, extra=[_header("retry-after", "1")]
    )


def misconfigured(what: str, reason: str) -> external_auth_pb2.CheckResponse:
    """`what`: the thing to fix (a context_extensions key, `ext_authz filter`, `debar authz`)."""
    message = f"debar is misconfigured for this route: {what}: {reason}"
    body = {"error": "MISCONFIGURED", "what": what, "message": message}
    return _denied(code_pb2.INTERNAL, http_status_pb2.InternalServerError, message, body)


def _denied(
    code: int, http: int, message: str, body: dict[str, Any], extra: Sequence[base_pb2.HeaderValueOption] = ()
) -> external_auth_pb2.CheckResponse:
    return external_auth_pb2.CheckResponse(
        status=status_pb2.Status(code=code, message=message),
        denied_response=external_auth_pb2.DeniedHttpResponse(
            status=http_status_pb2.HttpStatus(code=http), headers=[_JSON, *extra], body=orjson.dumps(body).decode()
        ),
    )


def _header(key: str, value: str) -> base_pb2.HeaderValueOption:
    return base_pb2.HeaderValueOption(header=base_pb2.HeaderValue(key=key, value=value), append_action=_OVERWRITE)


def _refusal(refusal: verdict_pb2.Refusal) -> dict[str, Any]:
    return {
        "measure": refusal.measure,
        "decision_id": refusal.decision_id,
        "grounds": [_ground(g) for g in refusal.grounds],
        "objection": {
            "summary": refusal.objection.summary,
            "review_days": refusal.objection.review_days,
            "correction_working_days": refusal.objection.correction_working_days,
            "reconsideration_request_days": refusal.objection.reconsideration_request_days,
        },
    }


def _ground(ground: common_pb2.Ground) -> dict[str, Any]:
    found: dict[str, Any] = {
        "source": ground.source,
        "legal_basis": ground.legal_basis,
        "authority": ground.authority,
        "case_number": ground.case_number,
        "effective_from": _date(ground.effective_from) if ground.HasField("effective_from") else None,
        "effective_until": _date(ground.effective_until) if ground.HasField("effective_until") else None,
    }
    if ground.role not in (common_pb2.ROLE_UNSPECIFIED, common_pb2.ROLE_DEBTOR):
        found["role"] = common_pb2.Role.Name(ground.role).removeprefix("ROLE_")
        found["via"] = ground.via  # the organisation, masked
    until = found["effective_until"] or "lifted"
    found["summary"] = f"{ground.authority}, {ground.case_number} ({ground.legal_basis}), until {until}"
    return found


def _how_to_object(refusal: verdict_pb2.Refusal) -> str:
    return f"{refusal.objection.summary} Decision id: {refusal.decision_id}.".strip()


def _date(moment: Timestamp) -> str:
    return moment.ToJsonString()  # RFC 3339, UTC
