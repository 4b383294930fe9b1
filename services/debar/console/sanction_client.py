"""The console's one way to the sanction service: every call it makes is a method here, and every answer comes back
as the console's own views (views.py) or one of the errors below, never as protobuf or a gRPC error.

Who calls: the console itself (its certificate, token or, in local mode, x-debar-caller `console`). A reviewer's
action is done as the reviewer: the console names them in `x-debar-on-behalf-of` (it holds the scope `delegate`,
and acts with no more than the reviewer's own scopes), and in the `reviewer` field, which must then be that same
identity. The console's word is not proof of a person: each such call also carries the reviewer's own signed token
in `x-debar-on-behalf-of-token` (the sanction service requires it, DEBAR_DELEGATION_PROOF), the one the
authenticating proxy passed for them (proxy sign-in) or, in accounts sign-in, one the console signs with
DEBAR_CONSOLE_REVIEWER_KEY (ProofSigner: then the console's key is a reviewer credential, as its accounts file is).

A receipt's status (GetDecisionProof) is checked with the tlog library, loaded when first needed. A method a
server answers UNIMPLEMENTED raises NotAvailable, and pages say so."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from debar.common.identifiers import IdKind, InvalidIdentifier, SubjectId, validate_identifier
from debar.common.settings import Settings
from debar.console import views
from debar.rpc import tls
from debar.rpc.callers import CALLER_HEADER, ON_BEHALF_OF_HEADER, ON_BEHALF_OF_TOKEN_HEADER
from debar.v1 import common_pb2, decision_pb2, decision_pb2_grpc, sanction_pb2, sanction_pb2_grpc

if TYPE_CHECKING:  # token mode's module loads cryptography and PyJWT: only when a signing key is set
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from debar.rpc.tokens import Signer

CONSOLE_CALLER = "console"
TOKEN_LIFETIME_S = 300
OBJECTIONS_PAGE = 500  # ListObjections' largest page
MAX_OBJECTION_PAGES = 20  # a full listing (counts, the chart, a decision's objection) reads at most 10,000
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
_ID_TYPES = {common_pb2.ID_TYPE_RIC: "RIC", common_pb2.ID_TYPE_USCC: "USCC"}
_ID_TYPE_OF = {IdKind.RIC: common_pb2.ID_TYPE_RIC, IdKind.USCC: common_pb2.ID_TYPE_USCC}
_ROLES = {
    common_pb2.ROLE_DEBTOR: "debtor",
    common_pb2.ROLE_LEGAL_REPRESENTATIVE: "legal representative",
    common_pb2.ROLE_PRINCIPAL: "principal",
    common_pb2.ROLE_DIRECTLY_RESPONSIBLE: "directly responsible person",
    common_pb2.ROLE_ACTUAL_CONTROLLER: "actual controller",
}
T = TypeVar("T")


# --- what can go wrong, in the console's words ------------------------------------------------------------------


class ConsoleError(Exception):
    """The message is safe to show on a page."""


class NotFound(ConsoleError):
    pass


class InvalidInput(ConsoleError):
    """A field the user gave is not acceptable; `field` is the API's name for it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(ConsoleError):
    """The step is not allowed from where the objection is now (it moved on, or the rule forbids it)."""


class Refused(ConsoleError):
    """The sanction service refused the caller (identity or scope)."""


class NotAvailable(ConsoleError):
    """This server (or these stubs) do not offer the method yet."""


class Busy(ConsoleError):
    """A rate at the sanction service was exhausted."""


class SanctionDown(ConsoleError):
    """The sanction service could not be asked."""


def _error(error: grpc.aio.AioRpcError, what: str) -> ConsoleError:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, _, reason = details.partition(": ")
        return InvalidInput(field, reason) if reason and " " not in field else InvalidInput("", details)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(f"no such {what}")
    if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.ABORTED):
        return Conflict(details)
    if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
        return Refused(details)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return NotAvailable(f"{what}: not available on this server")
    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
        return Busy("the sanction service is busy; try again in a minute")
    return SanctionDown(f"the sanction service cannot be reached ({code.name})")


# --- protobuf -> views ------------------------------------------------------------------------------------------


