"""One flat, typed settings object, read from the environment once at start-up and validated there.

Each setting is declared once, as a field of Settings: its environment variable, default, meaning and check (the
parser follows from the default's type unless one is given). `from_env` reads the declarations in one loop and
`validate` checks them in one loop; the rules that tie settings together are explicit checks after it. Adding a
setting is adding one field."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from debar.common.callers import CALLER_NAME, LOCAL, is_identity
from debar.common.identifiers import parse_keys

if TYPE_CHECKING:  # the witness lists need cryptography: loaded only when one is set (every process reads settings)
    from debar.common.witnesses import WitnessEndpoint
    from debar.tlog.keys import Ed25519Signer, Ed25519Verifier

SERVICE_PORTS = {
    "sanction": 50051,
    "railway": 50052,
    "hotel": 50053,
    "realestate": 50054,
    "procurement": 50055,
    "authz": 50056,
}

# Only for a laptop: `debar up` and tests. A deployment must set these from secrets (check_keys refuses them
# beyond loopback); each is long enough to pass the 32-byte minimum its real counterpart must meet.
DEV_PSEUDONYM_KEYS = "dev:not-a-secret-dev-only-pseudonym-key"
DEV_BUCKET_KEY = "not-a-secret-dev-only-bucket-key"
DEV_OBJECTION_KEYS = "dev:not-a-secret-dev-only-objection-key"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# How a server knows its callers: "mtls" (client certificate's name), "token" (plaintext behind a TLS-terminating
# proxy, signed bearer tokens), "local" (plaintext on loopback: the x-debar-caller header is trusted).
TRANSPORTS = ("mtls", "token", "local")

T = TypeVar("T")
# A parser turns the variable's text into the value, or raises ValueError saying what is wrong in words that follow
# the variable's name (e.g. "must be an integer, got 'x'"). A check returns such words for a bad value, None for a
# good one.
Parser = Callable[[str], Any]
Check = Callable[[Any], str | None]


class SettingsError(ValueError):
    pass


# --- what a declaration is ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variable:
    """One setting read from one environment variable; unset, the field's default holds."""

    env: str
    meaning: str
    parse: Parser
    check: Check | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.env,)

    def is_set(self, env: Mapping[str, str]) -> bool:
        return self.env in env

    def read(self, env: Mapping[str, str]) -> Any:
        try:
            return self.parse(env[self.env])
        except ValueError as error:
            raise SettingsError(f"{self.env} {error}") from None

    def validate(self, value: Any) -> None:
        if self.check and (complaint := self.check(value)) is not None:
            raise SettingsError(f"{self.env} {complaint}")


@dataclass(frozen=True)
class PerService:
    """One value per service, each from its own variable: `pattern` with <SERVICE> replaced by the service's name
    in capitals (DEBAR_<SERVICE>_PORT: DEBAR_SANCTION_PORT, ...). A service whose variable is unset keeps its
    default."""

    pattern: str
    defaults: Mapping[str, Any]
    meaning: str
    parse: Parser
    check: Check | None = None

    def variable(self, service: str) -> Variable:
        return Variable(self.pattern.replace("<SERVICE>", service.upper()), self.meaning, self.parse, self.check)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.variable(service).env for service in self.defaults)

    def is_set(self, env: Mapping[str, str]) -> bool:
        return any(name in env for name in self.names)

    def read(self, env: Mapping[str, str]) -> dict[str, Any]:
        values = dict(self.defaults)
        for service in values:
            if (variable := self.variable(service)).is_set(env):
                values[service] = variable.read(env)
        return values

    def validate(self, values: Mapping[str, Any]) -> None:
        for service, value in values.items():
            self.variable(service).validate(value)


