"""Who may ask what, as pure rules: identities and groups, scopes per method and per measure, the scopes file,
delegation, rates, signed tokens and the trust file, the transport settings, and the check gate and caller
identification with fakes in place of gRPC and Redis."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from debar.common.callers import covers, group_of, is_identity
from debar.common.errors import InvalidField, RateLimited, Unavailable
from debar.common.settings import Settings, SettingsError
from debar.rpc import tokens
from debar.rpc.callers import Identify, Unauthenticated
from debar.rpc.trust import TrustError, load_trust, parse_trust, trust_entry
from debar.sanction.api import access
from debar.sanction.api.access import AccessStats, CheckGate, acting_identity, load_policy
from debar.sanction.app.ports import RateCounterUnavailable
from debar.sanction.domain.access import AccessPolicy, Grant, RateLimit, ScopesError, parse_policy
from debar.sanction.domain.catalogue import load_default_catalogue

NOW = 1_800_000_000
CATALOGUE = load_default_catalogue()
CHECKED_BY = {code: m.checked_by for code, m in CATALOGUE.measures.items()}


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return load_policy("", CATALOGUE, local_mode=True)  # the packaged scopes file, as `debar up` reads it


# --- scopes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "measure", "allowed"),
    [
        ("railway", "RAIL_G_TRAIN", True),
        ("railway", "RAIL_TICKET_BAN", True),
        ("railway", "HOTEL_STAR_RATED", False),
        ("hotel", "HOTEL_STAR_RATED", True),
        ("hotel", "OFFICE_LEASE_HIGH_GRADE", True),
        ("realestate", "OFFICE_LEASE_HIGH_GRADE", True),  # checked_by "hotel,realestate"
        ("realestate", "HOTEL_STAR_RATED", False),
        ("procurement", "PROCUREMENT_BID", True),
        ("procurement", "RAIL_G_TRAIN", False),
        ("railway", "AIR_TRAVEL", False),  # checked by no service yet: only check:*
        ("bench", "AIR_TRAVEL", True),
        ("bench", "PROCUREMENT_BID", True),
        ("portal", "RAIL_G_TRAIN", False),
        ("stranger", "RAIL_G_TRAIN", False),
        ("railway", "NOT_A_MEASURE", True),  # left to the check, which names it INVALID_ARGUMENT
    ],
)
def test_a_caller_checks_only_the_measures_of_its_domain(policy, caller, measure, allowed):
    assert policy.may_check(policy.grant(caller), measure) is allowed


@pytest.mark.parametrize(
    ("caller", "method", "allowed"),
    [
        ("railway", "/debar.v1.SanctionService/Check", True),
        ("railway", "/debar.v1.SanctionService/BatchCheck", True),
        ("railway", "/debar.v1.SanctionService/ListMeasures", True),
        ("railway", "/debar.v1.RegistryService/Impose", False),
        ("railway", "/debar.v1.DecisionService/GetDecision", False),
        ("clerk:wang", "/debar.v1.RegistryService/Impose", True),
        ("clerk:wang", "/debar.v1.RegistryService/GetRestriction", True),
        ("clerk:wang", "/debar.v1.SanctionService/Check", False),
        ("reviewer:li", "/debar.v1.DecisionService/ReviewObjection", True),
        ("reviewer:li", "/debar.v1.DecisionService/ListObjections", True),
        ("reviewer:li", "/debar.v1.RegistryService/Lift", False),
        ("reviewer", "/debar.v1.DecisionService/ReviewObjection", False),  # the shared role is gone
        ("registry", "/debar.v1.RegistryService/Impose", False),
        ("platform:12306", "/debar.v1.SanctionService/Check", False),  # a platform asks through its domain service
        # A platform's own scope is `watch`: its subscriptions, and the catalogue's codes to subscribe with.
        ("platform:12306", "/debar.v1.SanctionService/ListMeasures", True),
        ("platform:12306", "/debar.v1.WatchService/Subscribe", True),
        ("platform:12306", "/debar.v1.WatchService/Changes", True),
        ("railway", "/debar.v1.WatchService/Subscribe", False),
        ("clerk:wang", "/debar.v1.WatchService/Changes", False),
        ("reviewer:li", "/debar.v1.DecisionService/ConfirmResolution", True),
        ("reviewer:li", "/debar.v1.RegistryService/ConfirmLift", False),
        ("reviewer:li", "/debar.v1.RegistryService/ConfirmExemption", False),
        ("clerk:wang", "/debar.v1.RegistryService/ConfirmLift", True),
        ("clerk:wang", "/debar.v1.RegistryService/ConfirmExemption", True),
        ("clerk:wang", "/debar.v1.DecisionService/ConfirmResolution", False),
        ("portal", "/debar.v1.DecisionService/ConfirmResolution", False),
        ("portal", "/debar.v1.DecisionService/FileObjection", True),
        ("portal", "/debar.v1.DecisionService/GetObjection", True),
        ("portal", "/debar.v1.DecisionService/ListObjections", False),  # only reviewers list everyone's
        ("console", "/debar.v1.DecisionService/ListObjections", True),
        ("portal", "/debar.v1.DecisionService/ResolveObjection", False),
        ("portal", "/debar.v1.DecisionService/ListDecisions", True),
        ("stranger", "/debar.v1.SanctionService/ListMeasures", False),
        ("stranger", "/grpc.health.v1.Health/Check", True),
        ("local", "/debar.v1.RegistryService/Impose", True),
        ("local", "/debar.v1.SanctionService/SomethingNew", False),  # a new method is closed until given a scope
    ],
)
def test_methods_need_their_scopes(policy, caller, method, allowed):
    assert policy.may_call(policy.grant(caller), method) is allowed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "callers"),
        ({"callers": {"railway": {"scopes": ["check:railways"]}}}, "callers.railway.scopes: unknown check:railways"),
        ({"callers": {"railway": {"scopes": "check:railway"}}}, "callers.railway.scopes"),
        ({"callers": {"Rail Way": {"scopes": []}}}, "callers.Rail Way"),
        ({"callers": {"*": {"scopes": []}}}, "callers.*: expected an identity"),
        ({"callers": {"reviewer:li*": {"scopes": []}}}, "callers.reviewer:li*"),
        ({"callers": {"local": {"scopes": []}}}, "callers.local: 'local' is the identity of local mode"),
        ({"callers": {"railway": {"scopes": [], "limit": 3}}}, "callers.railway"),
        ({"callers": {"railway": {"scopes": [], "rate": {"checks": 0}}}}, "callers.railway.rate.checks"),
        ({"callers": {"railway": {"scopes": [], "rate": {"checks": True}}}}, "callers.railway.rate.checks"),
        ({"callers": {"railway": {"scopes": [], "rate": {"checks": 1, "window_s": 0}}}}, "rate.window_s"),
        ({"callers": {"railway": {"scopes": [], "rate": 5}}}, "callers.railway.rate"),
    ],
)
def test_a_bad_scopes_file_is_refused_naming_the_field(data, message):
    with pytest.raises(ScopesError, match=message.replace(".", r"\.").replace("*", r"\*")):
        parse_policy(data, CHECKED_BY, local_mode=False)


def test_a_bad_scopes_file_stops_the_start(tmp_path):
    path = tmp_path / "scopes.json"
    path.write_text('{"callers": {"x": {"scopes": ["everything"]}}}')
    with pytest.raises(SettingsError, match=r"DEBAR_SCOPES_FILE .*callers\.x\.scopes: unknown everything"):
        load_policy(str(path), CATALOGUE, local_mode=True)
    with pytest.raises(SettingsError, match="cannot read"):
        load_policy(str(tmp_path / "missing.json"), CATALOGUE, local_mode=True)


def test_rates_count_in_fixed_windows():
    limit = RateLimit(checks=3, window_s=10)
    assert limit.window(NOW) == limit.window(NOW + 9.9) != limit.window(NOW + 10)
    assert not limit.exceeded(3)
    assert limit.exceeded(4)
    data = {"callers": {"x": {"scopes": ["check:*"], "rate": {"checks": 7}}}}
    grant = parse_policy(data, CHECKED_BY, local_mode=False).grant("x")
    assert grant.rate == RateLimit(7, 1)


# --- identities, groups, local mode, delegation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("railway", True),
        ("reviewer:li", True),
        ("platform:12306", True),
        ("platform:ota.example", True),
        ("Reviewer:li", False),
        ("reviewer:", False),
        (":li", False),
        ("reviewer:li:zhang", False),
        ("reviewer li", False),
        ("judge-li\n", False),
        ("railway|x", False),
        ("a" * 64 + ":" + "b" * 63, True),  # 128: the longest actor an objection's history keeps
        ("a" * 65, False),
    ],
)
def test_an_identity_is_one_documented_pattern(name, valid):
    assert is_identity(name) is valid


def test_groups_name_every_identity_of_a_kind():
    assert group_of("reviewer:li") == "reviewer:*"
    assert group_of("railway") is None
    assert covers("reviewer:*", "reviewer:zhang") and covers("railway", "railway")
    assert not covers("reviewer:*", "reviewer") and not covers("reviewer:*", "clerk:wang")


def test_a_group_grants_each_member_under_its_own_name_and_an_exact_entry_wins():
    data = {"callers": {"reviewer:*": {"scopes": ["objections:review"]}, "reviewer:chief": {"scopes": []}}}
    policy = parse_policy(data, CHECKED_BY, local_mode=False)
    assert policy.grant("reviewer:li") == Grant("reviewer:li", frozenset({"objections:review"}))
    assert policy.grant("reviewer:chief").scopes == frozenset()
    assert policy.grant("reviewer").scopes == frozenset()  # a bare name is in no group


def test_local_holds_every_scope_in_local_mode_only(policy):
    local = policy.grant("local")
    assert policy.may_call(local, "/debar.v1.RegistryService/Lift") and "delegate" in local.scopes
    mtls = load_policy("", CATALOGUE, local_mode=False)  # the packaged file, as `debar up --certs` reads it
    assert mtls.grant("local").scopes == frozenset()
    explicit = {"callers": {"local": {"scopes": ["check:railway"]}}}
    assert parse_policy(explicit, CHECKED_BY, local_mode=True).grant("local").scopes == {"check:railway"}


def test_a_delegate_checks_with_its_own_check_scopes_at_the_platforms_rate(policy):
    railway = policy.grant("railway")
    assert policy.may_delegate(railway) and not policy.may_delegate(policy.grant("portal"))
    for_platform = policy.acting_for(railway, "platform:12306")
    assert for_platform.caller == "railway" and for_platform.actor == "platform:12306"
    assert for_platform.scopes == {"check:railway"}  # not delegate: no chains
    assert for_platform.rate == RateLimit(2000, 1)  # platform:* in the packaged file
    assert for_platform.rate_key == "railway/platform:12306"
    assert policy.acting_for(railway, "ticketing-site").rate == railway.rate  # no entry: the delegate's rate
    assert policy.may_check(for_platform, "RAIL_G_TRAIN") and not policy.may_check(for_platform, "HOTEL_STAR_RATED")


def test_a_delegate_acting_for_a_person_may_only_what_both_may(policy):
    console = policy.grant("console")
    li = policy.acting_for(console, "reviewer:li")
    assert li.actor == "reviewer:li" and li.rate_key == "reviewer:li"  # a person has one rate, however they call
    assert policy.may_call(li, "/debar.v1.DecisionService/ResolveObjection")
    assert not policy.may_call(li, "/debar.v1.DecisionService/FileObjection")  # the console's, not li's
    assert not policy.may_call(policy.acting_for(console, "clerk:wang"), "/debar.v1.RegistryService/Lift")
    assert not policy.may_call(policy.acting_for(console, "stranger"), "/debar.v1.DecisionService/GetDecision")
    # A domain service holds no reviewer scope, so naming a reviewer gains it nothing.
    assert not policy.may_call(policy.acting_for(policy.grant("railway"), "reviewer:li"),
                               "/debar.v1.DecisionService/ResolveObjection")  # fmt: skip


def test_the_acting_identity_is_the_grants_and_a_request_naming_another_is_refused():
    token = access._GRANT.set(Grant("reviewer:li", frozenset({"objections:review"})))
    try:
        assert acting_identity() == "reviewer:li"
        assert acting_identity("", "reviewer") == "reviewer:li"
        assert acting_identity("reviewer:li", "reviewer") == "reviewer:li"
        with pytest.raises(InvalidField) as refused:
            acting_identity("judge-zhang", "reviewer")
        assert refused.value.field == "reviewer"
    finally:
        access._GRANT.reset(token)
    token = access._GRANT.set(Grant("console", frozenset(), on_behalf_of="reviewer:zhang"))
    try:
        assert acting_identity() == "reviewer:zhang"
    finally:
        access._GRANT.reset(token)


# --- tokens and the trust file ------------------------------------------------------------------------------------

OPERATOR, RAILWAY, STRANGER = (tokens.new_signing_key() for _ in range(3))
TRUST = parse_trust(
    {"issuers": {
        "operator": trust_entry(OPERATOR.public_key(), ["platform:*"]),
        "railway": trust_entry(RAILWAY.public_key(), ["railway"]),
    }}
)  # fmt: skip
SANCTION = tokens.audience_of("sanction")


def test_a_token_names_its_subject_for_its_audience_until_it_expires():
    token = tokens.mint(RAILWAY, "railway", "railway", SANCTION, NOW, ttl_s=300)
    assert tokens.verify(TRUST, token, SANCTION, NOW + 299) == "railway"
    assert tokens.verify(TRUST, token, SANCTION, NOW + 300 + tokens.LEEWAY_S - 1) == "railway"  # clock skew
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(TRUST, token, SANCTION, NOW + 300 + tokens.LEEWAY_S)
    with pytest.raises(tokens.InvalidToken, match="not for this service"):
        tokens.verify(TRUST, token, tokens.audience_of("railway"), NOW)


@pytest.mark.parametrize(
    ("key", "issuer", "subject", "reason"),
    [
        (RAILWAY, "railway", "registry", "issuer 'railway' may not issue tokens for 'registry'"),
        (OPERATOR, "operator", "clerk:wang", "may not issue tokens for 'clerk:wang'"),
        (OPERATOR, "operator", "platform", "may not issue"),  # a bare name is not in the platform group
        (STRANGER, "railway", "railway", "signature does not match"),  # another key under a trusted name
        (STRANGER, "stranger", "railway", "issuer 'stranger' is not trusted"),
    ],
)
def test_an_issuer_cannot_stretch_its_key(key, issuer, subject, reason):
    token = tokens.mint(key, issuer, subject, SANCTION, NOW)
    with pytest.raises(tokens.InvalidToken, match=reason):
        tokens.verify(TRUST, token, SANCTION, NOW)


def _forged(claims: dict[str, object], key=OPERATOR, algorithm: str = "EdDSA") -> str:  # type: ignore[no-untyped-def]
    import jwt

    return jwt.encode(claims, key, algorithm=algorithm)


GOOD = {"iss": "operator", "sub": "platform:12306", "aud": SANCTION, "iat": NOW, "exp": NOW + 60, "jti": "x"}


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (_forged({**GOOD, "exp": NOW + tokens.MAX_LIFETIME_S + 1}), "lives longer than 3600 s"),
        (_forged({**GOOD, "iat": NOW + 600, "exp": NOW + 900}), "issued in the future"),
        (_forged({**GOOD, "iat": NOW - 7200, "exp": NOW + 3600}), "lives longer"),
        (_forged({**GOOD, "nbf": NOW + 600}), "not valid yet"),  # its issuer said not before; before, accepted
        (_forged({**GOOD, "nbf": "later"}), "nbf must be an integer"),
        (_forged({k: v for k, v in GOOD.items() if k != "jti"}), "lacks the 'jti' claim"),
        (_forged({k: v for k, v in GOOD.items() if k != "aud"}), "lacks the 'aud' claim"),
        (_forged({**GOOD, "exp": "soon"}), "exp must be an integer"),
        (_forged({**GOOD, "sub": "Platform 12306"}), "subject must match"),
        (_forged(GOOD, key="a-shared-secret-of-32-bytes-long!", algorithm="HS256"), "refused"),
        ("not-a-token", "malformed"),
        ("a.b.c", "malformed"),
    ],
)
def test_tokens_that_live_too_long_lack_claims_or_are_not_eddsa_are_refused(token, reason):
    with pytest.raises(tokens.InvalidToken, match=reason):
        tokens.verify(TRUST, token, SANCTION, NOW)


def test_minting_refuses_what_verification_would():
    with pytest.raises(ValueError, match="subject"):
        tokens.mint(OPERATOR, "operator", "Rail Way", SANCTION, NOW)
    with pytest.raises(ValueError, match="at most 3600 s"):
        tokens.mint(OPERATOR, "operator", "platform:a", SANCTION, NOW, ttl_s=3601)


def test_a_signer_reuses_its_token_until_halfway():
    clock = [float(NOW)]
    signer = tokens.Signer(RAILWAY, "railway", "railway", SANCTION, ttl_s=300, clock=lambda: clock[0])
    first = signer.token()
    clock[0] += 149
    assert signer.token() == first
    clock[0] += 1
    assert signer.token() != first
    assert tokens.verify(TRUST, signer.token(), SANCTION, clock[0]) == "railway"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected"),
        ({"issuers": {"x": {"public_key": "AAAA", "subjects": ["x"]}}}, "issuers.x.public_key"),
        ({"issuers": {"x": {"public_key": "!" * 44, "subjects": ["x"]}}}, "issuers.x.public_key"),
        ({"issuers": {"x": {**trust_entry(OPERATOR.public_key(), []), "subjects": []}}}, "issuers.x.subjects"),
        ({"issuers": {"x": trust_entry(OPERATOR.public_key(), ["*"])}}, "neither an identity nor a group"),
        ({"issuers": {"x": trust_entry(OPERATOR.public_key(), ["local"])}}, "no issuer may issue it"),
        ({"issuers": {"X Y": trust_entry(OPERATOR.public_key(), ["x"])}}, "issuers.X Y"),
        ({"issuers": {"x": {**trust_entry(OPERATOR.public_key(), ["x"]), "kid": 1}}}, "issuers.x"),
    ],
)
def test_a_bad_trust_file_is_refused_naming_the_field(data, message):
    with pytest.raises(TrustError, match=message.replace(".", r"\.").replace("*", r"\*")):
        parse_trust(data)


def test_a_bad_or_missing_trust_file_stops_the_start(tmp_path):
    with pytest.raises(SettingsError, match="DEBAR_TOKEN_TRUST_FILE: cannot read"):
        load_trust(str(tmp_path / "missing.json"))
    (tmp_path / "trust.json").write_text("{")
    with pytest.raises(SettingsError, match="DEBAR_TOKEN_TRUST_FILE"):
        load_trust(str(tmp_path / "trust.json"))


def test_signing_keys_are_written_private_and_read_back(tmp_path):
    path = tmp_path / "railway.pem"
    tokens.write_signing_key(path, RAILWAY)
    assert path.stat().st_mode & 0o077 == 0
    token = tokens.mint(tokens.load_signing_key(str(path)), "railway", "railway", SANCTION, NOW)
    assert tokens.verify(TRUST, token, SANCTION, NOW) == "railway"
    with pytest.raises(FileExistsError):
        tokens.write_signing_key(path, RAILWAY)  # never overwritten
    (tmp_path / "not.pem").write_text("hello")
    with pytest.raises(SettingsError, match="not an unencrypted PEM private key"):
        tokens.load_signing_key(str(tmp_path / "not.pem"))


def test_the_bearer_header_is_read_from_metadata():
    assert tokens.bearer([("x-other", "1"), ("authorization", "Bearer abc.1.x")]) == "abc.1.x"
    assert tokens.bearer([("authorization", "Basic abc")]) is None
    assert tokens.bearer(None) is None


# --- transport settings -----------------------------------------------------------------------------------------


TLS = {"DEBAR_TLS_CA": "ca.pem", "DEBAR_TLS_CERT": "me.pem", "DEBAR_TLS_KEY": "me-key.pem"}


@pytest.mark.parametrize(
    ("env", "transport"),
    [
        ({}, "local"),  # plaintext is the default on loopback only
        ({"DEBAR_PLAINTEXT": "true"}, "local"),
        (TLS, "mtls"),
        ({**TLS, "DEBAR_HOST": "0.0.0.0"}, "mtls"),
        ({"DEBAR_HOST": "0.0.0.0", "DEBAR_PLAINTEXT": "true", "DEBAR_TOKEN_TRUST_FILE": "trust.json"}, "token"),
        ({"DEBAR_TOKEN_TRUST_FILE": "trust.json"}, "token"),
    ],
)
def test_the_transport_follows_the_settings(env, transport):
    assert Settings.from_env(env).transport() == transport


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBAR_HOST": "0.0.0.0"}, "needs DEBAR_TLS_CA"),
        ({"DEBAR_HOST": "0.0.0.0", "DEBAR_PLAINTEXT": "true"}, "plaintext without tokens is for loopback only"),
        ({"DEBAR_HOST": "0.0.0.0", "DEBAR_TOKEN_TRUST_FILE": "trust.json"}, "needs DEBAR_PLAINTEXT=true"),
    ],
)
def test_a_server_beyond_loopback_refuses_plaintext_without_tokens(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env).transport()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBAR_TLS_CA": "ca.pem"}, "DEBAR_TLS_CERT, DEBAR_TLS_KEY missing"),
        ({**TLS, "DEBAR_PLAINTEXT": "true"}, "contradicts"),
        ({"DEBAR_CALLER": "Local Admin"}, "DEBAR_CALLER must match"),
        ({"DEBAR_PLAINTEXT": "maybe"}, "DEBAR_PLAINTEXT"),
    ],
)
def test_transport_settings_are_validated_at_start(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_missing_certificate_files_are_named(tmp_path):
    from debar.rpc.tls import server_credentials

    settings = Settings.from_env({k: str(tmp_path / v) for k, v in TLS.items()})
    with pytest.raises(SettingsError, match="DEBAR_TLS_CA: cannot read"):
        server_credentials(settings)


# --- identification and the check gate, with fakes ----------------------------------------------------------------


def _context(metadata=(), common_names=()):  # type: ignore[no-untyped-def]
    return SimpleNamespace(
        invocation_metadata=lambda: metadata, auth_context=lambda: {"x509_common_name": list(common_names)}
    )


def test_the_caller_header_is_trusted_in_local_mode_only():
    declared = _context([("x-debar-caller", "clerk:wang")])
    assert Identify("local", default_caller="local")(declared) == "clerk:wang"
    assert Identify("local", default_caller="local")(_context()) == "local"
    with pytest.raises(Unauthenticated, match="x-debar-caller must match"):
        Identify("local")(_context([("x-debar-caller", "Not A Name")]))
    assert Identify("mtls")(_context([("x-debar-caller", "clerk:wang")], [b"railway"])) == "railway"
    with pytest.raises(Unauthenticated, match="signed token is required"):
        Identify("token", trust=TRUST, audience=SANCTION)(declared)


@pytest.mark.parametrize("common_name", [b"Railway", b"railway|registry", b"reviewer li", "reviewer:l\u00ed".encode()])
def test_a_certificate_whose_name_is_not_an_identity_is_unauthenticated(common_name):
    with pytest.raises(Unauthenticated, match="common name must be an identity"):
        Identify("mtls")(_context(common_names=[common_name]))
    assert Identify("mtls")(_context(common_names=[b"reviewer:li"])) == "reviewer:li"


def test_token_mode_reads_the_bearer_token():
    identify = Identify("token", trust=TRUST, audience=SANCTION, clock=lambda: NOW)
    good = tokens.mint(RAILWAY, "railway", "railway", SANCTION, NOW)
    assert identify(_context([("authorization", f"Bearer {good}")])) == "railway"
    stretched = tokens.mint(RAILWAY, "railway", "local", SANCTION, NOW)
    with pytest.raises(Unauthenticated, match="may not issue tokens for 'local'"):
        identify(_context([("authorization", f"Bearer {stretched}")]))
    with pytest.raises(Unauthenticated, match="certificate"):
        Identify("mtls")(_context())
    with pytest.raises(ValueError, match="trust file"):
        Identify("token")


class FakeCounter:
    def __init__(self, fail: bool = False) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        self.fail = fail

    async def add(self, caller: str, window: int, window_s: int, cost: int) -> int:
        if self.fail:
            raise RateCounterUnavailable("connection refused")
        key = (caller, window)
        self.counts[key] = self.counts.get(key, 0) + cost
        return self.counts[key]


async def test_a_caller_past_its_rate_is_refused_and_flagged(policy):
    stats, counter = AccessStats(), FakeCounter()
    gate = CheckGate(policy, counter, stats, clock=lambda: NOW)
    grant = Grant("scraper", frozenset({"check:*"}), RateLimit(checks=3, window_s=60))
    await gate.admit(grant, 2)
    await gate.admit(grant, 1)
    with pytest.raises(RateLimited, match="at most 3 items per 60 s"):
        await gate.admit(grant, 1)
    with pytest.raises(RateLimited):
        await gate.admit(grant, 5)
    assert stats.rate_limited == 2
    assert stats.flagged == {"scraper": 2}


async def test_the_limiter_fails_open_and_counts_it(policy):
    stats = AccessStats()
    gate = CheckGate(policy, FakeCounter(fail=True), stats)
    await gate.admit(Grant("scraper", frozenset({"check:*"}), RateLimit(checks=1)), 10)
    assert stats.limiter_failures == 1
    assert stats.rate_limited == 0


async def test_a_rate_counted_by_the_store_refuses_past_it_and_fails_open_when_the_store_did_not_answer(policy):
    """The sanction service's gate: the decide script counts the rate in the call that decides the checks (one
    round trip); the gate builds the ask and judges the count as `admit` judges the counter's."""
    stats, counter = AccessStats(), FakeCounter()
    gate = CheckGate(policy, counter, stats, clock=lambda: NOW, counted_by_store=True)
    grant = Grant("scraper", frozenset({"check:*"}), RateLimit(checks=3, window_s=60))
    ask = await gate.ask(grant, 2)
    assert ask is not None
    assert (ask.key, ask.window, ask.window_s, ask.cost, ask.limit) == ("scraper", NOW // 60, 60, 2, 3)
    ask.tried, ask.count = True, 2
    gate.settle(grant, ask)
    ask = await gate.ask(grant, 2)
    assert ask is not None
    ask.tried, ask.count = True, 4
    assert ask.refused
    with pytest.raises(RateLimited, match="at most 3 items per 60 s"):
        gate.settle(grant, ask)
    assert stats.rate_limited == 1 and stats.flagged == {"scraper": 1}
    down = await gate.ask(grant, 1)
    assert down is not None
    down.tried = True  # the store was asked and did not answer: let through, counted
    gate.settle(grant, down)
    assert stats.limiter_failures == 1 and stats.rate_limited == 1
    untried = await gate.ask(grant, 1)  # nothing reached the store (every item refused before): nothing to judge
    gate.settle(grant, untried)
    assert stats.limiter_failures == 1
    assert counter.counts == {}  # never the separate counter
    assert await gate.ask(Grant("unlimited", frozenset({"check:*"})), 5) is None  # no rate
    closed = CheckGate(policy, counter, stats, clock=lambda: NOW, counted_by_store=True, fail_closed=True)
    down = await closed.ask(grant, 1)
    assert down is not None and down.fail_closed  # the checker spools nothing for it
    down.tried = True
    with pytest.raises(Unavailable, match="rate counters are unreachable"):
        closed.settle(grant, down)
    assert stats.limiter_failures == 2


async def test_the_limiter_fails_closed_when_told_to_and_counts_it(policy):
    stats = AccessStats()
    gate = CheckGate(policy, FakeCounter(fail=True), stats, fail_closed=True)
    with pytest.raises(Unavailable, match="rate counters are unreachable"):
        await gate.admit(Grant("scraper", frozenset({"check:*"}), RateLimit(checks=1)), 1)
    assert stats.limiter_failures == 1
    assert Settings.from_env({"DEBAR_RATE_LIMITER_FAILURE": "closed"}).rate_limiter_failure == "closed"
    assert Settings.from_env({}).rate_limiter_failure == "open"
    with pytest.raises(SettingsError, match="DEBAR_RATE_LIMITER_FAILURE"):
        Settings.from_env({"DEBAR_RATE_LIMITER_FAILURE": "shut"})


def test_reads_have_a_rate_for_every_reader_in_the_packaged_file(policy):
    reads = {"registry:read", "decisions:read", "objections:file", "objections:review"}
    unmetered = [name for name, g in policy.grants.items() if g.scopes & reads and g.rate is None]
    assert unmetered == ["bench", "local"]  # the benchmark and local mode only: neither is in deploy/'s file


def test_only_reviewers_see_every_subjects_records(policy):
    assert policy.sees_every_subject(policy.grant("reviewer:li"))
    assert policy.sees_every_subject(policy.grant("console"))
    assert not policy.sees_every_subject(policy.grant("portal"))
    assert not policy.sees_every_subject(policy.acting_for(policy.grant("console"), "portal"))


async def test_an_unlimited_caller_is_not_counted_and_denied_measures_are(policy):
    stats, counter = AccessStats(), FakeCounter()
    gate = CheckGate(policy, counter, stats)
    await gate.admit(policy.grant("bench"), 1000)
    assert counter.counts == {}
    assert not gate.may_check(policy.grant("railway"), "HOTEL_STAR_RATED")
    assert gate.may_check(policy.grant("railway"), "RAIL_G_TRAIN")
    assert stats.denied_checks == 1


# --- dev certificates ---------------------------------------------------------------------------------------------


def test_debar_certs_dev_makes_a_ca_and_a_certificate_per_service_and_client(tmp_path, capsys):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from debar.cli.main import main

    assert main(["certs", "dev", "--dir", str(tmp_path)]) == 0
    services = ["sanction", "railway", "hotel", "realestate", "procurement", "authz"]
    names = [*services, "reviewer:li", "reviewer:zhang", "clerk:wang", "platform:12306", "platform:trip",
             "platform:landreg", "platform:ccgp", "portal", "console", "envoy", "bench"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["ca.pem", "ca-key.pem", *(f"{n}.pem" for n in names), *(f"{n}-key.pem" for n in names)]
    )
    assert (tmp_path / "railway-key.pem").stat().st_mode & 0o077 == 0
    railway = x509.load_pem_x509_certificate((tmp_path / "railway.pem").read_bytes())
    assert railway.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "railway"
    alt = railway.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "railway", "railway.debar.svc.cluster.local"} <= set(alt.get_values_for_type(x509.DNSName))
    usages = set(railway.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH}
    li = x509.load_pem_x509_certificate((tmp_path / "reviewer:li.pem").read_bytes())
    assert li.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "reviewer:li"
    portal = x509.load_pem_x509_certificate((tmp_path / "portal.pem").read_bytes())
    assert set(portal.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.CLIENT_AUTH
    }
    ca = (tmp_path / "ca.pem").read_bytes()
    assert main(["certs", "dev", "--dir", str(tmp_path)]) == 0  # again: the same CA, new certificates
    assert (tmp_path / "ca.pem").read_bytes() == ca
    assert "DEBAR_TLS_CA=" in capsys.readouterr().out