def receipt_view(decision_id: str, proof: decision_pb2.DecisionProof) -> views.ReceiptStatus:
    """Checks what a console can without the log's key: the entry is this decision's, and the inclusion proof leads
    from its leaf to the root of the checkpoint the receipt carries."""
    from debar.tlog.checkpoint import CheckpointError, parse_checkpoint
    from debar.tlog.merkle import leaf_hash
    from debar.tlog.note import NoteError, parse_note
    from debar.tlog.proofs import InvalidProof, verify_inclusion

    try:
        note = parse_note(bytes(proof.checkpoint.note))
        checkpoint = parse_checkpoint(note.text)
        if bytes(proof.entry).split(b"\n", 2)[1:2] != [b"id=" + decision_id.encode()]:
            raise InvalidProof("the entry is not this decision's")
        verify_inclusion(
            leaf_hash(bytes(proof.entry)), proof.leaf_index, checkpoint.size, list(proof.inclusion_proof),
            checkpoint.root_hash,
        )  # fmt: skip
    except (NoteError, CheckpointError, InvalidProof) as error:
        return views.ReceiptStatus(True, False, words=f"does NOT verify ({error})")
    others = sorted({s.name for s in note.signatures} - {checkpoint.origin})
    cosigned = f", cosigned by {', '.join(others)}" if others else ", not cosigned by a witness"
    return views.ReceiptStatus(
        True, True,
        words=f"verified: leaf {proof.leaf_index} of the checkpoint of size {checkpoint.size} signed as "
        f"{checkpoint.origin}{cosigned}",
    )  # fmt: skip


def _state_name(value: int) -> str:
    try:
        return decision_pb2.ObjectionState.Name(value).removeprefix("OBJECTION_STATE_").lower()  # type: ignore[arg-type]
    except ValueError:
        return f"state {value}"


def _state_value(name: str) -> int:
    return decision_pb2.ObjectionState.Value(f"OBJECTION_STATE_{name.upper()}")


def known_states() -> tuple[str, ...]:
    """The states the API knows (views.KNOWN_STATES that these stubs have)."""
    names = set(decision_pb2.ObjectionState.keys())
    return tuple(s for s in views.KNOWN_STATES if f"OBJECTION_STATE_{s.upper()}" in names)


def decision_view(d: decision_pb2.Decision) -> views.Decision:
    return views.Decision(
        decision_id=d.decision_id,
        decided_at=d.decided_at.seconds,
        at=d.at.seconds,
        caller=d.caller,
        id_type=_ID_TYPES.get(d.id_type, ""),
        measure=d.measure,
        refused=d.outcome == common_pb2.OUTCOME_DENY,
        grounds=tuple(
            views.Ground(
                restriction_id=g.restriction_id,
                measure=g.measure,
                source=g.source,
                role=_ROLES.get(g.role, ""),
                via=g.via,
                legal_basis=g.legal_basis,
                authority=g.authority,
                case_number=g.case_number,
                effective_from=g.effective_from.seconds,
                effective_until=g.effective_until.seconds,
            )
            for g in d.grounds
        ),
        exempted_by=d.exemption.exemption_id,
    )


def objection_view(o: decision_pb2.Objection) -> views.Objection:
    return views.Objection(
        objection_id=o.objection_id,
        decision_id=o.decision_id,
        state=_state_name(o.state),
        statement=o.statement,
        contact=o.contact,
        filed_at=o.filed_at.seconds,
        review_due=o.review_due.seconds,
        correction_due=o.correction_due.seconds,
        reconsideration_request_due=o.reconsideration_request_due.seconds,
        overdue=o.overdue,
        history=tuple(
            views.Transition(
                from_state=""
                if t.from_state == decision_pb2.OBJECTION_STATE_UNSPECIFIED
                else _state_name(t.from_state),
                to_state=_state_name(t.to_state),
                actor=t.actor,
                reason=t.reason,
                at=t.at.seconds,
            )
            for t in o.history
        ),
        resolved_by=o.resolved_by,
        confirmed_by=o.confirmed_by,
    )


