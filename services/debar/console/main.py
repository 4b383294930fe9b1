"""`debar serve console`: wiring only. Settings -> the sanction client, the accounts, the app; served by uvicorn
on DEBAR_HOST:DEBAR_CONSOLE_PORT until SIGTERM (requests in flight get DEBAR_GRACE_S)."""

from __future__ import annotations

import logging
import secrets
import socket
from pathlib import Path

import uvicorn

from debar.common import logs
from debar.common.settings import LOOPBACK, Settings, SettingsError, proxy_networks
from debar.console.accounts import Accounts, AccountsError
from debar.console.app import build_app
from debar.console.sanction_client import SanctionClient
from debar.console.throttle import RateLimiter
from debar.console.web import Console

MIN_SESSION_KEY = 32


def session_key(settings: Settings) -> str:
    """From DEBAR_CONSOLE_SESSION_KEY_FILE; unset (loopback only, see Settings.check_console): a random key, so
    sessions end with the process."""
    if not settings.console_session_key_file:
        return secrets.token_urlsafe(32)
    try:
        key = Path(settings.console_session_key_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"DEBAR_CONSOLE_SESSION_KEY_FILE: cannot read it: {error}") from None
    if len(key) < MIN_SESSION_KEY:
        raise SettingsError(f"DEBAR_CONSOLE_SESSION_KEY_FILE must hold at least {MIN_SESSION_KEY} characters")
    return key


def accounts_of(settings: Settings) -> Accounts | None:
    if settings.console_sign_in != "accounts":
        return None
    try:
        return Accounts.load(settings.console_accounts_path())
    except AccountsError as error:
        raise SettingsError(f"DEBAR_CONSOLE_ACCOUNTS_FILE: {error}") from None


class _WithoutColour(logging.Filter):
    """uvicorn adds a terminal-coloured copy of each message; our log lines carry the plain one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


async def serve(settings: Settings) -> None:
    logs.configure("console", settings.log_format)
    for name in ("uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(_WithoutColour())
    settings.check_console()
    settings.transport()  # the console's own gRPC calls follow the same transport rules (mTLS beyond loopback)
    key, accounts = session_key(settings), accounts_of(settings)
    console = Console(
        client=SanctionClient.connect(settings),
        sign_in=settings.console_sign_in,
        accounts=accounts,
        proxy_header=settings.console_proxy_header,
        proxy_token_header=settings.console_proxy_token_header,
        proxies=proxy_networks(settings.console_trusted_proxies),
        lookups=RateLimiter(settings.console_lookup_rate),
        sign_ins=RateLimiter(settings.console_lookup_rate),
    )
    app = build_app(console, key, secure_cookies=settings.host not in LOOPBACK, health_port=settings.health_port)
    sockets = [_listen(settings.host, settings.console_port, "DEBAR_CONSOLE_PORT")]
    if settings.health_port:
        sockets.append(_listen(settings.host, settings.health_port, "DEBAR_HEALTH_PORT"))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.console_port,
        log_config=None,  # the process-wide logging of logs.configure
        proxy_headers=False,  # the client's address comes from our own trusted-proxy rule (throttle.py)
        server_header=False,
        timeout_graceful_shutdown=int(settings.grace_s),
    )
    await uvicorn.Server(config).serve(sockets=sockets)


def _listen(host: str, port: int, setting: str) -> socket.socket:
    """A bound socket for uvicorn (which then listens on it); one line naming the setting if it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SettingsError(f"{setting}: cannot listen on {host}:{port}: {error.strerror}") from None
    return sock
