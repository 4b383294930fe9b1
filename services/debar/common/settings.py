"""One flat, typed settings object, read from the environment once at start-up and validated there."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

SERVICE_PORTS = {
    "sanction": 50051,
    "railway": 50052,
    "hotel": 50053,
    "realestate": 50054,
    "procurement": 50055,
}

# Only for a laptop: `debar up` and tests. A deployment must set DEBAR_PSEUDONYM_KEYS from a secret.
DEV_PSEUDONYM_KEYS = "dev:not-a-secret-dev-only"


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
    data_dir: Path = Path("var")
    sanction_address: str = "127.0.0.1:50051"
    sanction_timeout_s: float = 2.0
    metrics_port: int = 0
    log_format: str = "console"
    caller: str = "anonymous"
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
            redis_connections=_int("DEBAR_REDIS_CONNECTIONS", env.get("DEBAR_REDIS_CONNECTIONS", "16")),
            redis_prefix=env.get("DEBAR_REDIS_PREFIX", base.redis_prefix),
            pseudonym_keys=env.get("DEBAR_PSEUDONYM_KEYS", base.pseudonym_keys),
            data_dir=Path(env.get("DEBAR_DATA_DIR", str(base.data_dir))),
            sanction_address=env.get("DEBAR_SANCTION_ADDRESS", f"127.0.0.1:{ports['sanction']}"),
            sanction_timeout_s=_float("DEBAR_SANCTION_TIMEOUT_S", env.get("DEBAR_SANCTION_TIMEOUT_S", "2")),
            metrics_port=_int("DEBAR_METRICS_PORT", env.get("DEBAR_METRICS_PORT", "0")),
            log_format=env.get("DEBAR_LOG_FORMAT", base.log_format),
            caller=env.get("DEBAR_CALLER", base.caller),
            max_batch_items=_int("DEBAR_MAX_BATCH_ITEMS", env.get("DEBAR_MAX_BATCH_ITEMS", "1000")),
        )
        settings.validate()
        return settings

    def check_pseudonym_key(self) -> None:
        """The service that pseudonymises refuses the public dev key anywhere but on loopback."""
        if self.pseudonym_keys == DEV_PSEUDONYM_KEYS and self.host not in ("127.0.0.1", "localhost", "::1"):
            raise SettingsError(
                "DEBAR_PSEUDONYM_KEYS must be set when listening beyond this machine (the dev key is public)"
            )

    def validate(self) -> None:
        if self.log_format not in ("console", "json"):
            raise SettingsError("DEBAR_LOG_FORMAT must be 'console' or 'json'")
        if not 0 < self.redis_timeout_s <= 30:
            raise SettingsError("DEBAR_REDIS_TIMEOUT_S must be in (0, 30]")
        if self.redis_cluster and not self.redis_url:
            raise SettingsError("DEBAR_REDIS_CLUSTER needs DEBAR_REDIS_URL (the embedded server is one node)")
        if not self.redis_prefix or any(c in self.redis_prefix for c in "{}: "):
            raise SettingsError("DEBAR_REDIS_PREFIX must be non-empty, without braces, colons or spaces")
        if not 1 <= self.max_batch_items <= 10_000:
            raise SettingsError("DEBAR_MAX_BATCH_ITEMS must be in [1, 10000]")
        for name, port in self.ports.items():
            if not 0 <= port < 65536:
                raise SettingsError(f"DEBAR_{name.upper()}_PORT must be a port number")


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
