"""The pure parts of debar authz: a route's context_extensions, the subject found in Envoy's HttpRequest, the named
rule sets against the catalogue and authz's own scopes, and the platform hook for delegation."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from debar.authz.delegation import platform_of
from debar.authz.route import RouteMisconfigured, route_config
from debar.authz.rule_sets import RULE_SETS
from debar.authz.subject import BadSubject, BodyNotSent, find_subject
from debar.common.identifiers import IdKind
from tests.support.envoy import check_request
from tests.support.subjects import new_ric, new_uscc

HEADER = {"debar.measures": "RAIL_G_TRAIN", "debar.subject.header": "X-Passenger-Id", "debar.subject.type": "ric"}


def test_a_header_route_reads_lower_cased_and_typed():
    route = route_config(HEADER)
    assert route.measures == ("RAIL_G_TRAIN",)
    assert (route.subject.header, route.subject.kind, route.subject.where) == ("x-passenger-id", IdKind.RIC, "header")


def test_a_rule_set_route_takes_the_rule_sets_measures_and_kind():
    route = route_config({"debar.check": "tender-bid", "debar.subject.json": "bidder.uscc", "other.key": "ignored"})
    assert route.measures == ("PROCUREMENT_BID",) and route.subject.kind is IdKind.USCC
    assert route.subject.json_path == ("bidder", "uscc") and route.rule_set == "tender-bid"


@pytest.mark.parametrize(
    ("extensions", "key"),
    [
        ({}, "debar.measures"),
        ({"debar.measures": "RAIL_G_TRAIN, rail_g_train", "debar.subject.header": "x", "debar.subject.type": "RIC"},
         "debar.measures"),
        ({"debar.measures": "A,A", "debar.subject.header": "x", "debar.subject.type": "RIC"}, "debar.measures"),
        ({"debar.measures": ",".join(f"M{i}" for i in range(17)), "debar.subject.header": "x",
          "debar.subject.type": "RIC"}, "debar.measures"),
        ({"debar.measures": "A", "debar.subject.type": "RIC"}, "debar.subject.header"),
        ({"debar.measures": "A", "debar.subject.header": "x y", "debar.subject.type": "RIC"}, "debar.subject.header"),
        ({"debar.measures": "A", "debar.subject.json": "a..b", "debar.subject.type": "RIC"}, "debar.subject.json"),
        ({"debar.measures": "A", "debar.subject.header": "x", "debar.subject.json": "a", "debar.subject.type": "RIC"},
         "debar.subject.header"),
        ({**HEADER, "debar.at": "now"}, "debar.at"),
    ],
)  # fmt: skip
def test_a_wrong_route_names_its_key(extensions, key):
    with pytest.raises(RouteMisconfigured) as raised:
        route_config(extensions)
    assert raised.value.key == key


def test_every_rule_set_asks_catalogue_measures_that_authzs_scopes_cover():
    """A rule set naming a measure the catalogue lost, or one authz's scopes do not reach, would refuse every
    request of its routes with a 500: caught here, not in production."""
    catalogue = json.loads(resources.files("debar").joinpath("data/catalogue.json").read_text())
    checked_by = {m["code"]: m["checked_by"].split(",") for m in catalogue["measures"]}
    scopes = json.loads(resources.files("debar").joinpath("data/scopes.json").read_text())["callers"]["authz"]
    for name, rule_set in RULE_SETS.items():
        assert rule_set.measures, name
        for measure in rule_set.measures:
            assert measure in checked_by, (name, measure)
            assert any(f"check:{domain}" in scopes["scopes"] for domain in checked_by[measure]), (name, measure)


def test_rule_sets_follow_the_domain_services_rules():
    assert RULE_SETS["rail-g-train"].measures == ("RAIL_G_TRAIN", "RAIL_TICKET_BAN")
    assert RULE_SETS["rail-ticket"].measures == ("RAIL_TICKET_BAN",)
    assert RULE_SETS["hotel-booking"].measures == ("HOTEL_STAR_RATED",)


def _http(**kwargs):  # type: ignore[no-untyped-def]
    return check_request({}, **kwargs).attributes.request.http


@pytest.mark.parametrize("raw_headers", [False, True])
def test_a_header_is_found_in_either_form_whatever_its_case(raw_headers):
    person = new_ric()
    http = _http(headers={"X-Passenger-ID": f" {person} "}, raw_headers=raw_headers)
    assert find_subject(http, route_config(HEADER).subject).number == person


def test_a_company_in_a_nested_body_field():
    company = new_uscc()
    source = route_config({"debar.check": "tender-bid", "debar.subject.json": "bid.0.bidder"}).subject
    assert find_subject(_http(body={"bid": [{"bidder": company}]}, raw_body=True), source).number == company


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"a": {"b": None}}, "must be a string"),
        ({"a": []}, "a.b not found"),
        ({"a": "text"}, "a.b not found"),
        ([1, 2], "a not found"),
        ("\ufeff{", "not JSON"),
    ],
)
def test_a_bad_body_names_the_field(body, reason):
    source = route_config({"debar.measures": "A", "debar.subject.json": "a.b", "debar.subject.type": "RIC"}).subject
    with pytest.raises(BadSubject) as raised:
        find_subject(_http(body=body), source)
    assert (raised.value.where, raised.value.field) == ("body", "a.b") and reason in raised.value.reason


def test_an_error_never_repeats_the_value():
    person = new_ric()
    bad = person[:-1] + ("0" if person[-1] != "0" else "1")
    with pytest.raises(BadSubject) as raised:
        find_subject(_http(headers={"x-passenger-id": bad}), route_config(HEADER).subject)
    assert bad not in str(raised.value)


def test_a_body_envoy_did_not_send_is_a_misconfiguration():
    http = _http(body={"a": {"b": new_ric()}})
    http.ClearField("body")
    source = route_config({"debar.measures": "A", "debar.subject.json": "a.b", "debar.subject.type": "RIC"}).subject
    with pytest.raises(BodyNotSent):
        find_subject(http, source)


def test_the_platform_is_the_downstream_principal_envoy_authenticated():
    assert platform_of(check_request({}).attributes) == "spiffe://cluster.local/ns/shop/sa/checkout"
    assert platform_of(check_request({}, principal="").attributes) == ""
    assert platform_of(check_request({}, principal="x" * 300).attributes) == ""
