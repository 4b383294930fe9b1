"""Who the request is for, beyond Envoy itself: the platform, passed to the sanction service as delegation
(`x-debar-on-behalf-of`, README "Access").

The caller of debar authz is Envoy (its certificate or token, like every debar caller); the platform behind it is
the downstream peer Envoy authenticated, `attributes.source.principal` (the URI SAN, DNS SAN or subject of the
client certificate of the mTLS connection Envoy terminated; in Istio the workload's SPIFFE id). A principal is not
a debar identity (`spiffe://cluster.local/ns/trip/sa/booking`), so the platforms file
(DEBAR_AUTHZ_PLATFORMS_FILE) names, for each principal, the platform identity it stands for:

    {"proxies": ["envoy"],
     "platforms": {"spiffe://cluster.local/ns/trip/sa/booking": "platform:trip",
                   "CN=platform:12306,O=China Railway": "platform:12306"}}

`proxies` (required with any platform): the debar identities of the proxies (Envoy's certificate CN or token
subject) whose `source.principal` authz believes. A principal is whatever the caller of Check writes, so any other
caller (say a platform's own certificate, calling authz directly) could name another platform's principal and be
asked for as that platform, at its rate and in its name: with a platforms file, authz answers only its proxies
(others: PERMISSION_DENIED). Beyond local mode, authz does not start without proxies (`require_proxies`).

A mapped request is asked as `authz` for that platform (authz holds `delegate`): counted at the platform's rate,
for authz and that platform together (`authz/platform:trip`), and logged with both, so that one platform behind
the same Envoy cannot use up another's. An unmapped principal (or none, or no file) is asked as authz alone, at
authz's own rate, and the answer's log line says `platform=<principal>` with `on_behalf_of=`. Only platform
identities (`platform:NAME`) may be named: authz never acts for a person."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from debar.common.callers import is_identity
from debar.common.settings import SettingsError

MAX_PRINCIPAL_CHARS = 256
PLATFORM_KIND = "platform:"


def platform_of(attributes: Any) -> str:
    """The downstream peer's authenticated principal, or '' when Envoy authenticated none. `attributes`: an
    envoy.service.auth.v3.AttributeContext."""
    principal = str(attributes.source.principal).strip()
    if not principal or len(principal) > MAX_PRINCIPAL_CHARS or not principal.isprintable():
        return ""
    return principal


class PlatformsFile(NamedTuple):
    platforms: Mapping[str, str]  # downstream principal -> platform identity
    proxies: frozenset[str]  # the identities whose principals are believed (see the module)


def parse_proxies(data: object) -> frozenset[str]:
    """The platforms file's `proxies`; ValueError unless a list of identities, given whenever a platform is."""
    proxies = data.get("proxies", []) if isinstance(data, dict) else None
    if not isinstance(proxies, list) or not all(is_identity(p) for p in proxies):
        raise ValueError("proxies: expected a list of identities (Envoy's certificate CN or token subject)")
    if isinstance(data, dict) and data.get("platforms") and not proxies:
        raise ValueError("proxies: required with platforms: the identities of the proxies whose principals to believe")
    return frozenset(proxies)


def parse_platforms(data: object) -> dict[str, str]:
    """The platforms file's JSON; ValueError naming the entry."""
    if (
        not isinstance(data, dict)
        or set(data) - {"platforms", "proxies", "_comment"}
        or not isinstance(data.get("platforms"), dict)
    ):
        raise ValueError('expected {"proxies": ["<identity>"], "platforms": {"<principal>": "platform:<name>"}}')
    found = {}
    for principal, identity in data["platforms"].items():
        if (
            principal != principal.strip()
            or not principal
            or len(principal) > MAX_PRINCIPAL_CHARS
            or (not principal.isprintable())
        ):
            raise ValueError(f"platforms.{principal!r}: a principal is 1 to {MAX_PRINCIPAL_CHARS} printable "
                             "characters, without surrounding spaces")  # fmt: skip
        if not isinstance(identity, str) or not identity.startswith(PLATFORM_KIND) or not is_identity(identity):
            raise ValueError(f"platforms.{principal}: expected a platform identity (platform:<name>), got "
                             f"{identity!r}")  # fmt: skip
        found[principal] = identity
    parse_proxies(data)
    return found


def load_platforms(path: str) -> PlatformsFile:
    """The file at `path` (empty: no file, no delegation); a bad file stops the start (SettingsError)."""
    if not path:
        return PlatformsFile({}, frozenset())
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return PlatformsFile(parse_platforms(data), parse_proxies(data))
    except OSError as error:
        raise SettingsError(f"DEBAR_AUTHZ_PLATFORMS_FILE: cannot read {path}: {error.strerror}") from None
    except ValueError as error:
        raise SettingsError(f"DEBAR_AUTHZ_PLATFORMS_FILE {path}: {error}") from None


def require_proxies(file: PlatformsFile, transport: str) -> None:
    """Beyond local mode (mTLS, tokens) authz answers only the proxies the platforms file names: with none, any caller
    that authenticates (a platform's own certificate) would be asked for as authz, with authz's scopes and at its
    rate, for measures its own scopes do not grant (SettingsError: no start). In local mode the caller is the
    x-debar-caller header's word anyway."""
    if transport != "local" and not file.proxies:
        raise SettingsError(
            "DEBAR_AUTHZ_PLATFORMS_FILE must name proxies (the identities of the Envoys authz answers, e.g. "
            '{"proxies": ["envoy"], "platforms": {}}) outside local mode: without them any authenticated caller '
            "would be answered in authz's name"
        )
