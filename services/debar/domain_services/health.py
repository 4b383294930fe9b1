"""A domain service is ready only while the sanction service it asks says it is SERVING."""

from __future__ import annotations

from debar.domain_services.sanction_client import SanctionClient
from debar.rpc.server import Readiness


def readiness(client: SanctionClient) -> Readiness:
    return Readiness({"sanction": client.serving})
