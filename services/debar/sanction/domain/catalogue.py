"""The measure catalogue: what each measure forbids, which sources impose which measures, their terms and
objection deadlines. Rules live here as data so they can change without a release."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from typing import Any

from debar.common.errors import InvalidField
from debar.sanction.domain.calendar import DAY, add_months

MAX_MEASURE_BITS = 31  # the check script tests measures with 32-bit bit operations


class FailurePolicy(Enum):
    CLOSED = "closed"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Measure:
    code: str
    bit: int
    description: str
    checked_by: tuple[str, ...]
    failure_policy: FailurePolicy
    binds_principals: bool

    @property
    def mask(self) -> int:
        return 1 << self.bit


@dataclass(frozen=True, slots=True)
class ObjectionRules:
    summary: str
    review_days: int
    correction_working_days: int
    reconsideration_request_days: int
    reconsideration_decision_days: int


@dataclass(frozen=True, slots=True)
class Source:
    code: str
    description: str
    default_measures: tuple[str, ...]
    default_term_days: int  # 0 (and no months): until lifted
    publicity_working_days: int
    binds_principals: bool
    objection: ObjectionRules
    default_term_months: int = 0  # calendar months: terms the law gives in years
    lists_minors: bool = True  # false: a person under 18 on the decision date is never listed
    # A Lift of its restrictions needs a second registry identity's confirmation (and so does a permit that can
    # override them): see domain/four_eyes.py.
    lift_needs_confirmation: bool = False

    def default_end(self, start: int) -> int | None:
        """When a restriction starting at `start` ends if its record gives no end; None: until lifted."""
        if self.default_term_months:
            return add_months(start, self.default_term_months)
        if self.default_term_days:
            return start + self.default_term_days * DAY
        return None


class CatalogueError(ValueError):
    pass


@dataclass(frozen=True)
class Catalogue:
    version: str
    measures: dict[str, Measure]
    sources: dict[str, Source]
    _masks: dict[tuple[str, ...], int] = field(default_factory=dict, compare=False, repr=False)  # a cache

    def measure(self, code: str, field: str = "measure") -> Measure:
        found = self.measures.get(code)
        if found is None:
            if not code:
                raise InvalidField(field, "is empty; give a catalogue code such as RAIL_G_TRAIN")
            raise InvalidField(field, f"unknown measure {code[:64]!r}; see SanctionService.ListMeasures")
        return found

    def source(self, code: str, field: str = "source") -> Source:
        found = self.sources.get(code)
        if found is None:
            known = ", ".join(sorted(self.sources))
            raise InvalidField(field, f"unknown source {code[:64]!r}; one of: {known}")
        return found

    def mask_of(self, codes: tuple[str, ...] | list[str]) -> int:
        key = tuple(codes)
        mask = self._masks.get(key)
        if mask is None:
            mask = 0
            for code in key:
                mask |= self.measures[code].mask
            if len(self._masks) < 4096:
                self._masks[key] = mask
        return mask

    def codes_of(self, mask: int) -> list[str]:
        return [m.code for m in self.measures.values() if mask & m.mask]

    def principal_mask(self, source: Source, mask: int) -> int:
        """The part of a restriction that binds an organisation's principals (consumption measures only)."""
        if not source.binds_principals:
            return 0
        return mask & self.mask_of(self._binding_codes)

    @functools.cached_property
    def _binding_codes(self) -> tuple[str, ...]:
        return tuple(m.code for m in self.measures.values() if m.binds_principals)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalogue:
        try:
            measures = {
                m["code"]: Measure(
                    code=m["code"],
                    bit=int(m["bit"]),
                    description=m["description"],
                    checked_by=tuple(s for s in m.get("checked_by", "").split(",") if s),
                    failure_policy=FailurePolicy(m.get("failure_policy", "closed")),
                    binds_principals=bool(m.get("binds_principals", False)),
                )
                for m in data["measures"]
            }
            sources = {
                s["code"]: Source(
                    code=s["code"],
                    description=s["description"],
                    default_measures=tuple(s["default_measures"]),
                    default_term_days=int(s.get("default_term_days", 0)),
                    publicity_working_days=int(s.get("publicity_working_days", 0)),
                    binds_principals=bool(s.get("binds_principals", False)),
                    objection=ObjectionRules(**s["objection"]),
                    default_term_months=int(s.get("default_term_months", 0)),
                    lists_minors=bool(s.get("lists_minors", True)),
                    lift_needs_confirmation=bool(s.get("lift_needs_confirmation", False)),
                )
                for s in data["sources"]
            }
            catalogue = cls(version=str(data["version"]), measures=measures, sources=sources)
        except (KeyError, TypeError, ValueError) as error:
            raise CatalogueError(f"malformed catalogue: {error!r}") from error
        catalogue._check()
        return catalogue

    def _check(self) -> None:
        bits = [m.bit for m in self.measures.values()]
        if len(set(bits)) != len(bits) or not all(0 <= b < MAX_MEASURE_BITS for b in bits):
            raise CatalogueError(f"measure bits must be unique and in [0, {MAX_MEASURE_BITS})")
        for source in self.sources.values():
            unknown = set(source.default_measures) - set(self.measures)
            if unknown:
                raise CatalogueError(f"source {source.code} names unknown measures {sorted(unknown)}")
            if source.default_term_days and source.default_term_months:
                raise CatalogueError(f"source {source.code}: default_term_days or default_term_months, not both")


def load_default_catalogue() -> Catalogue:
    text = resources.files("debar").joinpath("data/catalogue.json").read_text(encoding="utf-8")
    return Catalogue.from_dict(json.loads(text))


def load_catalogue(path: str | None) -> Catalogue:
    if not path:
        return load_default_catalogue()
    with open(path, encoding="utf-8") as handle:
        return Catalogue.from_dict(json.load(handle))
