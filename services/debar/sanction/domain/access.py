"""Who may ask what: identities' scopes and check rates (from the scopes file), and the rules that judge a call.
Pure: no gRPC, no Redis, no clock of its own.

Scopes:
    check:<domain>      Check/BatchCheck of the measures the catalogue says <domain> checks (`checked_by`)
    check:*             every measure (operators, benchmarks)
    registry:write      RegistryService.Impose, Lift, ConfirmLift, GrantExemption, ConfirmExemption
    registry:read       RegistryService.GetRestriction, ListRestrictions
    decisions:read      DecisionService.GetDecision, ListDecisions (the person's right to know, via a portal),
                        GetDecisionProof (a decision's receipt)
    objections:file     DecisionService.FileObjection, RequestReconsideration
    objections:review   DecisionService.ReviewObjection, ResolveObjection, ConfirmResolution
    watch               WatchService.Subscribe, SubscribeBatch, Unsubscribe, Changes: its own subscriptions only
    delegate            may act on behalf of another identity (x-debar-on-behalf-of): a domain service for the
                        platform that asked it, the console for the reviewer signed in to it
GetObjection needs objections:file or objections:review, ListObjections objections:review. ListMeasures needs
any scope. The log's GetCheckpoint and GetConsistencyProof are public to every authenticated caller.

Ownership: a caller without objections:review (a portal) sees one decision or objection only by giving its
subject's identifier (GetDecision, GetObjection, FileObjection, RequestReconsideration: `subject`), and a subject
that does not match answers as an unknown id does (NOT_FOUND). Reviewers see every subject's.

Health and reflection are open to every caller that got through the transport. Any other method is refused: a new
method is closed until it is given a scope here.

Rates: a caller's entry may give a rate (`checks` items per `window_s`); checked items count against it, and so
does every read (GetRestriction, ListRestrictions, GetDecision, ListDecisions, GetObjection, ListObjections: one
each) and every filing (FileObjection, RequestReconsideration: their answers tell whose decision it is).

The scopes file names identities exactly (`railway`, `reviewer:li`) or by group (`reviewer:*`: every identity of
that kind); an exact entry wins over its group. `local`, the identity of local mode, is refused in the file of a
server not in local mode; in local mode it holds every scope unless the file says otherwise.

A delegated call (a `delegate` acting for a principal) may do only what both may: the principal's scopes narrowed
to the delegate's. Checks are the exception, being the delegate's own work (the railway service checks railway
measures for whichever platform asked it): the delegate's check scopes hold, so platforms need none of their own
and cannot call the sanction service directly. The rate is the principal's entry's, else the delegate's, counted
for that delegate and principal together (`railway/platform:12306`): one platform cannot use up another's. A
principal must be named in the file (exactly or by group) and may not hold `delegate` itself (api/access.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from debar.common.callers import CALLER_NAME, LOCAL, PUBLIC_SERVICES, group_of, is_name_or_group

CHECK_ALL = "check:*"
DELEGATE = "delegate"
REVIEW = "objections:review"
FIXED_SCOPES = frozenset(
    {"registry:write", "registry:read", "decisions:read", "objections:file", "objections:review", "watch"}
    | {CHECK_ALL, DELEGATE}
)
CHECK_METHODS = frozenset({"/debar.v1.SanctionService/Check", "/debar.v1.SanctionService/BatchCheck"})
ANY_SCOPE = "<any>"
AUTHENTICATED = "<authenticated>"  # every caller that got through authentication, with or without scopes
_METHOD_SCOPES: dict[str, frozenset[str]] = {
    "/debar.v1.SanctionService/ListMeasures": frozenset({ANY_SCOPE}),
    **{
        f"/debar.v1.RegistryService/{m}": frozenset({"registry:write"})
        for m in ("Impose", "Lift", "ConfirmLift", "GrantExemption", "ConfirmExemption")
    },
    **{f"/debar.v1.RegistryService/{m}": frozenset({"registry:read"}) for m in ("GetRestriction", "ListRestrictions")},
    **{
        f"/debar.v1.DecisionService/{m}": frozenset({"decisions:read"})
        for m in ("GetDecision", "ListDecisions", "GetDecisionProof")
    },
    **{f"/debar.v1.DecisionService/{m}": frozenset({AUTHENTICATED}) for m in ("GetCheckpoint", "GetConsistencyProof")},
    **{
        f"/debar.v1.DecisionService/{m}": frozenset({"objections:file"})
        for m in ("FileObjection", "RequestReconsideration")
    },
    **{
        f"/debar.v1.DecisionService/{m}": frozenset({"objections:review"})
        for m in ("ReviewObjection", "ResolveObjection", "ConfirmResolution")
    },
    "/debar.v1.DecisionService/GetObjection": frozenset({"objections:file", "objections:review"}),
    "/debar.v1.DecisionService/ListObjections": frozenset({REVIEW}),
    **{
        f"/debar.v1.WatchService/{m}": frozenset({"watch"})
        for m in ("Subscribe", "SubscribeBatch", "Unsubscribe", "Changes")
    },
}
MAX_WINDOW_S = 3600


class ScopesError(ValueError):
    """The scopes file is wrong; the message names the identity and the field."""


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


def _is_check(scope: str) -> bool:
    return scope.startswith("check:")


@dataclass(frozen=True)
class Grant:
    """What one call may do: the authenticated caller's, or, delegated, what the caller may do for `on_behalf_of`."""

    caller: str  # the authenticated identity (certificate common name or token subject)
    scopes: frozenset[str] = frozenset()
    rate: RateLimit | None = None  # None: not limited
    on_behalf_of: str = ""  # the principal of a delegated call, else empty

    @property
    def actor(self) -> str:
        """Who acts: the principal of a delegated call (the reviewer at the console), else the caller."""
        return self.on_behalf_of or self.caller

    @property
    def rate_key(self) -> str:
        """Whose counter a check or read is counted on: the caller's; delegated, the caller's for this platform (a
        platform's checks through one domain service leave its checks through another answered), but a person's
        alone (a reviewer through the console is the same reviewer as with their own certificate: one rate, one
        figure in the enumeration alarm)."""
        if not self.on_behalf_of:
            return self.caller
        if self.on_behalf_of.partition(":")[0] != "platform" and ":" in self.on_behalf_of:
            return self.on_behalf_of
        return f"{self.caller}/{self.on_behalf_of}"