def catalogue_view(answer: sanction_pb2.ListMeasuresResponse) -> views.Catalogue:
    return views.Catalogue(
        measures={m.code: m.description for m in answer.measures},
        sources={s.code: s.description for s in answer.sources},
        guides={
            s.code: views.ObjectionGuide(
                s.objection.summary,
                s.objection.review_days,
                s.objection.correction_working_days,
                s.objection.reconsideration_request_days,
            )
            for s in answer.sources
        },
    )


def subject_of(raw: str) -> SubjectId:
    """The person's ID number, as a Resident Identity Card number or else a Unified Social Credit Code; raises
    InvalidInput("id_number", why) when it is neither (the reason says nothing about any record)."""
    number = raw.strip()
    try:
        return validate_identifier(IdKind.RIC, number)
    except InvalidIdentifier as as_ric:
        try:
            return validate_identifier(IdKind.USCC, number)
        except InvalidIdentifier:
            raise InvalidInput("id_number", as_ric.reason) from None


# --- the client -------------------------------------------------------------------------------------------------


class Principal(Protocol):
    """The person a call is made for (accounts.Reviewer): their identity and, from a proxy, their own token."""

    @property
    def identity(self) -> str: ...

    @property
    def proof(self) -> str: ...


MAX_PROOF_SIGNERS = 1024  # reviewers' tokens kept for reuse; emptied when full


class ProofSigner:
    """Accounts sign-in: the console signs its reviewers' proofs itself, as issuer `issuer` (its trust-file entry
    names reviewer:*). One token per reviewer, reused until it nears its end (tokens.Signer)."""

    def __init__(self, key: Ed25519PrivateKey, issuer: str, clock: Callable[[], float] = time.time) -> None:
        self._key, self._issuer, self._clock = key, issuer, clock
        self._signers: dict[str, Signer] = {}

    def __call__(self, identity: str) -> str:
        signer = self._signers.get(identity)
        if signer is None:
            from debar.rpc.tokens import Signer, audience_of

            if len(self._signers) >= MAX_PROOF_SIGNERS:
                self._signers.clear()
            signer = self._signers[identity] = Signer(
                self._key, self._issuer, identity, audience_of("sanction"), TOKEN_LIFETIME_S, self._clock
            )
        return signer.token()


