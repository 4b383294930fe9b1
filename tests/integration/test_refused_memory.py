"""A refused call frees its request at once. grpc.aio keeps an aborted call's exception on the call's state, and
its traceback held the handler's frame, which holds the request and the call's context (so the state again): a
cycle only the cyclic collector frees, and servers collect their youngest generation only every 50,000
allocations (common/heap.py). Refused calls of a few megabytes each then piled up: a caller with no scope, or no
credential at all, could grow a service past its pod's memory limit (deploy/: 512Mi for the sanction service,
256Mi for the domain services) and have it killed. Real services in processes of their own, real calls."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from debar.v1 import railway_pb2, railway_pb2_grpc, registry_pb2_grpc, watch_pb2, watch_pb2_grpc
from tests.support.requests import impose_request
from tests.support.servers import ServiceProcess, start_service
from tests.support.subjects import new_ric

CALLS, IN_FLIGHT, PAYLOAD = 160, 8, 3_000_000  # 480 MB sent in all, at most 24 MB of it in flight
# What the service may grow by while refusing them: the calls in flight, their copies in grpc's buffers, and the
# allocator's slack. Before the fix, the sanction service grew by about 1 GiB over these calls.
MAX_GROWTH_MIB = 200
SEND = [("grpc.max_send_message_length", 8 << 20)]


def padded(message: Any) -> bytes:
    """The message's bytes and PAYLOAD bytes of an unknown field (number 1000), which protobuf keeps on the parsed
    message: a valid request that carries megabytes."""
    size, n = bytearray(), PAYLOAD
    while n > 0x7F:
        size.append(n & 0x7F | 0x80)
        n >>= 7
    size.append(n)
    return message.SerializeToString() + b"\xc2\x3e" + bytes(size) + b"u" * PAYLOAD  # tag: field 1000, bytes


def rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def own_sanction(service_env: dict[str, str], logs_dir: Path) -> Iterator[ServiceProcess]:
    """A sanction service of this test's own: its memory is what is measured."""
    service = start_service("sanction", {**service_env, "DEBAR_LOG_INTEGRATOR": "off"}, logs_dir)
    yield service
    service.stop()


@pytest.fixture
def own_railway(own_sanction: ServiceProcess, service_env: dict[str, str], logs_dir: Path) -> Iterator[ServiceProcess]:
    service = start_service("railway", {**service_env, "DEBAR_SANCTION_ADDRESS": own_sanction.address}, logs_dir)
    yield service
    service.stop()


def _refuse_many(pid: int, call: Callable[[], None], expected: grpc.StatusCode) -> tuple[int, int]:
    """Sends CALLS refused calls, IN_FLIGHT at a time; the service's RSS before and at its highest."""
    before = peak = rss_mib(pid)
    codes: dict[grpc.StatusCode, int] = {}

    def one(_: int) -> None:
        try:
            call()
        except grpc.RpcError as error:
            codes[error.code()] = codes.get(error.code(), 0) + 1

    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        for start in range(0, CALLS, 20):
            list(pool.map(one, range(start, start + 20)))
            peak = max(peak, rss_mib(pid))
    assert codes == {expected: CALLS}, codes
    return before, peak


@pytest.mark.parametrize(
    ("caller", "refusal"),
    [
        ("platform:evil", grpc.StatusCode.PERMISSION_DENIED),  # a platform, which may not write the registry
        ("clerk:zhao", grpc.StatusCode.INVALID_ARGUMENT),  # a clerk, whose 3 MB legal basis is refused (named)
    ],
)
def test_a_refused_impose_frees_each_request(
    own_sanction: ServiceProcess, caller: str, refusal: grpc.StatusCode
) -> None:
    """Imposes with a 3 MB legal basis, refused: nothing kept."""
    request = impose_request(new_ric())
    request.legal_basis = "x" * PAYLOAD
    with grpc.insecure_channel(own_sanction.address, options=SEND) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        def impose() -> None:
            stub.Impose(request, timeout=30, metadata=(("x-debar-caller", caller),))

        before, peak = _refuse_many(own_sanction.process.pid, impose, refusal)
    assert peak - before <= MAX_GROWTH_MIB, f"the sanction service grew from {before} to {peak} MiB"


def test_invalid_ticket_frees_each_request(own_railway: ServiceProcess) -> None:
    """A platform's CheckTicket with a 3 MB train number, refused by the railway service: nothing kept."""
    request = railway_pb2.CheckTicketRequest(train_number="G" * PAYLOAD)
    request.passenger.id = new_ric()
    with grpc.insecure_channel(own_railway.address, options=SEND) as channel:
        stub = railway_pb2_grpc.RailwayServiceStub(channel)

        def ticket() -> None:
            stub.CheckTicket(request, timeout=30, metadata=(("x-debar-caller", "platform:evil"),))

        before, peak = _refuse_many(own_railway.process.pid, ticket, grpc.StatusCode.INVALID_ARGUMENT)
    assert peak - before <= MAX_GROWTH_MIB, f"the railway service grew from {before} to {peak} MiB"


def test_changes_stream_refused_for_want_of_scope_frees_each_request(own_sanction: ServiceProcess) -> None:
    """A clerk, who may not watch, opens the change feed with a 3 MB cursor: PERMISSION_DENIED, nothing kept."""
    request = watch_pb2.ChangesRequest(after_cursor="c" * PAYLOAD)
    with grpc.insecure_channel(own_sanction.address, options=SEND) as channel:
        stub = watch_pb2_grpc.WatchServiceStub(channel)

        def changes() -> None:
            list(stub.Changes(request, timeout=30, metadata=(("x-debar-caller", "clerk:zhao"),)))

        before, peak = _refuse_many(own_sanction.process.pid, changes, grpc.StatusCode.PERMISSION_DENIED)
    assert peak - before <= MAX_GROWTH_MIB, f"the sanction service grew from {before} to {peak} MiB"


def test_tickets_past_their_deadline_free_each_request(
    own_railway: ServiceProcess, own_sanction: ServiceProcess
) -> None:
    """A platform's valid CheckTickets carrying 3 MB each, with a deadline that passes while railway waits on the
    sanction service (stopped here; a slow one would do): DEADLINE_EXCEEDED, and nothing kept. Before, the
    cancelled call's frames kept the CancelledError, and so themselves and the request: about 400 MiB."""
    request = railway_pb2.CheckTicketRequest(train_number="G123", seat_class=railway_pb2.SEAT_CLASS_SECOND)
    request.passenger.id_type, request.passenger.id = 1, new_ric()
    blob = padded(request)
    with grpc.insecure_channel(own_railway.address, options=SEND) as channel:
        method = channel.unary_unary("/debar.v1.RailwayService/CheckTicket")

        def ticket() -> None:
            method(blob, timeout=0.3, metadata=(("x-debar-caller", "platform:evil"),))

        os.kill(own_sanction.process.pid, signal.SIGSTOP)
        try:
            before, peak = _refuse_many(own_railway.process.pid, ticket, grpc.StatusCode.DEADLINE_EXCEEDED)
        finally:
            os.kill(own_sanction.process.pid, signal.SIGCONT)
    assert peak - before <= MAX_GROWTH_MIB, f"the railway service grew from {before} to {peak} MiB"