@dataclass(frozen=True)
class ValueOrFile(Variable):
    """A setting that also takes NAME_FILE: the path of a file holding the value (a mounted Kubernetes Secret, so
    that keys and URLs with passwords never sit in a pod's environment). One of the two, never both; the file's
    surrounding whitespace (a trailing newline) is not part of the value. `optional_file`: a missing file means
    unset (a Secret's optional key is a file only while it is set)."""

    optional_file: bool = False

    @property
    def file_env(self) -> str:
        return f"{self.env}_FILE"

    @property
    def names(self) -> tuple[str, ...]:
        return (self.env, self.file_env)

    def is_set(self, env: Mapping[str, str]) -> bool:
        if self.file_env in env and self.optional_file and not Path(env[self.file_env]).exists():
            return self.env in env
        return self.env in env or self.file_env in env

    def read(self, env: Mapping[str, str]) -> Any:
        if self.file_env not in env:
            return super().read(env)
        if self.env in env:
            raise SettingsError(f"{self.env} and {self.file_env} are both set: give one")
        path = Path(env[self.file_env])
        # The messages name the path (no secret), never the file's content.
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as error:
            why = error.strerror or type(error).__name__
            raise SettingsError(f"{self.file_env}: cannot read {path}: {why}") from None
        except UnicodeDecodeError:
            raise SettingsError(f"{self.file_env}: {path} is not UTF-8 text") from None
        try:
            return self.parse(text)
        except ValueError as error:
            raise SettingsError(f"{self.file_env} {error}") from None


Declaration = Variable | PerService
_DECLARATION = "debar.setting"


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {raw!r}")


def _number(kind: Callable[[str], T], expected: str) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        try:
            return kind(raw)
        except ValueError:
            raise ValueError(f"must be {expected}, got {raw!r}") from None

    return parse


# The parser of a setting whose declaration names none, by the type of its default. Those of numbers and booleans
# repeat a bad value; one of text must not (it may be a secret, or a URL holding a password).
_PARSERS: dict[type, Parser] = {
    str: str,
    Path: Path,
    bool: _boolean,
    int: _number(int, "an integer"),
    float: _number(float, "a number"),
}


def _parser_of(kind: type) -> Parser:
    # By the most specific type that has one: Path for PosixPath, bool (not int) for bool.
    return next(_PARSERS[base] for base in kind.__mro__ if base in _PARSERS)


def setting(env: str, default: T, meaning: str, *, check: Check | None = None, parse: Parser | None = None) -> T:
    """A Settings field read from `env` (typed as its default, for the type checker; a dataclass field at run time)."""
    declaration = Variable(env, meaning, parse or _parser_of(type(default)), check)
    return field(default=default, metadata={_DECLARATION: declaration})


def secret_setting(
    env: str,
    default: str,
    meaning: str,
    *,
    check: Check | None = None,
    parse: Parser = str,
    optional_file: bool = False,
) -> str:
    """A text Settings field read from `env` or from the file `env`_FILE names (see ValueOrFile)."""
    declaration = ValueOrFile(env, meaning, parse, check, optional_file)
    return field(default=default, metadata={_DECLARATION: declaration})


def per_service(pattern: str, defaults: Mapping[str, T], meaning: str, *, check: Check | None = None) -> dict[str, T]:
    """A Settings field holding one value per service (see PerService)."""
    kinds = {type(value) for value in defaults.values()}
    (kind,) = kinds  # one type for every service
    declaration = PerService(pattern, dict(defaults), meaning, _parser_of(kind), check)
    return field(default_factory=lambda: dict(defaults), metadata={_DECLARATION: declaration})


def declarations() -> dict[str, Declaration]:
    """Every setting, by its Settings attribute, in declaration order."""
    return {item.name: item.metadata[_DECLARATION] for item in fields(Settings)}


# --- checks of one value ------------------------------------------------------------------------------------------


def within(low: float, high: float, *, low_open: bool = False, why: str = "") -> Check:
    interval = ("(" if low_open else "[") + f"{low}, {high}]" + (f" ({why})" if why else "")

    def check(value: float) -> str | None:
        inside = low < value <= high if low_open else low <= value <= high
        return None if inside else f"must be in {interval}"

    return check


def one_of(*choices: str) -> Check:
    quoted = [repr(choice) for choice in choices]
    listed = ", ".join(quoted[:-1]) + f" or {quoted[-1]}"
    return lambda value: None if value in choices else f"must be {listed}"


def port_number(*, zero_is_off: bool = False) -> Check:
    complaint = "must be a port number" + (" (0: off)" if zero_is_off else "")
    return lambda value: None if 0 <= value < 65536 else complaint


def _identity(value: str) -> str | None:
    return None if is_identity(value) else f"must match {CALLER_NAME.pattern}"


def _key_prefix(value: str) -> str | None:
    if value and not any(c in value for c in "{}: "):
        return None
    return "must be non-empty, without braces, colons or spaces"


MIN_SECRET_BYTES = 32  # 256 bits: a keyed hash or cipher is no stronger than its key


