"""What the console's pages show, as plain data: the sanction client turns API messages into these, so that
pages, deadlines and the chart never see protobuf. Times are epoch seconds (UTC); 0 means not set."""

from __future__ import annotations

from dataclasses import dataclass, field

# Objection states by their API names without the prefix (OBJECTION_STATE_UNDER_REVIEW -> "under_review"), so
# that a state the server adds arrives as a name, not a number.
FILED = "filed"
UNDER_REVIEW = "under_review"
UPHELD = "upheld"
OVERTURNED = "overturned"
RECONSIDERATION = "reconsideration"
AWAITING_CONFIRMATION = "awaiting_confirmation"
OPEN_STATES = (FILED, UNDER_REVIEW, RECONSIDERATION, AWAITING_CONFIRMATION)
# Every state a reviewer may filter the queue by, in the order an objection goes through them.
KNOWN_STATES = (FILED, UNDER_REVIEW, AWAITING_CONFIRMATION, UPHELD, RECONSIDERATION, OVERTURNED)

STATE_WORDS = {
    FILED: "filed, not yet taken under review",
    UNDER_REVIEW: "under review",
    AWAITING_CONFIRMATION: "overturned, awaiting a second reviewer's confirmation",
    UPHELD: "upheld: the objection was rejected and the record stands",
    RECONSIDERATION: "being reconsidered",
    OVERTURNED: "overturned: the record was corrected",
}


def state_words(state: str) -> str:
    return STATE_WORDS.get(state, state.replace("_", " "))


@dataclass(frozen=True, slots=True)
class Ground:
    """One restriction that made the refusal, as logged when the decision was made."""

    restriction_id: str
    measure: str
    source: str
    role: str  # "debtor", "legal representative", ...
    via: str  # the masked organisation when the restriction reaches the person through a role
    legal_basis: str
    authority: str
    case_number: str
    effective_from: int
    effective_until: int  # 0: until lifted


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    decided_at: int
    at: int  # the time the check asked about
    caller: str
    id_type: str  # "RIC" or "USCC"
    measure: str
    refused: bool
    grounds: tuple[Ground, ...]
    exempted_by: str = ""  # the exemption id when a court permit turned a refusal into this allow


@dataclass(frozen=True, slots=True)
class Transition:
    from_state: str  # "" for the filing
    to_state: str
    actor: str
    reason: str
    at: int


@dataclass(frozen=True, slots=True)
class Objection:
    objection_id: str
    decision_id: str
    state: str
    statement: str
    contact: str
    filed_at: int
    review_due: int
    correction_due: int
    reconsideration_request_due: int
    overdue: bool  # as the sanction service judged it when it answered
    history: tuple[Transition, ...] = ()
    resolved_by: str = ""  # the reviewer whose resolution stands or awaits confirmation
    confirmed_by: str = ""  # the second reviewer, who confirmed an overturn

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def reconsidered(self) -> bool:
        return any(t.to_state == RECONSIDERATION for t in self.history)


@dataclass(frozen=True, slots=True)
class ObjectionGuide:
    summary: str
    review_days: int
    correction_working_days: int
    reconsideration_request_days: int


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the codes in a decision mean, from SanctionService.ListMeasures."""

    measures: dict[str, str] = field(default_factory=dict)  # code -> description
    sources: dict[str, str] = field(default_factory=dict)  # code -> description
    guides: dict[str, ObjectionGuide] = field(default_factory=dict)  # source code -> how to object

    def measure(self, code: str) -> str:
        return self.measures.get(code, code)

    def source(self, code: str) -> str:
        return self.sources.get(code, code)

    def guide_for(self, decision: Decision) -> ObjectionGuide | None:
        """How to object to this decision: the rules of its first ground's source (the sanction service takes
        the deadlines from the same source)."""
        if not decision.grounds:
            return None
        return self.guides.get(decision.grounds[0].source)


@dataclass(frozen=True, slots=True)
class ReceiptStatus:
    """Whether the decision's receipt verifies against the signed checkpoint (the transparency-log issue)."""

    available: bool
    verified: bool = False
    words: str = ""
