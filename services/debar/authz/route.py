"""A route's debar configuration, read from the `context_extensions` Envoy sends with every check (set per route in
`typed_per_filter_config` -> ExtAuthzPerRoute `check_settings.context_extensions`, or per workload in an Istio
CUSTOM AuthorizationPolicy's provider). Pure: strings in, a RouteConfig or RouteMisconfigured out.

Keys (every value a string, as Envoy's map<string, string> carries them):

    debar.measures        comma-separated catalogue codes, e.g. "RAIL_G_TRAIN,RAIL_TICKET_BAN"
    debar.check           a named rule set instead (rule_sets.py), e.g. "hotel-booking"
                          (exactly one of debar.measures and debar.check)
    debar.subject.header  the request header holding the identifier, e.g. "x-passenger-id" (any case)
    debar.subject.json    or the field of a JSON request body holding it, as a dotted path: "passenger.id";
                          a segment of digits indexes an array ("passengers.0.id"). Needs the filter's
                          `with_request_body` (exactly one of debar.subject.header and debar.subject.json)
    debar.subject.type    RIC or USCC: the kind of identifier there (a rule set may fix it; then it may be
                          left out, and must agree when given)

Any other key that starts with `debar.` is refused as a misconfiguration (a misspelt key must not be quietly
ignored); keys without the prefix belong to someone else and are left alone."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from debar.authz.rule_sets import RULE_SETS
from debar.common.identifiers import IdKind

MEASURES = "debar.measures"
CHECK = "debar.check"
SUBJECT_HEADER = "debar.subject.header"
SUBJECT_JSON = "debar.subject.json"
SUBJECT_TYPE = "debar.subject.type"
KEYS = (MEASURES, CHECK, SUBJECT_HEADER, SUBJECT_JSON, SUBJECT_TYPE)
PREFIX = "debar."

MAX_MEASURES = 16
MAX_PATH_SEGMENTS = 16
_MEASURE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\Z")
_HEADER_NAME = re.compile(r"^[a-z0-9!#$%&'*+.^_`|~-]{1,128}\Z")  # an RFC 9110 token, as Envoy lower-cases it
_SEGMENT = re.compile(r"^[^.\s]{1,128}\Z")


class RouteMisconfigured(Exception):
    """The route's context_extensions do not say what to check: `key` names the one to fix."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SubjectSource:
    """Where the identifier sits: a header (`header`, lower case) or a JSON body field (`json_path`)."""

    kind: IdKind
    header: str = ""
    json_path: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        """How an error names it: the part of the request, then the field."""
        return "header" if self.header else "body"

    @property
    def field(self) -> str:
        return self.header or ".".join(self.json_path)


@dataclass(frozen=True, slots=True)
class RouteConfig:
    measures: tuple[str, ...]
    subject: SubjectSource
    rule_set: str = ""  # the debar.check name, when the measures come from one


def route_config(extensions: Mapping[str, str]) -> RouteConfig:
    """The configuration of the route a check came from; RouteMisconfigured naming the key when it is wrong."""
    return _parse(tuple(sorted((k, v) for k, v in extensions.items() if k.startswith(PREFIX))))


@functools.lru_cache(maxsize=1024)  # a route sends the same extensions on every request
def _parse(items: tuple[tuple[str, str], ...]) -> RouteConfig:
    given = dict(items)
    unknown = sorted(set(given) - set(KEYS))
    if unknown:
        raise RouteMisconfigured(unknown[0], f"unknown key; debar reads {', '.join(KEYS)}")
    measures, rule_set, fixed_kind = _measures(given)
    return RouteConfig(measures, _subject(given, fixed_kind), rule_set)


def _measures(given: dict[str, str]) -> tuple[tuple[str, ...], str, IdKind | None]:
    if (MEASURES in given) == (CHECK in given):
        raise RouteMisconfigured(MEASURES, f"give exactly one of {MEASURES} and {CHECK}")
    if CHECK in given:
        name = given[CHECK].strip()
        rule_set = RULE_SETS.get(name)
        if rule_set is None:
            raise RouteMisconfigured(CHECK, f"unknown rule set {name[:64]!r}; one of {', '.join(RULE_SETS)}")
        return rule_set.measures, name, rule_set.subject_kind
    codes = [code.strip() for code in given[MEASURES].split(",")]
    if not codes or len(codes) > MAX_MEASURES:
        raise RouteMisconfigured(MEASURES, f"name 1 to {MAX_MEASURES} measures, comma-separated")
    for code in codes:
        if not _MEASURE.match(code):
            raise RouteMisconfigured(MEASURES, f"{code[:64]!r} is not a measure code (e.g. RAIL_G_TRAIN)")
    if len(set(codes)) != len(codes):
        raise RouteMisconfigured(MEASURES, "names a measure twice")
    return tuple(codes), "", None


def _subject(given: dict[str, str], fixed_kind: IdKind | None) -> SubjectSource:
    kind = _kind(given.get(SUBJECT_TYPE), fixed_kind)
    if (SUBJECT_HEADER in given) == (SUBJECT_JSON in given):
        raise RouteMisconfigured(SUBJECT_HEADER, f"give exactly one of {SUBJECT_HEADER} and {SUBJECT_JSON}")
    if SUBJECT_HEADER in given:
        header = given[SUBJECT_HEADER].strip().lower()
        if not _HEADER_NAME.match(header):
            raise RouteMisconfigured(SUBJECT_HEADER, "must be a header name, e.g. x-passenger-id")
        return SubjectSource(kind, header=header)
    path = tuple(given[SUBJECT_JSON].strip().split("."))
    if len(path) > MAX_PATH_SEGMENTS or not all(_SEGMENT.match(segment) for segment in path):
        raise RouteMisconfigured(
            SUBJECT_JSON, f"must be a dotted path of 1 to {MAX_PATH_SEGMENTS} field names, e.g. passenger.id"
        )
    return SubjectSource(kind, json_path=path)


def _kind(given: str | None, fixed: IdKind | None) -> IdKind:
    if given is None:
        if fixed is None:
            raise RouteMisconfigured(SUBJECT_TYPE, "is required: RIC or USCC")
        return fixed
    try:
        kind = IdKind(given.strip().upper())
    except ValueError:
        raise RouteMisconfigured(SUBJECT_TYPE, "must be RIC or USCC") from None
    if fixed is not None and kind is not fixed:
        raise RouteMisconfigured(SUBJECT_TYPE, f"this rule set checks {fixed.value} identifiers only")
    return kind
