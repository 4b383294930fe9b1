"""One flat, typed settings object, read from the environment once at start-up and validated there."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from debar.common.identifiers import parse_keys

SERVICE_PORTS = {
    "sanction": 50051,
    "railway": 50052,
    "hotel": 50053,
    "realestate": 50054,
    "procurement": 50055,
}

# Only for a laptop: `debar up` and tests. A deployment must set DEBAR_PSEUDONYM_KEYS from a secret.
DEV_PSEUDONYM_KEYS = "dev:not-a-secret-dev-only"
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# How a server knows its callers: "mtls" (client certificate's name), "token" (plaintext behind a TLS-terminating
# proxy, HMAC-signed bearer tokens), "local" (plaintext on loopback: the x-debar-caller header is trusted).
TRANSPORTS = ("mtls", "token", "local")


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    # Empty: start the embedded Redis-compatible server.
    redis_url: str = ""
    redis_cluster: bool = False
    redis_timeout_s: float = 0.5
    redis_connections: int = 16
    redis_prefix: str = "debar"
    pseudonym_keys: str = DEV_PSEUDONYM_KEYS
    # The id of the ring's newest key while it is only being introduced (read, not yet written): see
    # Pseudonymiser and deploy/README.md, "The pseudonymisation key and its rotation".
    pseudonym_staged: str = ""
    data_dir: Path = Path("var")
    sanction_address: str = "127.0.0.1:50051"
    sanction_timeout_s: float = 2.0
    metrics_port: int = 0  # Prometheus /metrics over HTTP; 0: off
    # Plaintext grpc.health.v1 only (no other service), for kubelet probes that cannot do mutual TLS; 0: off.
    health_port: int = 0
    log_format: str = "console"
    # The caller of a call that names none, in local (plaintext, loopback) mode only.
    caller: str = "local"
    # Mutual TLS: one CA, certificate and key per process, used to serve and to call. All three, or none.
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    plaintext: bool = False  # explicit opt-in; see transport()
    token_key: str = ""  # HMAC key of bearer tokens, when TLS is terminated in front of debar
    scopes_file: str = ""  # empty: the packaged data/scopes.json
    grace_s: float = 5.0
    max_batch_items: int = 1000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        base = cls()
        ports = dict(SERVICE_PORTS)
        for name in ports:
            value = env.get(f"DEBAR_{name.upper()}_PORT")
            if value:
                ports[name] = _int(f"DEBAR_{name.upper()}_PORT", value)
        settings = replace(
            base,
            host=env.get("DEBAR_HOST", base.host),
            ports=ports,
            redis_url=env.get("DEBAR_REDIS_URL", base.redis_url),
            redis_cluster=_bool("DEBAR_REDIS_CLUSTER", env.get("DEBAR_REDIS_CLUSTER", "false")),
            redis_timeout_s=_float("DEBAR_REDIS_TIMEOUT_S", env.get("DEBAR_REDIS_TIMEOUT_S", "0.5")),
            grace_s=_float("DEBAR_GRACE_S", env.get("DEBAR_GRACE_S", "5")),
            redis_connections=_int("DEBAR_REDIS_CONNECTIONS", env.get("DEBAR_REDIS_CONNECTIONS", "16")),
            redis_prefix=env.get("DEBAR_REDIS_PREFIX", base.redis_prefix),
            pseudonym_keys=env.get("DEBAR_PSEUDONYM_KEYS", base.pseudonym_keys),
            pseudonym_staged=env.get("DEBAR_PSEUDONYM_STAGED", "").strip(),
            data_dir=Path(env.get("DEBAR_DATA_DIR", str(base.data_dir))),
            sanction_address=env.get("DEBAR_SANCTION_ADDRESS", f"127.0.0.1:{ports['sanction']}"),
            sanction_timeout_s=_float("DEBAR_SANCTION_TIMEOUT_S", env.get("DEBAR_SANCTION_TIMEOUT_S", "2")),
            metrics_port=_int("DEBAR_METRICS_PORT", env.get("DEBAR_METRICS_PORT", "0")),
            health_port=_int("DEBAR_HEALTH_PORT", env.get("DEBAR_HEALTH_PORT", "0")),
            log_format=env.get("DEBAR_LOG_FORMAT", base.log_format),
            caller=env.get("DEBAR_CALLER", base.caller),
            max_batch_items=_int("DEBAR_MAX_BATCH_ITEMS", env.get("DEBAR_MAX_BATCH_ITEMS", "1000")),
            tls_ca=env.get("DEBAR_TLS_CA", ""),
            tls_cert=env.get("DEBAR_TLS_CERT", ""),
            tls_key=env.get("DEBAR_TLS_KEY", ""),
            plaintext=_bool("DEBAR_PLAINTEXT", env.get("DEBAR_PLAINTEXT", "false")),
            token_key=env.get("DEBAR_TOKEN_KEY", ""),
            scopes_file=env.get("DEBAR_SCOPES_FILE", ""),
        )
        settings.validate()
        return settings

    def check_pseudonym_key(self) -> None:
        """The service that pseudonymises refuses the public dev key anywhere but on loopback."""
        if self.pseudonym_keys == DEV_PSEUDONYM_KEYS and self.host not in LOOPBACK:
            raise SettingsError(
                "DEBAR_PSEUDONYM_KEYS must be set when listening beyond this machine (the dev key is public)"
            )

    @property
    def tls(self) -> bool:
        return bool(self.tls_ca)

    def transport(self) -> str:
        """How a server of this process knows its callers (one of TRANSPORTS); refuses an unsafe choice. Plaintext
        is the default on loopback only (the laptop flow); beyond it, mutual TLS or signed tokens are required."""
        if self.tls:
            return "mtls"
        if self.token_key:
            if not self.plaintext and self.host not in LOOPBACK:
                raise SettingsError("DEBAR_TOKEN_KEY beyond loopback needs DEBAR_PLAINTEXT=true (TLS ends in front)")
            return "token"
        if self.host not in LOOPBACK:
            raise SettingsError(
                f"listening on {self.host} needs DEBAR_TLS_CA, DEBAR_TLS_CERT and DEBAR_TLS_KEY (mutual TLS), or "
                "DEBAR_PLAINTEXT=true with DEBAR_TOKEN_KEY (TLS terminated in front); plaintext without tokens is "
                "for loopback only"
            )
        return "local"

    def validate(self) -> None:
        tls_files = {"DEBAR_TLS_CA": self.tls_ca, "DEBAR_TLS_CERT": self.tls_cert, "DEBAR_TLS_KEY": self.tls_key}
        if any(tls_files.values()) and not all(tls_files.values()):
            missing = ", ".join(name for name, value in tls_files.items() if not value)
            raise SettingsError(f"DEBAR_TLS_CA, DEBAR_TLS_CERT and DEBAR_TLS_KEY go together: {missing} missing")
        if self.tls and self.plaintext:
            raise SettingsError("DEBAR_PLAINTEXT=true contradicts DEBAR_TLS_*: choose one")
        if self.token_key and len(self.token_key) < 16:
            raise SettingsError("DEBAR_TOKEN_KEY must be at least 16 characters")
        if self.log_format not in ("console", "json"):
            raise SettingsError("DEBAR_LOG_FORMAT must be 'console' or 'json'")
        if not 0 < self.redis_timeout_s <= 30:
            raise SettingsError("DEBAR_REDIS_TIMEOUT_S must be in (0, 30]")
        if not 0 <= self.grace_s <= 300:
            raise SettingsError(
                "DEBAR_GRACE_S must be in [0, 300] (keep it under the pod's terminationGracePeriodSeconds)"
            )
        if self.redis_cluster and not self.redis_url:
            raise SettingsError("DEBAR_REDIS_CLUSTER needs DEBAR_REDIS_URL (the embedded server is one node)")
        if self.redis_url:
            _check_redis_url(self.redis_url, self.redis_cluster)
        try:
            ring = parse_keys(self.pseudonym_keys)
        except ValueError as error:  # the message names key ids, never a secret
            raise SettingsError(f"DEBAR_PSEUDONYM_KEYS: {error}") from None
        if self.pseudonym_staged and (len(ring) < 2 or self.pseudonym_staged != ring[0].key_id):
            raise SettingsError(
                "DEBAR_PSEUDONYM_STAGED must name the newest key of DEBAR_PSEUDONYM_KEYS, before others"
            )
        if not self.redis_prefix or any(c in self.redis_prefix for c in "{}: "):
            raise SettingsError("DEBAR_REDIS_PREFIX must be non-empty, without braces, colons or spaces")
        if not 1 <= self.max_batch_items <= 10_000:
            raise SettingsError("DEBAR_MAX_BATCH_ITEMS must be in [1, 10000]")
        for name, port in self.ports.items():
            if not 0 <= port < 65536:
                raise SettingsError(f"DEBAR_{name.upper()}_PORT must be a port number")
        for name, port in (("DEBAR_METRICS_PORT", self.metrics_port), ("DEBAR_HEALTH_PORT", self.health_port)):
            if not 0 <= port < 65536:
                raise SettingsError(f"{name} must be a port number (0: off)")


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


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {value!r}") from None


def _float(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {value!r}") from None


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise SettingsError(f"{name} must be true or false, got {value!r}")
