"""Who the request is for, beyond Envoy itself: the hook for issue 11's delegation (`x-debar-on-behalf-of`).

The caller of debar authz is Envoy (its certificate or token, like every debar caller); the platform behind it
is the downstream peer Envoy authenticated, `attributes.source.principal` (the URI, DNS SAN or subject of the
client certificate of the mTLS connection Envoy terminated; in Istio the workload's SPIFFE id). Today it is only
logged with each answer (`platform=`). Once the sanction service honours delegation (scope `delegate`, the name
mapped to a platform identity such as `platform:12306`), `AuthorizationServicer(delegate=True)` passes it on to
the sanction client as x-debar-on-behalf-of; nothing else changes here."""

from __future__ import annotations

from typing import Any

MAX_PRINCIPAL_CHARS = 256


def platform_of(attributes: Any) -> str:
    """The downstream peer's authenticated principal, or '' when Envoy authenticated none. `attributes`: an
    envoy.service.auth.v3.AttributeContext."""
    principal = str(attributes.source.principal).strip()
    if not principal or len(principal) > MAX_PRINCIPAL_CHARS or not principal.isprintable():
        return ""
    return principal
