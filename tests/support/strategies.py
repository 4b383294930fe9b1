"""Hypothesis strategies for property tests over the gRPC API: identifiers valid and not, free text, timestamps
and enum values in and out of range. Valid identifiers use a region code no other test uses, so data a property
test writes never meets another test's subjects."""

from __future__ import annotations

from datetime import date, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from debar.v1 import common_pb2

PROPERTY_REGION = "829901"  # not a real region: accepted (the table lags), and used by no other test
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

# Seconds that land inside the accepted check window (2000-01-01 .. 2100-01-01), and some that do not.
IN_RANGE_SECONDS = st.integers(min_value=946684800, max_value=4102444799)
OUT_OF_RANGE_SECONDS = st.sampled_from([-(2**62), -62135596800, -1, 0, 946684799, 4102444800, 253402300799, INT64_MAX])


@st.composite
def valid_rics(draw: st.DrawFn) -> str:
    day = date(1950, 1, 1) + timedelta(days=draw(st.integers(0, 20000)))
    body = f"{PROPERTY_REGION}{day:%Y%m%d}{draw(st.integers(0, 999)):03d}"
    return body + ric.calc_check_digit(body + "0")


@st.composite
def valid_usccs(draw: st.DrawFn) -> str:
    code = draw(st.text(USCC_ALPHABET, min_size=9, max_size=9))
    body = f"92{PROPERTY_REGION}{code}"
    return body + uscc.calc_check_digit(body + "0")


def _broken(number: str, position: int, char: str) -> str:
    position %= len(number)
    return number[:position] + char + number[position + 1 :]


# Free text: any Unicode (no surrogates: protobuf strings are UTF-8), control characters, and huge values.
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=20),  # ASCII, control characters, C1
    st.sampled_from(["", " ", "\x00", "\n", "\u202e", "\ufeff", "\U0001f600", "A" * 513, "字" * 600]),
    st.sampled_from([65, 129, 257, 513, 1001, 4001, 70_000]).map(lambda n: "x" * n),
)

raw_identifiers = st.one_of(
    valid_rics(),
    valid_usccs(),
    valid_rics().map(lambda n: n.lower()),
    st.tuples(valid_rics(), st.integers(0, 17), st.characters(codec="utf-8")).map(lambda t: _broken(*t)),
    st.tuples(valid_usccs(), st.integers(0, 17), st.characters(codec="utf-8")).map(lambda t: _broken(*t)),
    valid_rics().map(lambda n: n[:-1]),
    st.text(max_size=30),
    st.sampled_from(["", " ", "11010519491231002X", "91310000MA1FL0000N", "１１０１０５１９４９１２３１００２Ｘ"]),
    st.sampled_from([19, 1000, 100_000]).map(lambda n: "1" * n),
)

# In-range values and unknown ones (proto3 keeps unknown enum ints), set through the raw int.
id_types = st.one_of(st.sampled_from([0, 1, 2]), st.integers(-(2**31), INT32_MAX))
roles = st.one_of(st.integers(0, 6), st.integers(-(2**31), INT32_MAX))


@st.composite
def subjects(draw: st.DrawFn) -> common_pb2.Subject:
    number = draw(raw_identifiers)
    if draw(st.booleans()):  # mostly a consistent type, so that the valid half is often valid
        id_type = common_pb2.ID_TYPE_USCC if number[:1] == "9" else common_pb2.ID_TYPE_RIC
    else:
        id_type = draw(id_types)
    return common_pb2.Subject(id_type=id_type, id=number)


def measure_codes(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(known), texts, st.sampled_from([c.lower() for c in known]))


@st.composite
def timestamps(draw: st.DrawFn) -> Timestamp | None:
    """None (field absent), in range, out of range, or with nanos out of range."""
    kind = draw(st.sampled_from(["absent", "in", "out", "nanos"]))
    if kind == "absent":
        return None
    seconds = draw(OUT_OF_RANGE_SECONDS if kind == "out" else IN_RANGE_SECONDS)
    nanos = draw(st.sampled_from([-1, 10**9, -(2**31), INT32_MAX]) if kind == "nanos" else st.integers(0, 10**9 - 1))
    return Timestamp(seconds=seconds, nanos=nanos)


def set_time(message, field: str, value: Timestamp | None) -> None:  # type: ignore[no-untyped-def]
    if value is not None:
        getattr(message, field).CopyFrom(value)


def ric_subject(number: str) -> common_pb2.Subject:
    return common_pb2.Subject(id_type=common_pb2.ID_TYPE_RIC, id=number)


def uscc_subject(number: str) -> common_pb2.Subject:
    return common_pb2.Subject(id_type=common_pb2.ID_TYPE_USCC, id=number)