async def test_platforms_behind_one_delegate_are_counted_apart(policy):
    stats, counter = AccessStats(), FakeCounter()
    gate = CheckGate(policy, counter, stats, clock=lambda: NOW)
    limit = RateLimit(checks=2, window_s=60)
    busy = Grant("railway", frozenset({"check:railway"}), limit, on_behalf_of="platform:busy")
    quiet = Grant("railway", frozenset({"check:railway"}), limit, on_behalf_of="platform:quiet")
    await gate.admit(busy, 2)
    with pytest.raises(RateLimited, match="caller 'railway/platform:busy' may check at most 2"):
        await gate.admit(busy, 1)
    await gate.admit(quiet, 2)
    assert stats.flagged == {"railway/platform:busy": 1}


def test_a_platform_rate_at_a_domain_service_counts_each_platform_apart():
    from debar.domain_services.platform_rates import PlatformRates

    clock = [float(NOW)]
    rates = PlatformRates(checks=3, window_s=10, clock=lambda: clock[0])
    rates.admit("platform:busy", 3)
    with pytest.raises(RateLimited, match="'platform:busy' may check at most 3 items per 10 s"):
        rates.admit("platform:busy", 1)
    rates.admit("platform:quiet", 3)
    clock[0] += 10
    rates.admit("platform:busy", 3)  # a new window
    PlatformRates(checks=0, window_s=1).admit("anyone", 10**6)  # 0: off


