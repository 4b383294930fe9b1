"""How long decisions stay in Redis before `debar log archive` moves them to files. Every decision is kept at
least `keep_days`; a decision that found restrictions (a refusal, or an allow under a court permit) is kept until
the last of them ends plus the longest objection window of the catalogue, so a person can still object to it from
the live log; one whose restriction has no end stays."""

from __future__ import annotations

from dataclasses import dataclass

from debar.sanction.domain.catalogue import Catalogue
from debar.sanction.domain.entries import effective_until_of, split_entries
from debar.sanction.domain.log_records import LogEntry, decisions_of

DAY = 86400


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    keep_s: int
    objection_window_s: int

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue, keep_days: int) -> RetentionPolicy:
        window_days = max(
            (
                s.objection.review_days
                + s.objection.reconsideration_request_days
                + s.objection.reconsideration_decision_days
                for s in catalogue.sources.values()
            ),
            default=0,
        )
        return cls(keep_days * DAY, window_days * DAY)

    def archivable(self, record: LogEntry, now: int) -> bool:
        decided_s = int(record.stream_id.split("-")[0]) // 1000
        if now - decided_s < self.keep_s:
            return False
        try:
            decisions = decisions_of(record)
        except ValueError:  # not what the check script writes (an insider's record): kept as evidence, in Redis
            return False
        for decision in decisions:
            for ground in split_entries(decision["grounds"]):
                until = effective_until_of(ground)
                if until is None or now < until + self.objection_window_s:
                    return False
        return True