def _secret_key(value: str) -> str | None:
    # Never repeats the value: it is a secret.
    size = len(value.encode())
    return f"must be at least {MIN_SECRET_BYTES} bytes, got {size}" if size < MIN_SECRET_BYTES else None


def _networks(value: str) -> str | None:
    try:
        proxy_networks(value)
    except ValueError:
        return "must be a comma-separated list of addresses or networks (e.g. 10.0.0.0/8,127.0.0.1)"
    return None


def proxy_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """The networks a comma-separated DEBAR_CONSOLE_TRUSTED_PROXIES names (ipaddress networks)."""
    return tuple(ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip())


def _header_name(value: str) -> str | None:
    ok = bool(value) and all(c.isascii() and (c.isalnum() or c == "-") for c in value)
    return None if ok else "must be an HTTP header name (letters, digits and dashes)"


def _sentinels(value: str) -> str | None:
    try:
        sentinel_addresses(value)
    except ValueError:
        return "must be a comma-separated list of host:port (e.g. sentinel-0:26379,sentinel-1:26379)"
    return None


def sentinel_addresses(value: str) -> tuple[tuple[str, int], ...]:
    """The (host, port) pairs DEBAR_REDIS_SENTINELS names."""
    found = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        host, _, port = part.rpartition(":")
        if not host or not 0 < int(port) < 65536:
            raise ValueError(part)
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def _master_name(value: str) -> str | None:
    ok = bool(value) and all(c.isascii() and (c.isalnum() or c in "-_.") for c in value)
    return None if ok else "must be a Sentinel master name (letters, digits, '-', '_' and '.')"


def _min_replicas(value: str) -> str | None:
    return None if value == "auto" or (value.isdigit() and int(value) <= 16) else "must be auto or 0 to 16"