def test_debar_tokens_makes_a_key_pair_whose_entry_verifies_the_tokens_it_issues(tmp_path, capsys):
    import json

    from debar.cli.main import main

    key = tmp_path / "operator.pem"
    assert main(["tokens", "keypair", "--out", str(key), "--issuer", "operator", "--subjects", "platform:*"]) == 0
    assert key.stat().st_mode & 0o077 == 0
    printed = capsys.readouterr().out
    trust = parse_trust({"issuers": json.loads(printed[printed.index("{") :])})
    assert main(["tokens", "keypair", "--out", str(key), "--issuer", "operator", "--subjects", "x"]) == 2  # kept
    capsys.readouterr()
    issue = ["tokens", "issue", "--key", str(key), "--issuer", "operator", "--aud", "railway", "--ttl", "600"]
    assert main([*issue, "--sub", "platform:12306"]) == 0
    minted = capsys.readouterr().out.strip()
    import time

    assert tokens.verify(trust, minted, tokens.audience_of("railway"), time.time()) == "platform:12306"
    assert main([*issue, "--sub", "Platform 1"]) == 2
    assert main([*issue[:-1], "7200", "--sub", "platform:1"]) == 2
    assert main(["tokens", "keypair", "--out", str(tmp_path / "k.pem"), "--issuer", "x", "--subjects", "*"]) == 2
