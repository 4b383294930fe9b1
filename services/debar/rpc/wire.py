"""The protobuf wire's shared types to and from Python, in one place for every service and command: `IdType` <->
`IdKind`, and `Timestamp` <-> epoch seconds. Protobuf only, no gRPC: pure rules may use it."""

from __future__ import annotations

import math
from typing import overload

from google.protobuf.timestamp_pb2 import Timestamp

from debar.common.identifiers import IdKind
from debar.common.times import checked_nanos
from debar.v1 import common_pb2

_ID_KINDS: dict[int, IdKind] = {common_pb2.ID_TYPE_RIC: IdKind.RIC, common_pb2.ID_TYPE_USCC: IdKind.USCC}
_ID_TYPES: dict[IdKind, common_pb2.IdType.ValueType] = {
    IdKind.RIC: common_pb2.ID_TYPE_RIC,
    IdKind.USCC: common_pb2.ID_TYPE_USCC,
}


def id_kind(id_type: int) -> IdKind | None:
    """None for ID_TYPE_UNSPECIFIED or a number no IdType names: the caller names its own field in the error."""
    return _ID_KINDS.get(id_type)


def id_type(kind: IdKind) -> common_pb2.IdType.ValueType:
    return _ID_TYPES[kind]


def seconds(ts: Timestamp, present: bool, field: str = "") -> int | None:
    """The whole seconds of an optional Timestamp (None when absent); InvalidField naming `field` when its nanos
    are out of range. Checks are to the second: the nanos are checked, not kept."""
    if not present:
        return None
    checked_nanos(ts.nanos, field or "timestamp")
    return ts.seconds


@overload
def timestamp(epoch_s: None) -> None: ...
@overload
def timestamp(epoch_s: float) -> Timestamp: ...
def timestamp(epoch_s: float | None) -> Timestamp | None:
    """A Timestamp of epoch seconds, a fraction kept as nanos; None (an unset optional field) stays None."""
    if epoch_s is None:
        return None
    whole = math.floor(epoch_s)
    return Timestamp(seconds=whole, nanos=int((epoch_s - whole) * 1e9))


def timestamp_of_ms(epoch_ms: int) -> Timestamp:
    """Exact for whole milliseconds (decision times), which a float of seconds is not."""
    return Timestamp(seconds=epoch_ms // 1000, nanos=(epoch_ms % 1000) * 1_000_000)
