"""Who may ask what, as pure rules: scopes per method and per measure, the scopes file, rates, signed tokens,
the transport settings, and the check gate and caller identification with fakes in place of gRPC and Redis."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from debar.common.errors import RateLimited
from debar.common.settings import Settings, SettingsError
from debar.rpc import tokens
from debar.rpc.callers import Identify, Unauthenticated
from debar.sanction.api.access import AccessStats, CheckGate, load_policy
from debar.sanction.app.ports import RateCounterUnavailable
from debar.sanction.domain.access import AccessPolicy, Grant, RateLimit, ScopesError, parse_policy
from debar.sanction.domain.catalogue import load_default_catalogue

KEY = "0123456789abcdef-test"
NOW = 1_800_000_000
CATALOGUE = load_default_catalogue()
CHECKED_BY = {code: m.checked_by for code, m in CATALOGUE.measures.items()}


@pytest.fixture(scope="module")
def policy() -> AccessPolicy:
    return load_policy("", CATALOGUE)  # the packaged scopes file


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
        ("registry", "/debar.v1.RegistryService/Impose", True),
        ("registry", "/debar.v1.RegistryService/GetRestriction", True),
        ("registry", "/debar.v1.SanctionService/Check", False),
        ("reviewer", "/debar.v1.DecisionService/ReviewObjection", True),
        ("reviewer", "/debar.v1.DecisionService/ListObjections", True),
        ("reviewer", "/debar.v1.RegistryService/Lift", False),
        ("reviewer", "/debar.v1.DecisionService/ConfirmResolution", True),
        ("reviewer", "/debar.v1.RegistryService/ConfirmLift", False),
        ("reviewer", "/debar.v1.RegistryService/ConfirmExemption", False),
        ("registry", "/debar.v1.RegistryService/ConfirmLift", True),
        ("registry", "/debar.v1.RegistryService/ConfirmExemption", True),
        ("registry", "/debar.v1.DecisionService/ConfirmResolution", False),
        ("portal", "/debar.v1.DecisionService/ConfirmResolution", False),
        ("portal", "/debar.v1.DecisionService/FileObjection", True),
        ("portal", "/debar.v1.DecisionService/GetObjection", True),
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
        ({"callers": {"railway": {"scopes": [], "limit": 3}}}, "callers.railway"),
        ({"callers": {"railway": {"scopes": [], "rate": {"checks": 0}}}}, "callers.railway.rate.checks"),
        ({"callers": {"railway": {"scopes": [], "rate": {"checks": True}}}}, "callers.railway.rate.checks"),
        ({"callers": {"railway": {"scopes": [], "rate": {"checks": 1, "window_s": 0}}}}, "rate.window_s"),
        ({"callers": {"railway": {"scopes": [], "rate": 5}}}, "callers.railway.rate"),
    ],
)
def test_a_bad_scopes_file_is_refused_naming_the_field(data, message):
    with pytest.raises(ScopesError, match=message.replace(".", r"\.")):
        parse_policy(data, CHECKED_BY)


def test_a_bad_scopes_file_stops_the_start(tmp_path):
    path = tmp_path / "scopes.json"
    path.write_text('{"callers": {"x": {"scopes": ["everything"]}}}')
    with pytest.raises(SettingsError, match=r"DEBAR_SCOPES_FILE .*callers\.x\.scopes: unknown everything"):
        load_policy(str(path), CATALOGUE)
    with pytest.raises(SettingsError, match="cannot read"):
        load_policy(str(tmp_path / "missing.json"), CATALOGUE)


def test_rates_count_in_fixed_windows():
    limit = RateLimit(checks=3, window_s=10)
    assert limit.window(NOW) == limit.window(NOW + 9.9) != limit.window(NOW + 10)
    assert not limit.exceeded(3)
    assert limit.exceeded(4)
    grant = parse_policy({"callers": {"x": {"scopes": ["check:*"], "rate": {"checks": 7}}}}, CHECKED_BY).grant("x")
    assert grant.rate == RateLimit(7, 1)


# --- tokens -----------------------------------------------------------------------------------------------------


def test_a_signed_token_names_its_caller_until_it_expires():
    token = tokens.mint(KEY, "railway", NOW + 60)
    assert tokens.verify(KEY, token, NOW) == "railway"
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.verify(KEY, token, NOW + 60)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace("railway", "registry", 1),  # another caller, same signature
        lambda t: t.replace(f".{NOW + 60}.", f".{NOW + 600}."),  # a later expiry
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another signature
    ],
)
def test_a_tampered_token_is_refused(tamper):
    with pytest.raises(tokens.InvalidToken, match="signature"):
        tokens.verify(KEY, tamper(tokens.mint(KEY, "railway", NOW + 60)), NOW)


def test_tokens_from_another_key_malformed_or_too_long_lived_are_refused():
    with pytest.raises(tokens.InvalidToken, match="signature"):
        tokens.verify(KEY, tokens.mint("another-key-of-16+chars", "railway", NOW + 60), NOW)
    for bad in ("", "railway", "railway.soon.sig", "a.b.c.d", "Rail.1.x"):
        with pytest.raises(tokens.InvalidToken, match="malformed"):
            tokens.verify(KEY, bad, NOW)
    with pytest.raises(tokens.InvalidToken, match="ahead"):
        tokens.verify(KEY, tokens.mint(KEY, "railway", NOW + tokens.MAX_LIFETIME_S + 1), NOW)
    with pytest.raises(ValueError, match="caller name"):
        tokens.mint(KEY, "rail.way", NOW)


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
        ({"DEBAR_HOST": "0.0.0.0", "DEBAR_PLAINTEXT": "true", "DEBAR_TOKEN_KEY": KEY}, "token"),
        ({"DEBAR_TOKEN_KEY": KEY}, "token"),
    ],
)
def test_the_transport_follows_the_settings(env, transport):
    assert Settings.from_env(env).transport() == transport


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DEBAR_HOST": "0.0.0.0"}, "needs DEBAR_TLS_CA"),
        ({"DEBAR_HOST": "0.0.0.0", "DEBAR_PLAINTEXT": "true"}, "plaintext without tokens is for loopback only"),
        ({"DEBAR_HOST": "0.0.0.0", "DEBAR_TOKEN_KEY": KEY}, "needs DEBAR_PLAINTEXT=true"),
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
        ({"DEBAR_TOKEN_KEY": "short"}, "at least 16"),
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
    declared = _context([("x-debar-caller", "registry")])
    assert Identify("local", default_caller="local")(declared) == "registry"
    assert Identify("local", default_caller="local")(_context()) == "local"
    with pytest.raises(Unauthenticated, match="x-debar-caller must match"):
        Identify("local")(_context([("x-debar-caller", "Not A Name")]))
    assert Identify("mtls")(_context([("x-debar-caller", "registry")], [b"railway"])) == "railway"
    with pytest.raises(Unauthenticated, match="signed token is required"):
        Identify("token", token_key=KEY)(declared)


def test_token_mode_reads_the_bearer_token():
    identify = Identify("token", token_key=KEY, clock=lambda: NOW)
    good = tokens.mint(KEY, "hotel", NOW + 30)
    assert identify(_context([("authorization", f"Bearer {good}")])) == "hotel"
    with pytest.raises(Unauthenticated, match="expired"):
        identify(_context([("authorization", f"Bearer {tokens.mint(KEY, 'hotel', NOW - 1)}")]))
    with pytest.raises(Unauthenticated, match="certificate"):
        Identify("mtls")(_context())


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


async def test_an_unlimited_caller_is_not_counted_and_denied_measures_are(policy):
    stats, counter = AccessStats(), FakeCounter()
    gate = CheckGate(policy, counter, stats)
    await gate.admit(policy.grant("registry"), 1000)
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
    names = [*services, "registry", "reviewer", "portal", "bench", "envoy", "console"]
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
    portal = x509.load_pem_x509_certificate((tmp_path / "portal.pem").read_bytes())
    assert set(portal.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.CLIENT_AUTH
    }
    ca = (tmp_path / "ca.pem").read_bytes()
    assert main(["certs", "dev", "--dir", str(tmp_path)]) == 0  # again: the same CA, new certificates
    assert (tmp_path / "ca.pem").read_bytes() == ca
    assert "DEBAR_TLS_CA=" in capsys.readouterr().out
