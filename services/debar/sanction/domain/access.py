"""Who may ask what: callers' scopes and check rates (from the scopes file), and the rules that judge a call.
Pure: no gRPC, no Redis, no clock of its own.

Scopes:
    check:<domain>      Check/BatchCheck of the measures the catalogue says <domain> checks (`checked_by`)
    check:*             every measure (operators, benchmarks)
    registry:write      RegistryService.Impose, Lift, ConfirmLift, GrantExemption, ConfirmExemption
    registry:read       RegistryService.GetRestriction, ListRestrictions
    decisions:read      DecisionService.GetDecision, ListDecisions (the person's right to know, via a portal)
    objections:file     DecisionService.FileObjection, RequestReconsideration
    objections:review   DecisionService.ReviewObjection, ResolveObjection, ConfirmResolution
Reading objections (GetObjection, ListObjections) needs objections:file or objections:review. ListMeasures needs
any scope. Health and reflection are open to every caller that got through the transport. Any other method is
refused: a new method is closed until it is given a scope here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from debar.common.callers import CALLER_NAME, PUBLIC_SERVICES

CHECK_ALL = "check:*"
FIXED_SCOPES = frozenset(
    {"registry:write", "registry:read", "decisions:read", "objections:file", "objections:review", CHECK_ALL}
)
CHECK_METHODS = frozenset({"/debar.v1.SanctionService/Check", "/debar.v1.SanctionService/BatchCheck"})
ANY_SCOPE = "<any>"
_METHOD_SCOPES: dict[str, frozenset[str]] = {
    "/debar.v1.SanctionService/ListMeasures": frozenset({ANY_SCOPE}),
    **{
        f"/debar.v1.RegistryService/{m}": frozenset({"registry:write"})
        for m in ("Impose", "Lift", "ConfirmLift", "GrantExemption", "ConfirmExemption")
    },
    **{f"/debar.v1.RegistryService/{m}": frozenset({"registry:read"}) for m in ("GetRestriction", "ListRestrictions")},
    **{f"/debar.v1.DecisionService/{m}": frozenset({"decisions:read"}) for m in ("GetDecision", "ListDecisions")},
    **{
        f"/debar.v1.DecisionService/{m}": frozenset({"objections:file"})
        for m in ("FileObjection", "RequestReconsideration")
    },
    **{
        f"/debar.v1.DecisionService/{m}": frozenset({"objections:review"})
        for m in ("ReviewObjection", "ResolveObjection", "ConfirmResolution")
    },
    **{
        f"/debar.v1.DecisionService/{m}": frozenset({"objections:file", "objections:review"})
        for m in ("GetObjection", "ListObjections")
    },
}
MAX_WINDOW_S = 3600


class ScopesError(ValueError):
    """The scopes file is wrong; the message names the caller and the field."""


@dataclass(frozen=True)
class RateLimit:
    """At most `checks` checked items (a BatchCheck costs its items) per fixed window of `window_s` seconds."""

    checks: int
    window_s: int = 1

    def window(self, now: float) -> int:
        return int(now // self.window_s)

    def exceeded(self, count: int) -> bool:
        """`count`: the items counted in the window, this call's included."""
        return count > self.checks


@dataclass(frozen=True)
class Grant:
    """What one caller may do."""

    caller: str
    scopes: frozenset[str] = frozenset()
    rate: RateLimit | None = None  # None: not limited


@dataclass(frozen=True)
class AccessPolicy:
    grants: Mapping[str, Grant]
    # measure code -> the domains that check it (the catalogue's `checked_by`)
    checked_by: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def grant(self, caller: str) -> Grant:
        """An unknown caller has no scopes: every method but health and reflection is refused."""
        return self.grants.get(caller) or Grant(caller)

    def may_call(self, grant: Grant, method: str) -> bool:
        if method.startswith(PUBLIC_SERVICES):
            return True
        if method in CHECK_METHODS:
            return any(scope.startswith("check:") for scope in grant.scopes)
        needed = _METHOD_SCOPES.get(method)
        if needed is None:
            return False
        if ANY_SCOPE in needed:
            return bool(grant.scopes)
        return bool(grant.scopes & needed)

    def may_check(self, grant: Grant, measure: str) -> bool:
        """A measure the catalogue does not know passes here, so that the check names it as INVALID_ARGUMENT."""
        if CHECK_ALL in grant.scopes:
            return True
        domains = self.checked_by.get(measure)
        if domains is None:
            return True
        return any(f"check:{domain}" in grant.scopes for domain in domains)


def parse_policy(data: object, checked_by: Mapping[str, tuple[str, ...]]) -> AccessPolicy:
    """From the scopes file's JSON: {"callers": {"<name>": {"scopes": [...], "rate": {"checks": N, "window_s": S}}}}.
    A scope naming a domain that checks no measure is refused: it is a typo, or the catalogue lost the domain."""
    domains = {domain for ds in checked_by.values() for domain in ds}
    known = FIXED_SCOPES | {f"check:{domain}" for domain in domains}
    if not isinstance(data, dict) or not isinstance(data.get("callers"), dict):
        raise ScopesError('expected {"callers": {"<caller>": {"scopes": [...]}}}')
    grants = {}
    for caller, entry in data["callers"].items():
        if not CALLER_NAME.match(caller):
            raise ScopesError(f"callers.{caller}: a caller name must match {CALLER_NAME.pattern}")
        if not isinstance(entry, dict) or set(entry) - {"scopes", "rate"}:
            raise ScopesError(f"callers.{caller}: expected an object with 'scopes' and optionally 'rate'")
        scopes = entry.get("scopes", [])
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise ScopesError(f"callers.{caller}.scopes: expected a list of strings")
        unknown = sorted(set(scopes) - known)
        if unknown:
            raise ScopesError(
                f"callers.{caller}.scopes: unknown {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        grants[caller] = Grant(caller, frozenset(scopes), _rate(caller, entry.get("rate")))
    return AccessPolicy(grants, dict(checked_by))


def _rate(caller: str, rate: object) -> RateLimit | None:
    if rate is None:
        return None
    where = f"callers.{caller}.rate"
    if not isinstance(rate, dict) or set(rate) - {"checks", "window_s"} or "checks" not in rate:
        raise ScopesError(f'{where}: expected {{"checks": N, "window_s": S}}')
    checks, window_s = rate["checks"], rate.get("window_s", 1)
    if not isinstance(checks, int) or isinstance(checks, bool) or checks < 1:
        raise ScopesError(f"{where}.checks: expected a positive integer")
    if not isinstance(window_s, int) or isinstance(window_s, bool) or not 1 <= window_s <= MAX_WINDOW_S:
        raise ScopesError(f"{where}.window_s: expected an integer in [1, {MAX_WINDOW_S}]")
    return RateLimit(checks, window_s)