class SanctionClient:
    def __init__(
        self, channel: grpc.aio.Channel, timeout_s: float, signer: Signer | None = None,
        clock: Callable[[], float] = time.time, proofs: ProofSigner | None = None,
    ) -> None:  # fmt: skip
        """`proofs`: accounts sign-in, the console's signer of its reviewers' tokens (None: proxy sign-in, whose
        reviewers bring their own, or no proofs at all: local mode, DEBAR_DELEGATION_PROOF=off)."""
        self._proofs = proofs
        self._channel = channel
        self._decisions = decision_pb2_grpc.DecisionServiceStub(channel)
        self._sanction = sanction_pb2_grpc.SanctionServiceStub(channel)
        self._health = health_pb2_grpc.HealthStub(channel)
        self._timeout_s = timeout_s
        self._signer = signer
        self._clock = clock
        self._catalogue: views.Catalogue | None = None

    @classmethod
    def connect(cls, settings: Settings) -> SanctionClient:
        """Called in the app's start-up, inside its event loop: mTLS with the console's certificate when
        configured, else tokens signed with DEBAR_TOKEN_SIGNING_KEY (as `console`) when it is set, else local mode."""
        channel = tls.aio_channel(settings, settings.sanction_address, _CHANNEL_OPTIONS)
        signer = None
        if settings.token_signing_key and not settings.tls:
            from debar.rpc.tokens import Signer, audience_of, load_signing_key

            key = load_signing_key(settings.token_signing_key)
            issuer = settings.token_issuer or CONSOLE_CALLER
            signer = Signer(key, issuer, CONSOLE_CALLER, audience_of("sanction"), TOKEN_LIFETIME_S)
        proofs = None
        if settings.console_sign_in == "accounts" and settings.console_reviewer_key:
            from debar.rpc.tokens import load_signing_key

            reviewer_key = load_signing_key(settings.console_reviewer_key, "DEBAR_CONSOLE_REVIEWER_KEY")
            proofs = ProofSigner(reviewer_key, settings.console_reviewer_issuer)
        return cls(channel, settings.sanction_timeout_s, signer, proofs=proofs)

    async def close(self) -> None:
        await self._channel.close()

    def _metadata(self, acting_for: Principal | None) -> tuple[tuple[str, str], ...]:
        if self._signer is not None:
            who: tuple[tuple[str, str], ...] = (("authorization", f"Bearer {self._signer.token()}"),)
        else:
            who = ((CALLER_HEADER, CONSOLE_CALLER),)  # ignored by a server that knows callers by certificate
        if acting_for is None:
            return who
        who = (*who, (ON_BEHALF_OF_HEADER, acting_for.identity))
        proof = acting_for.proof or (self._proofs(acting_for.identity) if self._proofs is not None else "")
        return (*who, (ON_BEHALF_OF_TOKEN_HEADER, proof)) if proof else who

    async def _call(
        self, what: str, call: Callable[..., Awaitable[T]], request: Any, acting_for: Principal | None = None
    ) -> T:
        try:
            return await call(request, timeout=self._timeout_s, metadata=self._metadata(acting_for))
        except grpc.aio.AioRpcError as error:
            raise _error(error, what) from None

    async def serving(self) -> bool:
        try:
            answer = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=min(0.5, self._timeout_s))
        except grpc.aio.AioRpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    async def catalogue(self) -> views.Catalogue:
        """What measures and sources mean (read once, then kept: the catalogue changes with a release)."""
        if self._catalogue is None:
            answer = await self._call("catalogue", self._sanction.ListMeasures, sanction_pb2.ListMeasuresRequest())
            self._catalogue = catalogue_view(answer)
        return self._catalogue

    # -- decisions -----------------------------------------------------------------------------------------

    async def decision(self, decision_id: str, acting_for: Principal | None = None) -> views.Decision:
        request = decision_pb2.GetDecisionRequest(decision_id=decision_id)
        return decision_view(await self._call("decision", self._decisions.GetDecision, request, acting_for))

    async def decision_of(self, decision_id: str, subject: SubjectId) -> views.Decision:
        """The decision, if it was about `subject`; NotFound alike for an unknown id and for someone else's (the
        sanction service compares the subject it is given with the decision's: GetDecisionRequest.subject)."""
        person = common_pb2.Subject(id_type=_ID_TYPE_OF[subject.kind], id=subject.number)  # type: ignore[arg-type]
        request = decision_pb2.GetDecisionRequest(decision_id=decision_id, subject=person)
        try:
            return decision_view(await self._call("decision", self._decisions.GetDecision, request))
        except InvalidInput as bad:
            if bad.field.startswith("subject"):
                raise NotFound("no such decision") from None
            raise

    # -- objections ----------------------------------------------------------------------------------------

    async def objection(self, objection_id: str, acting_for: Principal | None = None) -> views.Objection:
        request = decision_pb2.GetObjectionRequest(objection_id=objection_id)
        return objection_view(await self._call("objection", self._decisions.GetObjection, request, acting_for))

    async def objections(
        self,
        state: str = "",
        overdue_only: bool = False,
        page_size: int = 50,
        page_token: str = "",
        acting_for: Principal | None = None,
    ) -> tuple[list[views.Objection], str]:
        """One page, soonest deadline first; `state` "" for every state. Returns the page and the next token."""
        request = decision_pb2.ListObjectionsRequest(
            state=_state_value(state) if state else 0,  # type: ignore[arg-type]
            overdue_only=overdue_only,
            page_size=page_size,
            page_token=page_token,
        )
        answer = await self._call("objections", self._decisions.ListObjections, request, acting_for)
        return [objection_view(o) for o in answer.objections], answer.next_page_token

    async def every_objection(self, acting_for: Principal | None = None) -> tuple[list[views.Objection], bool]:
        """Every objection (for counts and the chart), up to MAX_OBJECTION_PAGES pages; and whether that was all."""
        found: list[views.Objection] = []
        token = ""
        for _ in range(MAX_OBJECTION_PAGES):
            page, token = await self.objections(page_size=OBJECTIONS_PAGE, page_token=token, acting_for=acting_for)
            found += page
            if not token:
                return found, True
        return found, False

    async def objection_on(self, decision_id: str) -> views.Objection | None:
        """The objection filed on a decision, if any. The API has no look-up by decision yet: the listing is
        read (at most MAX_OBJECTION_PAGES pages) until it shows up."""
        token = ""
        for _ in range(MAX_OBJECTION_PAGES):
            page, token = await self.objections(page_size=OBJECTIONS_PAGE, page_token=token)
            for objection in page:
                if objection.decision_id == decision_id:
                    return objection
            if not token:
                break
        return None

    async def file_objection(self, decision_id: str, statement: str, contact: str) -> views.Objection:
        request = decision_pb2.FileObjectionRequest(decision_id=decision_id, statement=statement, contact=contact)
        return objection_view(await self._call("decision", self._decisions.FileObjection, request))

    async def request_reconsideration(self, objection_id: str, statement: str) -> views.Objection:
        request = decision_pb2.RequestReconsiderationRequest(objection_id=objection_id, statement=statement)
        return objection_view(await self._call("objection", self._decisions.RequestReconsideration, request))

    async def review(self, objection_id: str, reviewer: Principal) -> views.Objection:
        """Takes a filed objection under review, as `reviewer` (the signed-in reviewer)."""
        request = decision_pb2.ReviewObjectionRequest(objection_id=objection_id, reviewer=reviewer.identity)
        return objection_view(await self._call("objection", self._decisions.ReviewObjection, request, reviewer))

    async def resolve(self, objection_id: str, outcome: str, reviewer: Principal, reason: str) -> views.Objection:
        """`outcome`: "upheld" or "overturned"."""
        request = decision_pb2.ResolveObjectionRequest(
            objection_id=objection_id,
            outcome=decision_pb2.ObjectionOutcome.Value(f"OBJECTION_OUTCOME_{outcome.upper()}"),
            reviewer=reviewer.identity,
            reason=reason,
        )
        return objection_view(await self._call("objection", self._decisions.ResolveObjection, request, reviewer))

    async def confirm_resolution(self, objection_id: str, reviewer: Principal) -> views.Objection:
        """The second reviewer's confirmation of an overturn (four eyes): awaiting confirmation -> overturned. The
        reviewer who resolved it is refused by the sanction service (Refused)."""
        request = decision_pb2.ConfirmResolutionRequest(objection_id=objection_id, reviewer=reviewer.identity)
        return objection_view(await self._call("confirmation", self._decisions.ConfirmResolution, request, reviewer))

    # -- receipts (the transparency log) ----------------------------------------------------------------------

    async def _proof(self, decision_id: str) -> decision_pb2.DecisionProof:
        request = decision_pb2.GetDecisionProofRequest(decision_id=decision_id)
        try:
            proof: decision_pb2.DecisionProof = await self._decisions.GetDecisionProof(
                request, timeout=self._timeout_s, metadata=self._metadata(None)
            )
        except grpc.aio.AioRpcError as error:
            retry = dict(error.trailing_metadata() or ()).get("retry-after")
            if error.code() == grpc.StatusCode.UNAVAILABLE and retry:
                raise NotAvailable(
                    f"the receipt is not ready yet: a decision enters the signed log within seconds; try again "
                    f"in {retry} s"
                ) from None
            raise _error(error, "receipt") from None
        return proof

    async def receipt(self, decision_id: str) -> bytes:
        """The decision's receipt file (GetDecisionProof; format debar-receipt/1), for `debar receipt verify`."""
        return bytes((await self._proof(decision_id)).receipt)

    async def receipt_status(self, decision_id: str) -> views.ReceiptStatus:
        """Whether the receipt's inclusion proof leads from the decision's entry to the signed checkpoint's root.
        The checkpoint's signatures are for the holder to check offline, with the log's published key."""
        try:
            proof = await self._proof(decision_id)
        except NotAvailable as missing:
            return views.ReceiptStatus(False, words=str(missing))
        except ConsoleError:
            return views.ReceiptStatus(False, words="could not be fetched just now")
        return receipt_view(decision_id, proof)