@dataclass(frozen=True)
class AccessPolicy:
    grants: Mapping[str, Grant]  # by exact identity or group (kind:*)
    # measure code -> the domains that check it (the catalogue's `checked_by`)
    checked_by: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def grant(self, caller: str) -> Grant:
        """The exact entry, else the group's (under the caller's own name); an unknown caller has no scopes:
        every method but health and reflection is refused."""
        found = self.grants.get(caller)
        if found is None and (group := group_of(caller)) is not None:
            found = self.grants.get(group)
        return replace(found, caller=caller) if found is not None else Grant(caller)

    def knows(self, identity: str) -> bool:
        """Whether the file names `identity`, exactly or by its group."""
        group = group_of(identity)
        return identity in self.grants or (group is not None and group in self.grants)

    @staticmethod
    def sees_every_subject(grant: Grant) -> bool:
        """A reviewer may read any decision or objection by its id; anyone else must name its subject."""
        return REVIEW in grant.scopes

    @staticmethod
    def may_delegate(grant: Grant) -> bool:
        return DELEGATE in grant.scopes

    def acting_for(self, delegate: Grant, principal: str) -> Grant:
        """The grant of `delegate` acting for `principal` (see the module); the caller checks may_delegate first."""
        own = self.grant(principal)
        checks = {s for s in delegate.scopes if _is_check(s)}
        others = {s for s in own.scopes & delegate.scopes if not _is_check(s) and s != DELEGATE}
        rate = own.rate if own.rate is not None else delegate.rate
        return Grant(delegate.caller, frozenset(checks | others), rate, on_behalf_of=principal)

    def may_call(self, grant: Grant, method: str) -> bool:
        if method.startswith(PUBLIC_SERVICES):
            return True
        if method in CHECK_METHODS:
            return any(_is_check(scope) for scope in grant.scopes)
        needed = _METHOD_SCOPES.get(method)
        if needed is None:
            return False
        if AUTHENTICATED in needed:
            return True
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


def parse_policy(data: object, checked_by: Mapping[str, tuple[str, ...]], *, local_mode: bool) -> AccessPolicy:
    """From the scopes file's JSON: {"callers": {"<identity or kind:*>": {"scopes": [...], "rate": {"checks": N,
    "window_s": S}}}}. A scope naming a domain that checks no measure is refused: it is a typo, or the catalogue lost
    the domain. Outside local mode an entry for `local` is refused (a certificate named local would be a superuser)."""
    domains = {domain for ds in checked_by.values() for domain in ds}
    known = FIXED_SCOPES | {f"check:{domain}" for domain in domains}
    if not isinstance(data, dict) or not isinstance(data.get("callers"), dict):
        raise ScopesError('expected {"callers": {"<identity>": {"scopes": [...]}}}')
    grants = {}
    for caller, entry in data["callers"].items():
        if not is_name_or_group(caller):
            raise ScopesError(f"callers.{caller}: expected an identity ({CALLER_NAME.pattern}) or a group (kind:*)")
        if caller == LOCAL and not local_mode:
            raise ScopesError(
                f"callers.{LOCAL}: '{LOCAL}' is the identity of local mode (plaintext on loopback); a server in "
                "mTLS or token mode refuses a scopes file that grants it"
            )
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
    if local_mode and LOCAL not in grants:
        grants[LOCAL] = Grant(LOCAL, frozenset(known))
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
