"""Proto messages to domain inputs and domain results to proto messages, for the sanction service's servicers."""

from __future__ import annotations

import functools

from google.rpc import status_pb2

from debar.common.errors import InvalidField
from debar.rpc import wire
from debar.sanction.app.checker import CheckInput
from debar.sanction.domain.catalogue import Catalogue, FailurePolicy, ObjectionRules
from debar.sanction.domain.decisions import Decision, Degradation
from debar.sanction.domain.log_entries import RegistryEntry
from debar.sanction.domain.model import Exemption, IndexEntry, Outcome, PendingLift, Restriction, Role
from debar.v1 import common_pb2, registry_pb2, sanction_pb2

_OUTCOMES = {Outcome.ALLOW: common_pb2.OUTCOME_ALLOW, Outcome.DENY: common_pb2.OUTCOME_DENY}
_STATUS = {
    "publicity": registry_pb2.RESTRICTION_STATUS_PUBLICITY,
    "active": registry_pb2.RESTRICTION_STATUS_ACTIVE,
    "disputed": registry_pb2.RESTRICTION_STATUS_DISPUTED,
    "lifted": registry_pb2.RESTRICTION_STATUS_LIFTED,
    "expired": registry_pb2.RESTRICTION_STATUS_EXPIRED,
}


def role_of(value: int, field: str) -> Role | None:
    if value == common_pb2.ROLE_UNSPECIFIED:
        return None
    try:
        return Role(value)
    except ValueError:
        raise InvalidField(field, f"unknown role {value}") from None


def outcome(value: Outcome | None) -> common_pb2.Outcome.ValueType:
    return _OUTCOMES.get(value, common_pb2.OUTCOME_UNSPECIFIED) if value else common_pb2.OUTCOME_UNSPECIFIED


def check_input(request: sanction_pb2.CheckRequest) -> CheckInput:
    subject = request.subject  # each read of a sub-message makes a wrapper: read once (a batch has 100)
    if request.HasField("at"):
        at = request.at
        seconds, nanos = at.seconds, at.nanos
        return CheckInput(_ID_KINDS(subject.id_type), subject.id, request.measure, seconds, request.min_revision, nanos)
    return CheckInput(_ID_KINDS(subject.id_type), subject.id, request.measure, None, request.min_revision, 0)


_ID_KINDS = wire.id_kind


@functools.lru_cache(maxsize=4096)
def _ground_template(entry: IndexEntry, measure: str) -> common_pb2.Ground:
    """The same restriction grounds many answers: each is built once and copied into responses (a copy costs
    far less than building the message and its timestamps again). Never mutate what this returns."""
    return ground(entry, measure)


@functools.lru_cache(maxsize=64)
def _objection_template(rules: ObjectionRules) -> common_pb2.ObjectionGuide:
    return objection_guide(rules)


def ground(entry: IndexEntry, measure: str) -> common_pb2.Ground:
    return common_pb2.Ground(
        restriction_id=entry.id,
        measure=measure,
        source=entry.source,
        role=int(entry.role or Role.DEBTOR),  # type: ignore[arg-type]
        via=entry.via,
        legal_basis=entry.legal_basis,
        authority=entry.authority,
        case_number=entry.case_number,
        effective_until=wire.timestamp(entry.effective_until),
        effective_from=wire.timestamp(entry.effective_from),
    )


def objection_guide(rules: ObjectionRules) -> common_pb2.ObjectionGuide:
    return common_pb2.ObjectionGuide(
        summary=rules.summary,
        review_days=rules.review_days,
        correction_working_days=rules.correction_working_days,
        reconsideration_request_days=rules.reconsideration_request_days,
    )


