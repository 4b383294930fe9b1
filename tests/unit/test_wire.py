"""The shared wire conversions (IdType <-> IdKind, Timestamp <-> epoch seconds), the status codes of domain errors
both ways, and the table of domain services that `debar serve` and `debar up` read."""

from __future__ import annotations

import sys

import grpc
import pytest
from google.protobuf import descriptor_pool
from google.protobuf.timestamp_pb2 import Timestamp

from debar.cli.services import available_services
from debar.common.errors import Conflict, InvalidField, NotFound, PermissionDenied, RateLimited, Unavailable
from debar.common.identifiers import IdKind
from debar.common.settings import SERVICE_PORTS
from debar.domain_services.runner import DOMAIN_SERVICES
from debar.rpc import wire
from debar.rpc.status import error_type_of, status_code_of
from debar.v1 import common_pb2


@pytest.mark.parametrize("kind", list(IdKind))
def test_every_id_kind_goes_to_the_wire_and_back(kind):
    assert common_pb2.IdType.Name(wire.id_type(kind)) == f"ID_TYPE_{kind.value}"
    assert wire.id_kind(wire.id_type(kind)) is kind


@pytest.mark.parametrize("value", [common_pb2.ID_TYPE_UNSPECIFIED, 3, -1, 2**31 - 1])
def test_an_unknown_id_type_has_no_kind(value):
    assert wire.id_kind(value) is None


def test_seconds_of_an_absent_timestamp_is_none_and_bad_nanos_name_the_field():
    assert wire.seconds(Timestamp(seconds=1_900_000_000, nanos=999_999_999), True, "at") == 1_900_000_000
    assert wire.seconds(Timestamp(seconds=1_900_000_000), False, "at") is None
    with pytest.raises(InvalidField) as raised:
        wire.seconds(Timestamp(seconds=1_900_000_000, nanos=-1), True, "travel_date")
    assert raised.value.field == "travel_date"
    with pytest.raises(InvalidField, match=r"^timestamp: nanos"):
        wire.seconds(Timestamp(nanos=1_000_000_000), True)


def test_timestamps_keep_whole_seconds_and_the_fraction_as_nanos():
    assert wire.timestamp(None) is None
    assert wire.timestamp(1_900_000_000) == Timestamp(seconds=1_900_000_000)
    fractional = wire.timestamp(1_900_000_000.25)
    assert (fractional.seconds, fractional.nanos) == (1_900_000_000, 250_000_000)
    assert wire.timestamp(-0.5) == Timestamp(seconds=-1, nanos=500_000_000)  # nanos stay 0..999999999


def test_milliseconds_are_exact():
    assert wire.timestamp_of_ms(1_900_000_000_123) == Timestamp(seconds=1_900_000_000, nanos=123_000_000)
    assert wire.timestamp_of_ms(999) == Timestamp(seconds=0, nanos=999_000_000)


@pytest.mark.parametrize(
    "error",
    [InvalidField("f", "r"), NotFound("n"), Conflict("c"), Unavailable("u"), PermissionDenied("p"), RateLimited("r")],
)
def test_a_domain_error_comes_back_from_its_status_code(error):
    assert error_type_of(status_code_of(error).value[0]) is type(error)


@pytest.mark.parametrize("code", [grpc.StatusCode.OK, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN])
def test_a_code_no_domain_error_has_maps_to_none(code):
    assert error_type_of(code.value[0]) is None


def test_every_service_has_a_port_and_debar_up_starts_the_sanction_service_first():
    # The gRPC services have DEBAR_<SERVICE>_PORT; the web console its own DEBAR_CONSOLE_PORT.
    assert sorted(available_services()) == sorted([*SERVICE_PORTS, "console"])
    assert available_services()[0] == "sanction"


@pytest.mark.parametrize("name", list(DOMAIN_SERVICES))
def test_each_table_row_pairs_a_grpc_service_with_a_servicer_that_answers_all_of_it(name):
    """A row naming the wrong service would report health and reflection for a service not served; an RPC left to
    the generated base class would answer UNIMPLEMENTED."""
    row = DOMAIN_SERVICES[name]
    service = descriptor_pool.Default().FindServiceByName(row.grpc_service)
    assert row.add_to_server.__name__ == f"add_{service.name}Servicer_to_server"
    base = getattr(sys.modules[row.add_to_server.__module__], f"{service.name}Servicer")
    assert issubclass(row.servicer, base)
    for method in service.methods:
        assert getattr(row.servicer, method.name) is not getattr(base, method.name), method.full_name
