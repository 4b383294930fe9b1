"""A BatchCheck's answer built from prebuilt bytes (api/convert.py: BatchAnswers) is the very message the
field-by-field build gives, for every kind of result a batch holds, in order; a Check's answer sent as wire bytes
(convert.check_answer) is, byte for byte, the field-by-field message serialized."""

from __future__ import annotations

from google.rpc import status_pb2

from debar.common.identifiers import IdKind
from debar.rpc.interceptors import passing_bytes
from debar.sanction.api import convert
from debar.sanction.domain.catalogue import load_default_catalogue
from debar.sanction.domain.decisions import CheckQuery, Decision, Degradation
from debar.sanction.domain.model import EntryKind, IndexEntry, Outcome, Role, SubjectRef
from debar.v1 import common_pb2, sanction_pb2

CATALOGUE = load_default_catalogue()
SUBJECT = SubjectRef(IdKind.RIC, "p" * 43, "a3f")
GROUND = IndexEntry(EntryKind.RESTRICTION, "R1", Role.DEBTOR, 1, 1_700_000_000, 1_900_000_000,
                    "court_consumption_order", "", "SPC Art. 3", "Court", "C-1")  # fmt: skip
PERMIT = IndexEntry(EntryKind.EXEMPTION, "X1", None, 1, 1_700_000_000, 1_900_000_000, authority="Court",
                    confirmed=True)  # fmt: skip


def _decision(n: int, measure: str, outcome: Outcome = Outcome.ALLOW, **kw) -> Decision:  # type: ignore[no-untyped-def]
    at_ms = kw.pop("at_ms", 1_764_689_000_123)
    query = CheckQuery(SUBJECT, CATALOGUE.measure(measure), 1_764_689_000)
    return Decision(kw.pop("decision_id", f"{'abcdefghijklmnopqrstuvwxyz'[n % 26]}" * 26), query, outcome,
                    kw.pop("grounds", ()), kw.pop("exemption", None), at_ms, kw.pop("revision", 7),
                    CATALOGUE.version, kw.pop("degradation", Degradation.NONE))  # fmt: skip


def test_a_batch_built_from_bytes_is_the_message_built_field_by_field():
    error = status_pb2.Status(code=3, message="items[4].subject.id: not a valid RIC")
    results: list[Decision | status_pb2.Status] = [
        _decision(0, "RAIL_G_TRAIN"),
        _decision(1, "RAIL_G_TRAIN"),
        _decision(2, "RAIL_G_TRAIN", Outcome.DENY, grounds=(GROUND,)),
        _decision(3, "HOTEL_STAR_RATED"),  # another measure: other shared parts
        error,
        _decision(5, "RAIL_G_TRAIN", grounds=(GROUND,), exemption=PERMIT),  # allowed under a permit
        _decision(6, "RAIL_G_TRAIN", degradation=Degradation.FAILED_OPEN_SPOOLED),
        _decision(7, "RAIL_G_TRAIN", decision_id="x" * 200),  # a longer id: a longer length prefix
        _decision(8, "RAIL_G_TRAIN", revision=300, at_ms=1_764_689_000_999),
        _decision(9, "RAIL_G_TRAIN"),
    ]
    expected = sanction_pb2.BatchCheckResponse()
    answers = convert.BatchAnswers(CATALOGUE)
    parts = convert.ResponseParts()
    for result in results:
        if isinstance(result, status_pb2.Status):
            expected.results.add(error=result)
            answers.error(result)
        else:
            convert.fill_check_response(expected.results.add().response, result, CATALOGUE, parts)
            answers.add(result)
    built = answers.response()
    assert built == expected
    assert built.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    assert [r.WhichOneof("result") for r in built.results] == ["response"] * 4 + ["error"] + ["response"] * 5
    assert built.results[2].response.grounds[0].restriction_id == "R1"
    assert built.results[5].response.exemption.exemption_id == "X1"
    assert built.results[0].response.decision_id == "a" * 26


def test_an_empty_batch_is_an_empty_answer():
    assert convert.BatchAnswers(CATALOGUE).response() == sanction_pb2.BatchCheckResponse()


OTHER_GROUND = IndexEntry(EntryKind.RESTRICTION, "R2", Role.LEGAL_REPRESENTATIVE, 1, 1_600_000_000, None,
                          "court_consumption_order", "C-9", "SPC Art. 3 (2)", "Court ü", "C-2")  # fmt: skip
UNKNOWN_SOURCE = IndexEntry(EntryKind.RESTRICTION, "R3", Role.DEBTOR, 1, 0, 1_900_000_000, "no_such_source")


def test_a_check_answer_from_bytes_is_the_message_built_field_by_field_serialized():
    decisions = [
        _decision(0, "RAIL_G_TRAIN"),
        _decision(1, "HOTEL_STAR_RATED", revision=0),  # revision 0: not on the wire
        _decision(2, "RAIL_G_TRAIN", revision=2**40, at_ms=1_764_689_000_000),  # a whole second: no nanos
        _decision(3, "RAIL_G_TRAIN", at_ms=999),  # seconds 0: only nanos
        _decision(4, "RAIL_G_TRAIN", at_ms=0),  # an empty (but present) checked_at
        _decision(5, "RAIL_G_TRAIN", decision_id="x" * 200),  # a two-byte length
        _decision(6, "RAIL_G_TRAIN", decision_id=""),
        _decision(7, "RAIL_G_TRAIN", Outcome.DENY, grounds=(GROUND,)),
        _decision(8, "RAIL_G_TRAIN", Outcome.DENY, grounds=(GROUND, OTHER_GROUND), revision=300),
        _decision(9, "HOTEL_STAR_RATED", Outcome.DENY, grounds=(UNKNOWN_SOURCE,)),  # no objection guide
        _decision(10, "RAIL_G_TRAIN", Outcome.DENY),  # no grounds
        _decision(11, "RAIL_G_TRAIN", grounds=(GROUND,), exemption=PERMIT),  # allowed under a permit
        _decision(12, "RAIL_G_TRAIN", degradation=Degradation.FAILED_OPEN_SPOOLED),
    ]
    for decision in decisions:
        expected = convert.check_response(decision, CATALOGUE)
        answer = convert.check_answer(decision, CATALOGUE)
        assert answer == expected.SerializeToString(), decision
        assert answer == expected.SerializeToString(deterministic=True), decision
        assert sanction_pb2.CheckResponse.FromString(answer) == expected
    denied = sanction_pb2.CheckResponse.FromString(convert.check_answer(decisions[8], CATALOGUE))
    assert [g.restriction_id for g in denied.grounds] == ["R1", "R2"]
    assert denied.objection.summary and denied.outcome == common_pb2.OUTCOME_DENY


def test_a_wrapped_method_sends_prebuilt_bytes_as_they_are_and_serializes_messages():
    serialize = passing_bytes(sanction_pb2.CheckResponse.SerializeToString)
    assert serialize is not None
    message = sanction_pb2.CheckResponse(decision_id="d", outcome=common_pb2.OUTCOME_ALLOW)
    assert serialize(message) == message.SerializeToString()
    assert serialize(b"\x0a\x01d") == b"\x0a\x01d"
    assert passing_bytes(serialize) is serialize  # a chain of wrappers passes them once
    assert passing_bytes(None) is None
