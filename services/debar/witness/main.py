"""Wiring of `debar witness`: its key, the logs it follows, its state folder, and the HTTP server.

Stack: Starlette routing on uvicorn (h11), the same as the web console's, rather than the standard library. The
standard library has no asyncio HTTP server (http.server is blocking and thread-per-request, and leaves request
parsing limits, keep-alive and graceful shutdown to us); writing an HTTP/1.1 parser for an internet-facing key
holder is not where a witness should be original. uvicorn brings keep-alive (the spec asks for it), bounded
header parsing, and a graceful stop on SIGTERM (requests in flight get DEBAR_GRACE_S); Starlette adds routing and
405s. One server listens on up to three sockets (witness, health, metrics ports) and the app answers by port.

Transport: plain HTTP, on purpose, also beyond loopback (unlike the gRPC services, the witness does not refuse a
non-loopback DEBAR_HOST without TLS). The protocol authenticates itself: the witness cosigns only checkpoints
signed by a log key it follows, and the log trusts a cosignature only after verifying it with the witness's key;
nothing exchanged is secret (checkpoints are public). TLS adds no trust here; a witness on the internet goes
behind an HTTPS proxy (the client takes https:// URLs), and in a cluster a NetworkPolicy admits only the log.
"""

from __future__ import annotations

import logging
import math
import socket
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry

from debar.common import logs
from debar.common.settings import Settings, SettingsError
from debar.tlog.cosignature import CosignatureSigner, parse_cosigner_signer_key
from debar.tlog.keys import InvalidKey
from debar.tlog.witness import Witness
from debar.witness.app import WitnessCore, build_app
from debar.witness.state_store import StateFolder, StateStoreError


class _NoColourCopies(logging.Filter):
    """uvicorn adds an ANSI-coloured copy of some messages as an extra; our log lines need none."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True


class ListenError(Exception):
    """A port the witness cannot listen on."""


def load_cosigner(path: str) -> CosignatureSigner:
    """The witness key from DEBAR_WITNESS_KEY's file; SettingsError (one line, naming the setting) if it is not
    there, not readable, or not a cosigner signer key."""
    if not path:
        raise SettingsError("DEBAR_WITNESS_KEY is not set: the file of the witness key (`debar witness keygen`)")
    try:
        text = Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) else "not ASCII text"
        raise SettingsError(f"DEBAR_WITNESS_KEY: cannot read {path}: {why}") from None
    try:
        return parse_cosigner_signer_key(text)
    except InvalidKey as error:
        raise SettingsError(f"DEBAR_WITNESS_KEY: {path} does not hold a witness signer key ({error})") from None


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    return sock


def _ports(settings: Settings) -> dict[str, int]:
    ports = {"DEBAR_WITNESS_PORT": settings.witness_port, "DEBAR_HEALTH_PORT": settings.health_port,
             "DEBAR_METRICS_PORT": settings.metrics_port}  # fmt: skip
    used = {name: port for name, port in ports.items() if port}
    if len(set(used.values())) != len(used):
        raise SettingsError(f"{', '.join(used)} must be different ports (0: off)")
    return used


async def serve(settings: Settings) -> None:
    logs.configure("witness", settings.log_format)
    logging.getLogger("uvicorn.error").addFilter(_NoColourCopies())
    cosigner = load_cosigner(settings.witness_key)
    followed = settings.witnessed_logs()
    if not followed:
        raise SettingsError("DEBAR_WITNESS_LOGS names no log: the verifier keys of the logs to witness")
    ports = _ports(settings)
    try:
        store = StateFolder.open(settings.witness_state_path)
    except StateStoreError as error:
        raise SettingsError(f"DEBAR_WITNESS_STATE_DIR: {error}") from None
    sockets: list[socket.socket] = []
    try:
        sockets = [_listen(settings.host, port) for port in ports.values()]
        registry = CollectorRegistry()
        core = WitnessCore(Witness(cosigner, followed), store, registry)
        app = build_app(core, registry, settings.health_port, settings.metrics_port)
        config = uvicorn.Config(
            app,
            http="h11",
            loop="asyncio",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=math.ceil(settings.grace_s),
        )
        logs.get_logger("debar.witness").info(
            "witness", key=cosigner.verifier().verifier_key(), logs=sorted(followed), state=str(store.path)
        )
        await uvicorn.Server(config).serve(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
        store.close()