def check_response(decision: Decision, catalogue: Catalogue) -> sanction_pb2.CheckResponse:
    """One call's answer, built field by field (for the answers of a batch, fill_check_response copies)."""
    response = sanction_pb2.CheckResponse(
        decision_id=decision.decision_id,
        outcome=outcome(decision.outcome),
        revision=decision.revision,
        measure=decision.query.measure.code,
        catalogue_version=decision.catalogue_version,
        checked_at=wire.timestamp_of_ms(decision.decided_at_ms),
    )
    _add_outcome_parts(response, decision, catalogue)
    return response


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def check_answer(decision: Decision, catalogue: Catalogue) -> bytes:
    """check_response(decision, catalogue).SerializeToString(), byte for byte, without building the message: a
    plain allow or a refusal is its fields' wire bytes in field-number order (the order protobuf serializes in),
    joined from pieces made once (a time's second, its milliseconds, the revision, the measure and catalogue
    version, each restriction's ground, each source's objection guide) and the decision id; an allow under a
    permit or a spooled allow (rare) is built as the message and serialized. For Check, whose handler returns
    these bytes through the method's serializer (rpc/interceptors.passing_bytes). Held to the field-by-field build
    by tests/unit/test_convert.py."""
    ms = decision.decided_at_ms
    if decision.exemption is not None or decision.degradation is not _NONE or ms < 0:
        return check_response(decision, catalogue).SerializeToString()
    outcome = decision.outcome
    if outcome is Outcome.ALLOW:
        outcome_bytes = _ALLOW_OUTCOME
    elif outcome is Outcome.DENY:
        outcome_bytes = _DENY_OUTCOME
    else:
        return check_response(decision, catalogue).SerializeToString()
    decision_id = decision.decision_id.encode()
    n = len(decision_id)
    head = (_LENGTHS[n] if n < 0x80 else b"\x0a" + _varint(n)) if n else b""
    seconds = _seconds_bytes(ms // 1000)
    millis = _MILLIS[ms % 1000]
    measure = decision.query.measure.code
    pieces = [head, decision_id, outcome_bytes]
    if outcome is Outcome.DENY:
        pieces += [_ground_bytes(g, measure) for g in decision.grounds]
    pieces += (
        _revision_bytes(decision.revision), _STAMP_LENGTHS[len(seconds) + len(millis)], seconds, millis,
        _measure_and_version(measure, decision.catalogue_version),
    )  # fmt: skip
    if outcome is Outcome.DENY and decision.grounds:
        source = catalogue.sources.get(decision.grounds[0].source)
        if source:
            pieces.append(_objection_bytes(source.objection))
    return b"".join(pieces)


_LENGTHS = tuple(b"\x0a" + bytes((n,)) for n in range(0x80))  # field 1 (decision_id): its tag and a short length
_STAMP_LENGTHS = tuple(b"\x32" + bytes((n,)) for n in range(0x80))  # field 6 (checked_at): its tag and length
# A Timestamp's nanos field (2) for each whole millisecond (none for 0, as protobuf omits a zero).
_MILLIS = tuple(b"\x10" + _varint(m * 1_000_000) if m else b"" for m in range(1000))


@functools.lru_cache(maxsize=8)
def _seconds_bytes(seconds: int) -> bytes:
    """A Timestamp's seconds field (1); none for 0."""
    return b"\x08" + _varint(seconds) if seconds else b""


@functools.lru_cache(maxsize=64)
def _revision_bytes(revision: int) -> bytes:
    """A CheckResponse's revision field (4); none for 0."""
    return b"\x20" + _varint(revision) if revision else b""


@functools.lru_cache(maxsize=256)
def _measure_and_version(measure: str, catalogue_version: str) -> bytes:
    """Fields 7 (measure) and 8 (catalogue_version) of a CheckResponse, as protobuf writes them."""
    return sanction_pb2.CheckResponse(measure=measure, catalogue_version=catalogue_version).SerializeToString()


@functools.lru_cache(maxsize=4096)
def _ground_bytes(entry: IndexEntry, measure: str) -> bytes:
    """One `grounds` entry (field 3) of a CheckResponse, as protobuf writes it."""
    return sanction_pb2.CheckResponse(grounds=[_ground_template(entry, measure)]).SerializeToString()


@functools.lru_cache(maxsize=64)
def _objection_bytes(rules: ObjectionRules) -> bytes:
    """The `objection` field (9) of a CheckResponse, as protobuf writes it."""
    return sanction_pb2.CheckResponse(objection=_objection_template(rules)).SerializeToString()


class ResponseParts:
    """What the answers of one call share (a batch's decisions come from one log record: one time, revision and
    catalogue version; most share a measure), built once and copied into each answer: a copy of a prebuilt
    message costs half of building its fields again."""

    def __init__(self) -> None:
        self._key: tuple[int, int, str, str] | None = None
        self._template = sanction_pb2.CheckResponse()

    def template(self, decision: Decision) -> sanction_pb2.CheckResponse:
        key = (decision.decided_at_ms, decision.revision, decision.catalogue_version, decision.query.measure.code)
        if key != self._key:
            self._key = key
            self._template = sanction_pb2.CheckResponse(
                revision=decision.revision, measure=key[3], catalogue_version=decision.catalogue_version,
                checked_at=wire.timestamp_of_ms(decision.decided_at_ms),
            )  # fmt: skip
        return self._template


def fill_check_response(
    response: sanction_pb2.CheckResponse, decision: Decision, catalogue: Catalogue, parts: ResponseParts | None = None
) -> None:
    """`response` (empty) as the answer of `decision`; `parts`: the call's shared parts, when it answers several."""
    response.CopyFrom((parts or ResponseParts()).template(decision))
    response.decision_id = decision.decision_id
    response.outcome = _OUTCOMES[decision.outcome]
    if decision.outcome is Outcome.DENY or decision.exemption is not None or decision.degradation is not _NONE:
        _add_outcome_parts(response, decision, catalogue)


_NONE = Degradation.NONE


_RESULT, _RESPONSE, _DECISION_ID = b"\x0a", b"\x0a", b"\x0a"  # field 1 of BatchResult/BatchCheckResponse/...: LEN
_ALLOW_OUTCOME = sanction_pb2.CheckResponse(outcome=common_pb2.OUTCOME_ALLOW).SerializeToString()
_DENY_OUTCOME = sanction_pb2.CheckResponse(outcome=common_pb2.OUTCOME_DENY).SerializeToString()


class BatchAnswers:
    """A BatchCheck's answer, built as its wire bytes and parsed once (in C) into the message: a plain allow (no
    exemption, not degraded: most of a batch) is the bytes of its call's shared parts (ResponseParts), its decision
    id and its outcome, copied from prebuilt bytes, where building its message cost ten times as much. Refusals,
    allows under a permit, spooled allows and errors are built as messages (fill_check_response) and serialized.
    The message is the one the field-by-field build gives (tests/unit/test_convert.py holds the two to each other)."""

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._parts = ResponseParts()
        self._pieces: list[bytes] = []
        self._heads: dict[tuple[int, int, str, str, int], bytes] = {}  # shared parts and id length -> head bytes

    def error(self, status: status_pb2.Status) -> None:
        self._framed(sanction_pb2.BatchResult(error=status).SerializeToString())

    def add(self, result: Decision) -> None:
        pieces = self._pieces
        if result.outcome is Outcome.ALLOW and result.exemption is None and result.degradation is _NONE:
            decision_id = result.decision_id.encode()
            key = (result.decided_at_ms, result.revision, result.catalogue_version, result.query.measure.code,
                   len(decision_id))  # fmt: skip
            head = self._heads.get(key)
            if head is None:
                shared = self._parts.template(result).SerializeToString()
                body = len(shared) + 1 + len(_varint(len(decision_id))) + len(decision_id) + len(_ALLOW_OUTCOME)
                response = _RESPONSE + _varint(body)
                head = self._heads[key] = (
                    _RESULT + _varint(len(response) + body) + response + shared + _DECISION_ID
                    + _varint(len(decision_id))
                )  # fmt: skip
            pieces += (head, decision_id, _ALLOW_OUTCOME)
            return
        message = sanction_pb2.BatchResult()
        fill_check_response(message.response, result, self._catalogue, self._parts)
        self._framed(message.SerializeToString())

    def _framed(self, result: bytes) -> None:
        self._pieces += (_RESULT, _varint(len(result)), result)

    def response(self) -> sanction_pb2.BatchCheckResponse:
        return sanction_pb2.BatchCheckResponse.FromString(b"".join(self._pieces))


def _add_outcome_parts(response: sanction_pb2.CheckResponse, decision: Decision, catalogue: Catalogue) -> None:
    measure = decision.query.measure.code
    if decision.degradation is Degradation.FAILED_OPEN_SPOOLED:
        response.degradation = sanction_pb2.DEGRADATION_FAILED_OPEN_SPOOLED
    if decision.outcome is Outcome.DENY:
        response.grounds.extend(_ground_template(g, measure) for g in decision.grounds)
        source = catalogue.sources.get(decision.grounds[0].source) if decision.grounds else None
        if source:
            response.objection.CopyFrom(_objection_template(source.objection))
    if decision.exemption is not None:
        response.exemption.CopyFrom(exemption_applied(decision.exemption))


def exemption_applied(entry: IndexEntry) -> common_pb2.ExemptionApplied:
    return common_pb2.ExemptionApplied(
        exemption_id=entry.id,
        authority=entry.authority,
        effective_from=wire.timestamp(entry.effective_from),
        effective_until=wire.timestamp(entry.effective_until),
    )


def measures_response(catalogue: Catalogue) -> sanction_pb2.ListMeasuresResponse:
    policies = {
        FailurePolicy.CLOSED: sanction_pb2.FAILURE_POLICY_CLOSED,
        FailurePolicy.OPEN: sanction_pb2.FAILURE_POLICY_OPEN,
    }
    return sanction_pb2.ListMeasuresResponse(
        catalogue_version=catalogue.version,
        measures=[
            sanction_pb2.Measure(
                code=m.code,
                description=m.description,
                checked_by=",".join(m.checked_by),
                failure_policy=policies[m.failure_policy],
            )
            for m in catalogue.measures.values()
        ],
        sources=[
            sanction_pb2.Source(
                code=s.code,
                description=s.description,
                default_measures=list(s.default_measures),
                default_term_days=s.default_term_days,
                publicity_working_days=s.publicity_working_days,
                objection=objection_guide(s.objection),
                lift_needs_confirmation=s.lift_needs_confirmation,
            )
            for s in catalogue.sources.values()
        ],
    )


def restriction(r: Restriction, now: int) -> registry_pb2.Restriction:
    return registry_pb2.Restriction(
        id=r.id,
        source=r.source,
        source_id=r.source_id,
        list_version=r.list_version,
        id_type=wire.id_type(r.subject.kind),
        subject_pseudonym=r.subject.pseudonym,
        masked_name=r.masked_name,
        measures=list(r.measures),
        legal_basis=r.legal_basis,
        authority=r.authority,
        case_number=r.case_number,
        document_number=r.document_number,
        decided_on=r.decided_on,
        effective_from=wire.timestamp(r.effective_from),
        effective_until=wire.timestamp(r.effective_until),
        principals=[
            registry_pb2.Principal(
                id_type=wire.id_type(p.subject.kind),
                pseudonym=p.subject.pseudonym,
                masked_name=p.masked_name,
                role=int(p.role),  # type: ignore[arg-type]
                lifted_at=wire.timestamp(p.lifted_at),
                lift_reason=p.lift_reason,
            )
            for p in r.principals
        ],
        status=_STATUS[r.status(now).value],
        created_at=wire.timestamp(r.created_at),
        updated_at=wire.timestamp(r.updated_at),
        lifted_at=wire.timestamp(r.lifted_at),
        lift_reason=r.lift_reason,
        lift_document_number=r.lift_document_number,
        lifted_by=r.lifted_by,
        lift_confirmed_by=r.lift_confirmed_by,
        pending_lift=pending_lift(r.pending_lift),
    )


def pending_lift(p: PendingLift | None) -> registry_pb2.PendingLift | None:
    if p is None:
        return None
    return registry_pb2.PendingLift(
        asked_by=p.asked_by, asked_at=wire.timestamp(p.asked_at), reason=p.reason, document_number=p.document_number
    )


def exemption(x: Exemption, awaiting: bool) -> registry_pb2.Exemption:
    """`awaiting`: Registry.awaits (stored pending, or granted alone and meeting a court order it does not override
    until confirmed)."""
    return registry_pb2.Exemption(
        id=x.id,
        subject_pseudonym=x.subject.pseudonym,
        measure=x.measure,
        effective_from=wire.timestamp(x.effective_from),
        effective_until=wire.timestamp(x.effective_until),
        authority=x.authority,
        reason=x.reason,
        document_number=x.document_number,
        granted_by=x.granted_by,
        awaiting_confirmation=awaiting,
        confirmed_by=x.confirmed_by,
    )


def registry_change(record_id: str, e: RegistryEntry) -> registry_pb2.RegistryChange:
    return registry_pb2.RegistryChange(
        at=wire.timestamp(e.at), caller=e.caller, on_behalf_of=e.on_behalf_of, action=e.action,
        document_number=e.document_number, reason=e.reason, changed=list(e.changed),
        before=[registry_pb2.RecordField(name=k, value=v) for k, v in e.before],
        after=[registry_pb2.RecordField(name=k, value=v) for k, v in e.after], record_id=record_id,
    )  # fmt: skip
