"""A security review of issue 11, as the insiders it names, over real gRPC with `debar certs dev` certificates and a
real Redis: each test is an attack that worked on the reviewed main and is refused now."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from debar.local.certs import write_dev_certs
from debar.v1 import decision_pb2
from tests.integration.test_access import (
    audit_lines,
    credentials,
    decisions_of,
    packaged_scopes,
    refused_decision,
    rpc_error,
    start_mtls,
)
from tests.support.requests import subject
from tests.support.servers import ServiceProcess
from tests.support.subjects import new_ric

NOT_FOUND, EXHAUSTED = grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED
# A portal with a tiny rate in a long window: its reads run out after a few.
EXTRA = {"portal:tiny": {"scopes": ["decisions:read", "objections:file"], "rate": {"checks": 3, "window_s": 3600}}}


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("attack-certs")
    write_dev_certs(directory)
    write_dev_certs(directory, services=(), clients=tuple(EXTRA))
    return directory


@pytest.fixture(scope="module")
def sanction_tls(
    service_env: dict[str, str], certs: Path, logs_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    scopes = packaged_scopes()
    scopes["callers"].update(EXTRA)
    path = tmp_path_factory.mktemp("attack-scopes") / "scopes.json"
    path.write_text(json.dumps(scopes))
    env = {k: v for k, v in service_env.items() if k != "DEBAR_PLAINTEXT"}
    service = start_mtls("sanction", {**env, "DEBAR_SCOPES_FILE": str(path)}, certs, logs_dir)
    yield service
    assert service.stop() == 0, service.log()


@pytest.fixture(scope="module")
def as_caller(sanction_tls: ServiceProcess, certs: Path) -> Iterator[Callable[[str], grpc.Channel]]:
    channels: dict[str, grpc.Channel] = {}

    def channel(name: str) -> grpc.Channel:
        if name not in channels:
            channels[name] = grpc.secure_channel(sanction_tls.address, credentials(certs, name))
        return channels[name]

    yield channel
    for chan in channels.values():
        chan.close()


# --- a portal: FileObjection and RequestReconsideration as an ownership oracle ------------------------------------


def test_filing_is_no_unmetered_unaudited_oracle_of_whose_decision_it_is(as_caller, sanction_tls):
    """Before: FileObjection with a guessed `subject` and an empty statement answered NOT_FOUND for a wrong guess and
    INVALID_ARGUMENT (statement) for the right one, filing nothing, counted against no rate and written to no audit
    log: a portal could try every identifier of a region and birth date against one decision id, unseen."""
    person = new_ric()
    decision_id = refused_decision(as_caller, person)
    portal = decisions_of(as_caller("portal:tiny"))

    def guess(number: str) -> grpc.RpcError:
        request = decision_pb2.FileObjectionRequest(decision_id=decision_id, statement="", contact="x@example.cn",
                                                    subject=subject(number))  # fmt: skip
        return rpc_error(portal.FileObjection, request)

    answers = [guess(new_ric()).code() for _ in range(3)]
    assert answers == [NOT_FOUND] * 3
    assert guess(person).code() == EXHAUSTED  # the fourth try is past the rate: the right guess is not told
    lines = audit_lines(sanction_tls, "portal:tiny", "FileObjection")
    assert [line.split("status=")[1].split()[0] for line in lines] == [*(["NOT_FOUND"] * 3), "RESOURCE_EXHAUSTED"]
    reconsider = rpc_error(portal.RequestReconsideration, decision_pb2.RequestReconsiderationRequest(
        objection_id="O" + "0" * 15, statement="again", subject=subject(person)))  # fmt: skip
    assert reconsider.code() == EXHAUSTED
    assert audit_lines(sanction_tls, "portal:tiny", "RequestReconsideration")
