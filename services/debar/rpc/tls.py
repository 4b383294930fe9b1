"""Transport security from settings: mutual TLS credentials for serving and calling (one CA, certificate and key
per process), or plaintext where settings allow it (see Settings.transport)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from debar.common.settings import Settings, SettingsError


def _read(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SettingsError(f"{name}: cannot read {path}: {error.strerror}") from None


def _trio(settings: Settings) -> tuple[bytes, bytes, bytes]:
    return (
        _read("DEBAR_TLS_CA", settings.tls_ca),
        _read("DEBAR_TLS_CERT", settings.tls_cert),
        _read("DEBAR_TLS_KEY", settings.tls_key),
    )


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """Mutual TLS (a client certificate from our CA is required), or None for plaintext where settings allow it;
    raises SettingsError for a server that may not start as configured."""
    if settings.transport() != "mtls":
        return None
    ca, cert, key = _trio(settings)
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """This process's certificate, to call a server that requires mutual TLS; None: plaintext."""
    if not settings.tls:
        return None
    ca, cert, key = _trio(settings)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def aio_channel(settings: Settings, address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    credentials = channel_credentials(settings)
    if credentials is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, credentials, options=list(options))


def channel(settings: Settings, address: str) -> grpc.Channel:
    credentials = channel_credentials(settings)
    return grpc.insecure_channel(address) if credentials is None else grpc.secure_channel(address, credentials)
