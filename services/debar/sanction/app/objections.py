"""The objection desk: files objections against refusals, moves them through review, and corrects the record
when an overturn is confirmed by a second reviewer. Rules live in domain/objections.py; storage behind
ObjectionStore; the record is changed only through the Registry (disputed marks, lifting a restriction or one
person's role link)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from debar.common.errors import Aborted, AlreadyExists, Conflict, NotFound
from debar.sanction.app.decision_reader import LoggedDecision
from debar.sanction.app.ports import ObjectionStore
from debar.sanction.app.registry import MAX_TEXT, Registry
from debar.sanction.app.unavailable import unavailable_as
from debar.sanction.domain import objections as rules
from debar.sanction.domain.catalogue import Catalogue, ObjectionRules
from debar.sanction.domain.model import EntryKind, Outcome, SubjectRef
from debar.sanction.domain.objections import Objection, ObjectionOutcome, ObjectionState

MAX_LISTED = 500  # objections per page
DESK = "objections"  # the actor the registry log names for a dispute mark no reviewer made (a filing)
DEFAULT_LISTED = 100
_RETRIES = 5  # a step that lost a race re-reads the record and is judged again against its new state

log = structlog.stdlib.get_logger("debar.objections")


class DecisionLookup(Protocol):
    async def get(self, value: str) -> LoggedDecision: ...


class Objections:
    def __init__(
        self,
        store: ObjectionStore,
        decisions: DecisionLookup,
        registry: Registry,
        catalogue: Catalogue,
        clock: Callable[[], float] = time.time,
        token: Callable[[], str] = lambda: secrets.token_hex(6),
    ) -> None:
        self._store = store
        self._decisions = decisions
        self._registry = registry
        self._catalogue = catalogue
        self._clock = clock
        self._token = token

    def now(self) -> int:
        return int(self._clock())

    @unavailable_as("objection data")
    async def file(self, decision_id: str, statement: str, contact: str) -> Objection:
        """Opens an objection on a refusal; AlreadyExists naming the existing objection's id if the decision has
        one. The restrictions behind the refusal are marked disputed and stay in force."""
        rules.text(statement, "statement", rules.MAX_STATEMENT, multiline=True)
        rules.text(contact, "contact", rules.MAX_CONTACT)
        decision = await self._decisions.get(decision_id.strip())
        decision_id, bucket = decision.decision_id, decision.bucket  # a spooled id: the id its replay got
        if decision.outcome is not Outcome.DENY:
            raise Conflict(f"decision {decision_id} is not a refusal; only a refusal can be objected to")
        grounds = [g for g in decision.grounds if g.kind is EntryKind.RESTRICTION]
        source = grounds[0].source if grounds else ""
        objection = rules.file(
            id=rules.objection_id(bucket, self._token()),
            decision_id=decision_id,
            subject=SubjectRef(decision.id_kind, decision.subject_pseudonym, bucket),
            restriction_ids=tuple(g.id for g in grounds),
            source=source,
            rules=self._rules_of(source),
            statement=statement,
            contact=contact,
            now=self.now(),
        )
        written = await self._store.file(objection)
        found = objection if written.done else written.objection
        if found is None:
            raise Conflict(f"decision {decision_id} has an objection whose record is missing; ask an operator")
        if found.is_open:  # also repairs a mark lost to a crash between the two writes, or to other writes
            await self._mark(found, True, found.restriction_ids, DESK, f"objection {found.id} filed")
        if not written.done:
            # The second filer (or a retry) learns the objection's id and nothing of the first filer's.
            raise AlreadyExists(f"decision {decision_id} already has objection {found.id}; nothing was filed")
        return found

    @unavailable_as("objection data")
    async def review(self, objection_id: str, reviewer: str) -> Objection:
        return await self._step(objection_id, lambda o, now: rules.review(o, reviewer, now))

    @unavailable_as("objection data")
    async def resolve(
        self, objection_id: str, outcome: ObjectionOutcome | None, reviewer: str, reason: str
    ) -> Objection:
        """Upheld: the record stands. Overturned: the objection awaits a second reviewer's confirmation (see
        `confirm`) and the record stays in force. Asking to overturn an overturned objection whose correction did
        not complete completes it."""
        current = await self.get(objection_id)
        if self._correction_unfinished(current) and outcome is ObjectionOutcome.OVERTURNED:
            return await self._correct(current)
        upheld_again = current.state is ObjectionState.UPHELD and outcome is ObjectionOutcome.UPHELD
        if upheld_again and rules.same_reviewer(current.resolved_by, reviewer):  # asked again: clears stale marks
            await self._after_move(current, current.restriction_ids)
            return current
        return await self._step(objection_id, lambda o, now: rules.resolve(o, outcome, reviewer, reason, now))

    @unavailable_as("objection data")
    async def confirm(self, objection_id: str, reviewer: str) -> Objection:
        """A reviewer other than the one who resolved it confirms an overturn: the record is corrected for the
        person the decision was about (their restriction, or only their role link), with the objection as the
        reason. Confirming again (a retry, or after a correction that did not complete) completes the correction."""
        current = await self.get(objection_id)
        confirmed_by = current.confirmed_by
        if current.state is ObjectionState.OVERTURNED and confirmed_by and rules.same_reviewer(confirmed_by, reviewer):
            await self._after_move(current, current.restriction_ids)  # asked again: clears marks a race left
            return await self._correct(current) if self._correction_unfinished(current) else current
        confirmed = await self._step(objection_id, lambda o, now: rules.confirm(o, reviewer, now))
        return await self._correct(confirmed)

    @staticmethod
    def _correction_unfinished(objection: Objection) -> bool:
        return objection.state is ObjectionState.OVERTURNED and objection.corrected_at is None

    @unavailable_as("objection data")
    async def request_reconsideration(self, objection_id: str, statement: str) -> Objection:
        return await self._step(objection_id, lambda o, now: rules.request_reconsideration(o, statement, now))

    @unavailable_as("objection data")
    async def get(self, objection_id: str) -> Objection:
        objection_id = objection_id.strip()
        rules.parse_objection_id(objection_id)
        found = await self._store.get(objection_id)
        if found is None:
            raise NotFound(f"no objection {objection_id}")
        return found

    @unavailable_as("objection data")
    async def find(
        self, state: ObjectionState | None, overdue_only: bool, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[Objection], str]:
        """One page, soonest deadline first, and the token of the next page ("" after the last). Overdue only:
        those late at this moment (see Objection.overdue): in the index, exactly those whose deadline passed."""
        size = min(page_size or DEFAULT_LISTED, MAX_LISTED)
        after = rules.parse_page_token(page_token.strip())
        now = self.now()
        states = [state] if state else list(ObjectionState)
        if overdue_only:
            states = [s for s in states if s is not ObjectionState.UPHELD]
        found = await self._store.listed(states, now if overdue_only else None, size + 1, after)
        page = found[:size]
        token = rules.page_token(page[-1]) if len(found) > size else ""
        objections = [p.objection for p in page if p.objection is not None]
        return ([o for o in objections if o.overdue(now)] if overdue_only else objections), token

    @unavailable_as("objection data")
    async def counts(self) -> tuple[dict[str, int], int]:
        """How many objections are in each state, and how many are overdue now (for metrics)."""
        now = self.now()
        by_state = {s.value: await self._store.counted(s, None) for s in ObjectionState}
        overdue = [await self._store.counted(s, now) for s in ObjectionState if s is not ObjectionState.UPHELD]
        return by_state, sum(overdue)

    # -- steps ---------------------------------------------------------------------------------------------

    async def _step(self, objection_id: str, move: Callable[[Objection, int], Objection]) -> Objection:
        """Judges the move against the stored record and writes it if the record did not change meanwhile;
        a rejected move (InvalidField, Conflict) writes nothing."""
        current = await self.get(objection_id)
        for _ in range(_RETRIES):
            moved = move(current, self.now())
            written = await self._store.move(moved, current)
            if written.done:
                await self._after_move(moved, written.cleared)
                return moved
            if written.objection is None:
                raise NotFound(f"no objection {objection_id}")
            current = written.objection
        raise Conflict(f"objection {objection_id} is being changed by another request; try again")

    async def _after_move(self, moved: Objection, cleared: tuple[str, ...]) -> None:
        actor = moved.history[-1].actor if moved.history else DESK
        if moved.is_open:
            await self._mark(moved, True, moved.restriction_ids, actor, f"objection {moved.id} {moved.state.value}")
            return
        if cleared:
            # Another objection may have opened on the same restriction since the script ran.
            counts = await self._store.disputing(cleared)
            undisputed = [r for r, n in zip(cleared, counts, strict=True) if n == 0]
            await self._mark(moved, False, undisputed, actor, f"objection {moved.id} {moved.state.value}")

    async def _mark(self, objection: Objection, disputed: bool, rids: Sequence[str], actor: str, reason: str) -> None:
        """Marks the restrictions (un)disputed after the objection's own write, which has taken effect, where other
        writes to a record kept coming between (Aborted): an open objection's mark is made again by its next step
        (or filing it again), so the filing or step answers what it did; a closed one has no next step, so its
        caller learns the marks stayed and that asking again (the same resolution, or confirmation) clears them."""
        try:
            await self._registry.set_disputed(rids, disputed, actor, reason)
        except Aborted as error:
            log.warning(
                "dispute mark not made", objection_id=objection.id, restriction_ids=list(rids), disputed=disputed,
                reason=error.message,
            )  # fmt: skip
            if not disputed:
                raise Aborted(
                    f"objection {objection.id} is {objection.state.value}, but other writes kept coming between "
                    f"and restrictions {', '.join(rids)[:100]} are still marked disputed: ask again to clear them"
                ) from None

    async def _correct(self, overturned: Objection) -> Objection:
        resolution = overturned.resolution
        why = resolution.reason if resolution else ""
        reason = (
            f"objection {overturned.id} overturned by {overturned.resolved_by}, confirmed by "
            f"{overturned.confirmed_by}: {why}"
        )[:MAX_TEXT]
        for rid in overturned.restriction_ids:
            try:
                await self._registry.lift_link(rid, overturned.subject, reason, overturned.confirmed_by or DESK)
            except NotFound:
                continue  # nothing left to correct
        current = overturned
        for _ in range(_RETRIES):
            corrected = rules.mark_corrected(current, self.now())
            written = await self._store.update(corrected, current)
            if written.done:
                return corrected
            if written.objection is None:
                raise NotFound(f"no objection {overturned.id}")
            current = written.objection
        raise Conflict(f"objection {overturned.id} is being changed by another request; try again")

    def _rules_of(self, source: str) -> ObjectionRules:
        found = self._catalogue.sources.get(source)
        if found is None:  # a refusal with no ground a source names: the strictest review deadline applies
            found = min(self._catalogue.sources.values(), key=lambda s: s.objection.review_days)
        return found.objection