# --- the settings -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    # setting() and per_service() return dataclass fields, as field() does: a call here is no shared default (RUF009).
    host: str = setting("DEBAR_HOST", "127.0.0.1", "the address every server listens on")
    ports: dict[str, int] = per_service(  # noqa: RUF009
        "DEBAR_<SERVICE>_PORT", SERVICE_PORTS, "the port each service listens on", check=port_number()
    )
    # Checked after the loop: the schemes it may have depend on redis_cluster.
    redis_url: str = secret_setting("DEBAR_REDIS_URL", "", "the Redis to use; empty: start the embedded one")
    redis_cluster: bool = setting("DEBAR_REDIS_CLUSTER", False, "use the Redis Cluster client")
    redis_timeout_s: float = setting(
        "DEBAR_REDIS_TIMEOUT_S", 0.5, "socket and pool timeout of every Redis call", check=within(0, 30, low_open=True)
    )
    # A command is a batch job: a Redis busy with an fsync or a long script is waited for, not given up on.
    redis_command_timeout_s: float = setting(
        "DEBAR_REDIS_COMMAND_TIMEOUT_S", 10.0,
        "the same timeout for a `debar` command that works on Redis directly (import, log, rekey, up's demo data)",
        check=within(0, 120, low_open=True),
    )  # fmt: skip
    redis_connections: int = setting(
        "DEBAR_REDIS_CONNECTIONS", 16, "Redis connections per process: half the check path's, half the pool's"
    )
    # Sentinel: the master is found through these, and found again after a failover (see README, "Failures").
    redis_sentinels: str = setting(
        "DEBAR_REDIS_SENTINELS", "", "host:port[,host:port...] of the Sentinels that name the master; empty: none",
        check=_sentinels,
    )  # fmt: skip
    redis_sentinel_master: str = setting(
        "DEBAR_REDIS_SENTINEL_MASTER", "debar", "the name the Sentinels know the master by", check=_master_name
    )
    redis_min_replicas: str = setting(
        "DEBAR_REDIS_MIN_REPLICAS", "auto",
        "replicas that must hold a write before it is acknowledged; auto: 1 when the Redis has replicas, else 0",
        check=_min_replicas,
    )  # fmt: skip
    redis_replica_wait_ms: int = setting(
        "DEBAR_REDIS_REPLICA_WAIT_MS", 250, "how long a write waits for its replicas before it counts as failed",
        check=within(1, 30_000),
    )  # fmt: skip
    redis_prefix: str = setting("DEBAR_REDIS_PREFIX", "debar", "the prefix of every Redis key", check=_key_prefix)
    # Parsed after the loop, which needs the ring to check pseudonym_staged.
    pseudonym_keys: str = secret_setting(
        "DEBAR_PSEUDONYM_KEYS", DEV_PSEUDONYM_KEYS, "the pseudonymisation keys, kid:secret[,kid:secret], newest first"
    )
    # See Pseudonymiser and deploy/README.md, "The pseudonymisation key and its rotation". Its file may be missing:
    # it comes from the optional key of the Secret that holds the ring.
    pseudonym_staged: str = secret_setting(
        "DEBAR_PSEUDONYM_STAGED",
        "",
        "the id of the ring's newest key while it is only being introduced (read, not yet written)",
        parse=str.strip,
        optional_file=True,
    )
    # See Placement (common/identifiers.py): never rotated, so it is one key, not a ring.
    bucket_key: str = secret_setting(
        "DEBAR_BUCKET_KEY",
        DEV_BUCKET_KEY,
        "the key of the keyed hash that places each subject's data in one of 4096 buckets; never rotated",
        check=_secret_key,
    )
    # Parsed after the loop (a ring, as the pseudonym keys). See adapters/sealing.py.
    objection_keys: str = secret_setting(
        "DEBAR_OBJECTION_KEYS",
        DEV_OBJECTION_KEYS,
        "the keys that encrypt objection statements and contacts at rest, kid:secret[,kid:secret], newest first",
    )
    data_dir: Path = setting("DEBAR_DATA_DIR", Path("var"), "embedded Redis data and fail-open spools")  # noqa: RUF009
    # Unset, it follows DEBAR_SANCTION_PORT (see from_env).
    sanction_address: str = setting(
        "DEBAR_SANCTION_ADDRESS", f"127.0.0.1:{SERVICE_PORTS['sanction']}", "where to find the sanction service"
    )
    sanction_timeout_s: float = setting(
        "DEBAR_SANCTION_TIMEOUT_S", 2.0, "the deadline of every call to the sanction service"
    )
    metrics_port: int = setting(
        "DEBAR_METRICS_PORT", 0, "Prometheus /metrics over HTTP; 0: off", check=port_number(zero_is_off=True)
    )
    health_port: int = setting(
        "DEBAR_HEALTH_PORT",
        0,
        "plaintext grpc.health.v1 only (no other service), for kubelet probes that cannot do mutual TLS; the "
        "console: HTTP /healthz and /readyz only; 0: off",
        check=port_number(zero_is_off=True),
    )
    log_format: str = setting(
        "DEBAR_LOG_FORMAT", "console", "console, or json: one JSON object a line", check=one_of("console", "json")
    )
    caller: str = setting(
        "DEBAR_CALLER", LOCAL, "the caller of a call that names none, in local mode only", check=_identity
    )
    # Mutual TLS: one CA, certificate and key per process, used to serve and to call. All three, or none.
    tls_ca: str = setting("DEBAR_TLS_CA", "", "PEM file: the CA that signs every certificate")
    tls_cert: str = setting("DEBAR_TLS_CERT", "", "PEM file: this process's certificate")
    tls_key: str = setting("DEBAR_TLS_KEY", "", "PEM file: this process's private key")
    plaintext: bool = setting("DEBAR_PLAINTEXT", False, "explicit opt-in to plaintext; see transport()")
    # Signed tokens (JWT, EdDSA), when TLS is terminated in front of debar: see rpc/tokens.py and rpc/trust.py.
    token_trust_file: str = setting(
        "DEBAR_TOKEN_TRUST_FILE", "", "JSON file: the token issuers this server believes and whom each may name"
    )
    token_signing_key: str = setting(
        "DEBAR_TOKEN_SIGNING_KEY", "", "PEM file: this service's Ed25519 key, to sign its calls to the sanction service"
    )
    token_issuer: str = setting(
        "DEBAR_TOKEN_ISSUER", "", "the name of DEBAR_TOKEN_SIGNING_KEY in the sanction service's trust file"
    )
    # A delegate acting for a person (x-debar-on-behalf-of: reviewer:li) proves it with that person's own token.
    delegation_proof: str = setting(
        "DEBAR_DELEGATION_PROOF",
        "required",
        "the sanction service: required (a delegated call for a person, e.g. reviewer:li, must carry that person's "
        "signed token in x-debar-on-behalf-of-token, from an issuer DEBAR_TOKEN_TRUST_FILE lets name them) or off "
        "(the delegate's word is believed); local mode never asks",
        check=one_of("required", "off"),
    )
    # Each platform's own rate at a domain service (in this process), so that one cannot starve another.
    platform_rate_checks: int = setting(
        "DEBAR_PLATFORM_RATE_CHECKS",
        2000,
        "checks per window per calling platform at a domain service; 0: off",
        check=within(0, 10_000_000),
    )
    platform_rate_window_s: int = setting(
        "DEBAR_PLATFORM_RATE_WINDOW_S",
        1,
        "the window of DEBAR_PLATFORM_RATE_CHECKS, in seconds",
        check=within(1, 3600),
    )
    # What a call meets when Redis does not answer the rate counters (see sanction/api/access.py, CheckGate).
    rate_limiter_failure: str = setting(
        "DEBAR_RATE_LIMITER_FAILURE",
        "open",
        "when the rate counters do not answer: open (let the call through, counted) or closed (UNAVAILABLE); "
        "deploy/ sets closed in prod",
        check=one_of("open", "closed"),
    )
    authz_platforms_file: str = setting(
        "DEBAR_AUTHZ_PLATFORMS_FILE",
        "",
        "debar authz: JSON file naming the platform identity of each downstream principal Envoy authenticated, "
        "asked for by delegation; empty: authz asks alone",
    )
    scopes_file: str = setting("DEBAR_SCOPES_FILE", "", "who may ask what; empty: the packaged data/scopes.json")
    grace_s: float = setting(
        "DEBAR_GRACE_S",
        5.0,
        "after SIGTERM, how long calls in flight may finish",
        check=within(0, 300, why="keep it under the pod's terminationGracePeriodSeconds"),
    )
    max_batch_items: int = setting("DEBAR_MAX_BATCH_ITEMS", 1000, "items per BatchCheck", check=within(1, 10_000))
    # Subscriptions (WatchService): a platform is told when a booked customer's standing changes.
    watch_max_subscriptions: int = setting(
        "DEBAR_WATCH_MAX_SUBSCRIPTIONS",
        1_000_000,
        "live subscriptions one caller may hold (more: RESOURCE_EXHAUSTED)",
        check=within(1, 100_000_000),
    )
    watch_retention_days: int = setting(
        "DEBAR_WATCH_RETENTION_DAYS",
        7,
        "how long changes are kept for a client to resume from its cursor",
        check=within(7, 366, why="a platform offline over a long weekend must still resume"),
    )
    watch_heartbeat_s: float = setting(
        "DEBAR_WATCH_HEARTBEAT_S",
        15.0,
        "a Changes stream with nothing to tell sends a heartbeat this often",
        check=within(0.05, 300),
    )
    watch_poll_s: float = setting(
        "DEBAR_WATCH_POLL_S",
        0.2,
        "how often a sanction server looks for subjects due for judging and for changes told by other replicas",
        check=within(0.01, 10),
    )
    # The dates a domain service accepts (travel, stay, contract, bid deadline), around now: anything else is almost
    # always a caller's mistake (a wrong year, milliseconds for seconds), and a check at it would answer nothing
    # useful.
    dates_back_days: int = setting(
        "DEBAR_DATES_BACK_DAYS",
        365,
        "how many days before now a domain request's date may lie",
        check=within(0, 36_500),
    )
    dates_ahead_days: int = setting(
        "DEBAR_DATES_AHEAD_DAYS",
        730,
        "how many days after now a domain request's date may lie",
        check=within(0, 36_500),
    )
    # The web console (debar serve console): reviewers and refused persons, over HTTP.
    console_port: int = setting("DEBAR_CONSOLE_PORT", 8080, "the web console's HTTP port", check=port_number())
    console_sign_in: str = setting(
        "DEBAR_CONSOLE_SIGN_IN",
        "accounts",
        "how reviewers sign in: accounts (the accounts file) or proxy (an authenticating proxy's identity header)",
        check=one_of("accounts", "proxy"),
    )
    # Empty: $DEBAR_DATA_DIR/console-accounts.json (see console_accounts_path).
    console_accounts_file: str = setting(
        "DEBAR_CONSOLE_ACCOUNTS_FILE", "", "the reviewers' accounts file (argon2 password hashes)"
    )
    console_proxy_header: str = setting(
        "DEBAR_CONSOLE_PROXY_HEADER",
        "X-Forwarded-User",
        "proxy sign-in: the header naming the signed-in reviewer",
        check=_header_name,
    )
    console_proxy_token_header: str = setting(
        "DEBAR_CONSOLE_PROXY_TOKEN_HEADER",
        "X-Debar-Reviewer-Token",
        "proxy sign-in: the header carrying the signed-in reviewer's signed token (JWT for debar.sanction), passed "
        "on unchanged to the sanction service as their proof",
        check=_header_name,
    )
    console_reviewer_key: str = setting(
        "DEBAR_CONSOLE_REVIEWER_KEY",
        "",
        "accounts sign-in: PEM file, the console's Ed25519 key to sign its reviewers' proofs (the trust file names "
        "it for reviewer:*, so this key is a reviewer credential); empty: no proofs (local mode, or proofs off)",
    )
    console_reviewer_issuer: str = setting(
        "DEBAR_CONSOLE_REVIEWER_ISSUER",
        "console-reviewers",
        "accounts sign-in: the name of DEBAR_CONSOLE_REVIEWER_KEY in the sanction service's trust file",
        check=_identity,
    )
    console_trusted_proxies: str = setting(
        "DEBAR_CONSOLE_TRUSTED_PROXIES",
        "",
        "proxy sign-in: the addresses or networks of the authenticating proxy, comma-separated; the identity "
        "header and X-Forwarded-For are believed from these only",
        check=_networks,
    )
    console_session_key_file: str = setting(
        "DEBAR_CONSOLE_SESSION_KEY_FILE",
        "",
        "file holding the key that signs session cookies (32+ characters); empty: a random key per process, on "
        "loopback only",
    )
    console_lookup_rate: int = setting(
        "DEBAR_CONSOLE_LOOKUP_RATE",
        10,
        "decision lookups per client address per minute",
        check=within(1, 10_000),
    )
    log_integrator: str = setting(
        "DEBAR_LOG_INTEGRATOR",
        "on",
        "on: the integrator runs in a child process of the server (started, restarted and stopped with it); off: "
        "this replica never takes the integrator's lease (it still sequences entries and serves proofs from the "
        "stored tree), another replica must integrate; inline: it runs in the serving event loop (its steps then "
        "delay calls)",
        check=one_of("on", "off", "inline"),
    )
    log_signing_key: str = setting(
        "DEBAR_LOG_SIGNING_KEY", "", "file holding the log's signer key; `debar up` makes one in the data folder"
    )
    # The witnesses the log asks for cosignatures (formats: common/witnesses.py; parsed in validate).
    log_witnesses: str = setting(
        "DEBAR_LOG_WITNESSES", "", "the witnesses to ask, '<cosigner verifier key> <URL>' separated by commas"
    )
    log_witness_timeout_s: float = setting(
        "DEBAR_LOG_WITNESS_TIMEOUT_S",
        1.0,
        "how long one witness may take to answer one add-checkpoint request",
        check=within(0, 30, low_open=True),
    )
    log_checkpoints_dir: str = setting(
        "DEBAR_LOG_CHECKPOINTS_DIR",
        "",
        "where every signed checkpoint is kept (write-once storage in production); empty: $DEBAR_DATA_DIR/checkpoints",
    )
    # `debar witness`: its own process, key and state.
    witness_port: int = setting(
        "DEBAR_WITNESS_PORT", 50057, "where `debar witness` listens (HTTP)", check=port_number()
    )
    witness_key: str = setting("DEBAR_WITNESS_KEY", "", "file holding the witness's cosigner signer key")
    witness_state_dir: str = setting(
        "DEBAR_WITNESS_STATE_DIR", "", "the witness's state folder; empty: $DEBAR_DATA_DIR/witness"
    )
    witness_logs: str = setting(
        "DEBAR_WITNESS_LOGS", "", "the logs the witness follows: their verifier keys (name = origin), by commas"
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        given: dict[str, Any] = {name: item.read(env) for name, item in declarations().items() if item.is_set(env)}
        # The one default that follows another setting: the sanction service is sought on its own port.
        if "sanction_address" not in given:
            given["sanction_address"] = f"127.0.0.1:{given.get('ports', SERVICE_PORTS)['sanction']}"
        settings = cls(**given)
        settings.validate()
        return settings

    def check_keys(self) -> None:
        """The service that pseudonymises, places and seals refuses the public dev keys anywhere but on loopback."""
        if self.host in LOOPBACK:
            return
        dev = {
            "DEBAR_PSEUDONYM_KEYS": self.pseudonym_keys == DEV_PSEUDONYM_KEYS,
            "DEBAR_BUCKET_KEY": self.bucket_key == DEV_BUCKET_KEY,
            "DEBAR_OBJECTION_KEYS": self.objection_keys == DEV_OBJECTION_KEYS,
        }
        unset = [name for name, is_dev in dev.items() if is_dev]
        if unset:
            raise SettingsError(
                f"{', '.join(unset)} must be set when listening beyond this machine (the dev keys are public)"
            )

    def console_accounts_path(self) -> Path:
        return (
            Path(self.console_accounts_file) if self.console_accounts_file else self.data_dir / "console-accounts.json"
        )

    def check_console(self) -> None:
        """What the console refuses to start with (each value is already valid on its own)."""
        if self.console_sign_in == "proxy" and not self.console_trusted_proxies:
            raise SettingsError(
                "DEBAR_CONSOLE_SIGN_IN=proxy needs DEBAR_CONSOLE_TRUSTED_PROXIES (the proxy's addresses): the "
                "identity header is believed from those only"
            )
        if not self.console_session_key_file and self.host not in LOOPBACK:
            raise SettingsError(
                "DEBAR_CONSOLE_SESSION_KEY_FILE must be set when listening beyond this machine (sessions must "
                "outlive a restart and be shared by replicas)"
            )

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca)

    @property
    def redis_location(self) -> str:
        """Where the Redis is, as the wiring and the spool's folder name it: DEBAR_REDIS_URL, or with Sentinels
        sentinel://<the sentinels>/<master> (DEBAR_REDIS_URL then only gives the master's password, database and
        scheme); empty: the embedded server."""
        if self.redis_sentinels:
            hosts = ",".join(f"{host}:{port}" for host, port in sentinel_addresses(self.redis_sentinels))
            return f"sentinel://{hosts}/{self.redis_sentinel_master}"
        return self.redis_url

    def transport(self) -> str:
        """How a server of this process knows its callers (one of TRANSPORTS); refuses an unsafe choice. Plaintext
        is the default on loopback only (the laptop flow); beyond it, mutual TLS or signed tokens are required."""
        if self.tls:
            return "mtls"
        if self.token_trust_file:
            if not self.plaintext and self.host not in LOOPBACK:
                raise SettingsError(
                    "DEBAR_TOKEN_TRUST_FILE beyond loopback needs DEBAR_PLAINTEXT=true (TLS ends in front)"
                )
            return "token"
        if self.host not in LOOPBACK:
            raise SettingsError(
                f"listening on {self.host} needs DEBAR_TLS_CA, DEBAR_TLS_CERT and DEBAR_TLS_KEY (mutual TLS), or "
                "DEBAR_PLAINTEXT=true with DEBAR_TOKEN_TRUST_FILE (TLS terminated in front); plaintext without "
                "tokens is for loopback only"
            )
        return "local"

    def validate(self) -> None:
        for name, item in declarations().items():
            item.validate(getattr(self, name))
        # The rules that tie settings together (each value is already valid on its own).
        tls_files = {"DEBAR_TLS_CA": self.tls_ca, "DEBAR_TLS_CERT": self.tls_cert, "DEBAR_TLS_KEY": self.tls_key}
        if any(tls_files.values()) and not all(tls_files.values()):
            missing = ", ".join(name for name, value in tls_files.items() if not value)
            raise SettingsError(f"DEBAR_TLS_CA, DEBAR_TLS_CERT and DEBAR_TLS_KEY go together: {missing} missing")
        if self.tls and self.plaintext:
            raise SettingsError("DEBAR_PLAINTEXT=true contradicts DEBAR_TLS_*: choose one")
        if self.redis_cluster and not self.redis_url:
            raise SettingsError("DEBAR_REDIS_CLUSTER needs DEBAR_REDIS_URL (the embedded server is one node)")
        if self.redis_sentinels and self.redis_cluster:
            raise SettingsError("DEBAR_REDIS_SENTINELS and DEBAR_REDIS_CLUSTER exclude each other: choose one")
        if self.redis_url:
            _check_redis_url(self.redis_url, self.redis_cluster)
        if self.redis_replica_wait_ms >= self.redis_timeout_s * 1000:
            raise SettingsError("DEBAR_REDIS_REPLICA_WAIT_MS must be shorter than DEBAR_REDIS_TIMEOUT_S")
        if self.redis_replica_wait_ms >= self.redis_command_timeout_s * 1000:
            raise SettingsError("DEBAR_REDIS_REPLICA_WAIT_MS must be shorter than DEBAR_REDIS_COMMAND_TIMEOUT_S")
        try:
            ring = parse_keys(self.pseudonym_keys)
        except ValueError as error:  # the message names key ids, never a secret
            raise SettingsError(f"DEBAR_PSEUDONYM_KEYS: {error}") from None
        try:
            parse_keys(self.objection_keys, what="objection")
        except ValueError as error:
            raise SettingsError(f"DEBAR_OBJECTION_KEYS: {error}") from None
        if self.pseudonym_staged and (len(ring) < 2 or self.pseudonym_staged != ring[0].key_id):
            raise SettingsError(
                "DEBAR_PSEUDONYM_STAGED must name the newest key of DEBAR_PSEUDONYM_KEYS, before others"
            )
        self.log_witness_list()
        self.witnessed_logs()

    def log_witness_list(self) -> tuple[WitnessEndpoint, ...]:
        if not self.log_witnesses.strip():
            return ()
        from debar.common.witnesses import parse_log_witnesses

        try:
            return parse_log_witnesses(self.log_witnesses)
        except ValueError as error:
            raise SettingsError(f"DEBAR_LOG_WITNESSES {error}") from None

    def witnessed_logs(self) -> Mapping[str, tuple[Ed25519Verifier, ...]]:
        """Origin -> the log's verifier keys."""
        if not self.witness_logs.strip():
            return {}
        from debar.common.witnesses import parse_witnessed_logs

        try:
            return parse_witnessed_logs(self.witness_logs)
        except ValueError as error:
            raise SettingsError(f"DEBAR_WITNESS_LOGS {error}") from None

    @property
    def checkpoints_path(self) -> Path:
        return Path(self.log_checkpoints_dir) if self.log_checkpoints_dir else self.data_dir / "checkpoints"

    def log_signer(self) -> Ed25519Signer:
        """The log's signer key from the file DEBAR_LOG_SIGNING_KEY names; SettingsError (one line naming the
        setting, never the key) when it is not set, not readable or not a signer key."""
        from debar.tlog.keys import InvalidKey, parse_signer_key

        if not self.log_signing_key:
            raise SettingsError(
                "DEBAR_LOG_SIGNING_KEY: not set (a file holding the log's signer key: debar keys log-signing)"
            )
        try:
            text = Path(self.log_signing_key).read_text()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else "not readable"
            raise SettingsError(f"DEBAR_LOG_SIGNING_KEY: cannot read {self.log_signing_key}: {reason}") from None
        try:
            return parse_signer_key(text)
        except InvalidKey:
            raise SettingsError(f"DEBAR_LOG_SIGNING_KEY: {self.log_signing_key} does not hold a signer key") from None

    def log_entry_signer(self) -> Ed25519Signer | None:
        """The key that signs registry, objection and rekey entries as they are written (the log's: README, "The
        transparency log"): DEBAR_LOG_SIGNING_KEY, else the one `debar up` keeps in the data folder, else none (a
        tool run without it writes unsigned entries, which `debar log verify` counts). A key set but unusable is a
        SettingsError, as for log_signer."""
        if self.log_signing_key:
            return self.log_signer()
        kept = self.data_dir / "log-signing.key"
        if not kept.is_file():
            return None
        return replace(self, log_signing_key=str(kept)).log_signer()

    @property
    def witness_state_path(self) -> Path:
        return Path(self.witness_state_dir) if self.witness_state_dir else self.data_dir / "witness"


def _check_redis_url(url: str, cluster: bool) -> None:
    """What the Redis client would refuse only at its first call. Messages never repeat the URL: it may hold a
    password."""
    schemes = ("redis", "rediss") if cluster else ("redis", "rediss", "unix")
    parsed = urlsplit(url)
    if parsed.scheme not in schemes:
        kinds = ", ".join(f"{scheme}://" for scheme in schemes[:-1]) + f" or {schemes[-1]}://"
        raise SettingsError(
            f"DEBAR_REDIS_URL must start with {kinds}" + (" with DEBAR_REDIS_CLUSTER" if cluster else "")
        )
    if parsed.scheme == "unix":
        if not parsed.path:
            raise SettingsError("DEBAR_REDIS_URL: a unix:// URL needs the socket's path")
        return
    try:
        parsed.port  # noqa: B018  # parsing it is the check
    except ValueError:
        raise SettingsError("DEBAR_REDIS_URL has a bad port") from None
    if not parsed.hostname:
        raise SettingsError("DEBAR_REDIS_URL names no host")
