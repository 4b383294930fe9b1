"""The check rule and its inputs, as pure logic."""

from __future__ import annotations

from dataclasses import replace

import pytest

from debar.common.identifiers import (
    IdKind,
    InvalidIdentifier,
    Pseudonymiser,
    PseudonymKey,
    mask_name,
    parse_keys,
    validate_identifier,
)
from debar.sanction.domain.calendar import add_working_days
from debar.sanction.domain.catalogue import CatalogueError, load_default_catalogue
from debar.sanction.domain.entries import FIELD_SEP, decode_entry, encode_entry
from debar.sanction.domain.model import EntryKind, IndexEntry, Outcome, Role
from debar.sanction.domain.rules import evaluate

G, HOTEL = 1 << 0, 1 << 5


def restriction(mask=G, start=100, end=None, role=Role.DEBTOR):
    return IndexEntry(EntryKind.RESTRICTION, "R1", role, mask, start, end)


def exemption(mask=G, start=150, end=200, confirmed=True):
    return IndexEntry(EntryKind.EXEMPTION, "X1", None, mask, start, end, confirmed=confirmed)


def test_active_restriction_covering_the_measure_denies():
    result = evaluate([restriction()], G, at=150)
    assert result.outcome is Outcome.DENY
    assert [g.id for g in result.grounds] == ["R1"]


@pytest.mark.parametrize("at", [99, 300])
def test_window_is_half_open(at):
    assert evaluate([restriction(start=100, end=300)], G, at).outcome is Outcome.ALLOW


def test_start_is_inclusive():
    assert evaluate([restriction(start=100, end=300)], G, 100).outcome is Outcome.DENY


def test_other_measures_do_not_deny():
    assert evaluate([restriction(mask=HOTEL)], G, 150).outcome is Outcome.ALLOW


def test_exemption_in_window_turns_deny_into_allow_and_says_which():
    result = evaluate([restriction(), exemption()], G, 160)
    assert result.outcome is Outcome.ALLOW
    assert result.exemption is not None and result.exemption.id == "X1"
    assert [g.id for g in result.overridden] == ["R1"]


def test_exemption_outside_window_or_measure_does_not_help():
    assert evaluate([restriction(), exemption()], G, 250).outcome is Outcome.DENY
    assert evaluate([restriction(mask=G | HOTEL), exemption(mask=HOTEL)], G, 160).outcome is Outcome.DENY


def test_no_entries_allow():
    assert evaluate([], G, 1).outcome is Outcome.ALLOW


def test_identifiers_are_validated_with_reasons():
    assert validate_identifier(IdKind.RIC, "11010519491231002x").number == "11010519491231002X"
    assert validate_identifier(IdKind.USCC, "91110000600037341L").number == "91110000600037341L"
    # An unknown region is accepted: the bundled table lags behind.
    assert validate_identifier(IdKind.RIC, "440305197511110044")
    for bad, reason in [
        ("11010519491231002Y", "check character"),
        ("110105194912310", "18 characters"),
        ("11010519491331002X", "check character"),
        ("", "empty"),
    ]:
        with pytest.raises(InvalidIdentifier, match=reason):
            validate_identifier(IdKind.RIC, bad)


def test_impossible_birth_date_is_rejected():
    from stdnum.cn import ric

    body = "11010519490231001"  # 31 February
    number = body + ric.calc_check_digit(body + "0")
    with pytest.raises(InvalidIdentifier, match="birth date"):
        validate_identifier(IdKind.RIC, number)


SECRET_1, SECRET_2 = b"secret-1-of-at-least-32-bytes-long", b"secret-2-of-at-least-32-bytes-long"
ONE, TWO, THREE = (f"key {n} of at least thirty-two bytes".encode() for n in ("one", "two", "three"))


def test_pseudonyms_are_keyed_stable_and_carry_the_key_id():
    subject = validate_identifier(IdKind.RIC, "11010519491231002X")
    one = Pseudonymiser([PseudonymKey("k1", SECRET_1)])
    other = Pseudonymiser([PseudonymKey("k2", SECRET_2), PseudonymKey("k1", SECRET_1)])
    assert one.pseudonym(subject) == one.pseudonym(subject)
    assert one.pseudonym(subject).startswith("k1.")
    assert "11010519491231002X" not in one.pseudonym(subject)
    assert other.pseudonym(subject) != one.pseudonym(subject)
    assert other.all_pseudonyms(subject)[1] == one.pseudonym(subject)
    assert "11010519491231002X" not in repr(subject)


def test_key_spec_is_parsed_and_checked():
    new, old = "n" * 32, "o" * 40
    assert [k.key_id for k in parse_keys(f"new:{new}, old:{old}")] == ["new", "old"]
    for bad in ["", "nocolon", f":{new}", f"bad id:{new}"]:
        with pytest.raises(ValueError):
            parse_keys(bad)


@pytest.mark.parametrize("secret", ["x", "a" * 31, "é" * 15])  # 1, 31 and 30 bytes
def test_a_key_shorter_than_32_bytes_is_refused_without_repeating_it(secret):
    # The attack: a one-character secret makes every pseudonym computable from an ID number by trying every byte.
    with pytest.raises(ValueError, match="at least 32") as raised:
        parse_keys(f"k1:{'s' * 40},k0:{secret}")
    assert "k0" in str(raised.value) and secret not in str(raised.value)
    with pytest.raises(ValueError, match="at least 32"):
        PseudonymKey("k1", secret.encode())
    assert parse_keys("k1:" + "a" * 32)[0].secret == b"a" * 32


def test_names_are_masked():
    assert mask_name("Wang Wei", organisation=False) == "W*******"
    assert mask_name("Acme Trading Co.", organisation=True) == "Ac************o."
    assert mask_name("", organisation=True) == ""


def test_catalogue_is_consistent_and_principals_get_consumption_measures_only():
    catalogue = load_default_catalogue()
    dishonest = catalogue.source("dishonest_persons_list")
    mask = catalogue.mask_of(dishonest.default_measures)
    bound = catalogue.codes_of(catalogue.principal_mask(dishonest, mask))
    assert "PROCUREMENT_BID" not in bound and "RAIL_G_TRAIN" in bound
    assert catalogue.principal_mask(catalogue.source("procurement_debarment"), mask) == 0


def test_catalogue_rejects_duplicate_bits():
    from debar.sanction.domain.catalogue import Catalogue

    data = {
        "version": "x",
        "measures": [
            {"code": "A", "bit": 1, "description": ""},
            {"code": "B", "bit": 1, "description": ""},
        ],
        "sources": [],
    }
    with pytest.raises(CatalogueError):
        Catalogue.from_dict(data)


def test_working_days_skip_weekends():
    friday = 1795478400 + 3 * 86400  # 2026-11-27 00:00 UTC is a Friday
    assert add_working_days(friday, 1) - friday == 3 * 86400  # Monday
    assert add_working_days(friday, 7) - friday == 11 * 86400


def test_a_key_rotation_chains_pseudonyms_so_stored_ones_can_be_moved_forward():
    subject = validate_identifier(IdKind.RIC, "11010519491231002X")
    old = Pseudonymiser([PseudonymKey("k1", ONE)])
    ring = Pseudonymiser([PseudonymKey("k2", TWO), PseudonymKey("k1", ONE)])
    current, previous = ring.chain(subject)
    assert previous == old.pseudonym(subject)  # data written before the rotation
    assert current.startswith("k2.") and ring.pseudonym(subject) == current
    assert ring.forward(previous) == current and ring.forward(current) == current
    assert ring.is_current(current) and not ring.is_current(previous)
    with pytest.raises(ValueError):
        ring.forward("k9.AAAAAAAAAAAAAAAA")


def test_a_staged_key_is_read_but_not_written_until_it_becomes_current():
    subject = validate_identifier(IdKind.RIC, "11010519491231002X")
    keys = [PseudonymKey("k2", TWO), PseudonymKey("k1", ONE)]
    staged, current = Pseudonymiser(keys, staged="k2"), Pseudonymiser(keys)
    new, old = current.chain(subject)
    assert staged.pseudonym_and_alias(subject) == (old, new)  # writes stay under k1; reads also look under k2
    assert current.pseudonym_and_alias(subject) == (new, old)  # writes under k2; reads also look under k1
    assert staged.current_key_id == "k1" and staged.forward(old) == old
    assert staged.is_current(old) and staged.is_current(new)  # what replicas past the stage wrote may stay
    with pytest.raises(ValueError, match="staged key"):
        Pseudonymiser(keys, staged="k1")  # only the newest key can be staged
    with pytest.raises(ValueError, match="staged key"):
        Pseudonymiser(keys[1:], staged="k1")  # and never alone


def test_the_same_subject_is_recognised_under_any_key_of_a_staged_ring():
    subject, someone_else = (validate_identifier(IdKind.RIC, n) for n in ("11010519491231002X", "110105194912310038"))
    keys = [PseudonymKey("k3", THREE), PseudonymKey("k2", TWO), PseudonymKey("k1", ONE)]
    staged = Pseudonymiser(keys, staged="k3")
    p3, p2, p1 = staged.chain(subject)
    assert staged.same_subject(p3, p2) and staged.same_subject(p1, p3) and staged.same_subject(p2, p2)
    assert not staged.same_subject(p3, staged.chain(someone_else)[1])


# -- four eyes: a permit granted by one identity and confirmed by no second -------------------------------------

COURT, RAILWAY = "court_consumption_order", "railway_passenger_credit"
ONE_IDENTITY = frozenset({RAILWAY})  # four_eyes.one_identity_sources of the packaged catalogue, in part


def restriction_of(source, mask=G, start=100, end=None, rid="R1"):
    return IndexEntry(EntryKind.RESTRICTION, rid, Role.DEBTOR, mask, start, end, source=source)


def test_a_permit_granted_alone_overrides_a_restriction_whose_lifts_need_no_confirmation():
    result = evaluate([restriction_of(RAILWAY), exemption(confirmed=False)], G, 160, ONE_IDENTITY)
    assert result.outcome is Outcome.ALLOW and result.exemption is not None
    assert [g.id for g in result.overridden] == ["R1"]


@pytest.mark.parametrize("source", [COURT, "a source the catalogue no longer knows", ""])
def test_a_permit_granted_alone_does_not_override_a_court_order(source):
    alone = exemption(confirmed=False)
    assert evaluate([restriction_of(source), alone], G, 160, ONE_IDENTITY).outcome is Outcome.DENY
    # Nor when a railway record covers too: the court order still refuses, and both are the grounds.
    both = [restriction_of(RAILWAY, rid="R1"), restriction_of(source, rid="R2"), alone]
    result = evaluate(both, G, 160, ONE_IDENTITY)
    assert result.outcome is Outcome.DENY and [g.id for g in result.grounds] == ["R1", "R2"]
    # Confirmed by a second identity, it overrides both.
    confirmed = evaluate([*both[:2], exemption()], G, 160, ONE_IDENTITY)
    assert confirmed.outcome is Outcome.ALLOW and [g.id for g in confirmed.overridden] == ["R1", "R2"]


def test_a_confirmed_permit_is_named_before_one_granted_alone_whatever_their_order():
    alone = IndexEntry(EntryKind.EXEMPTION, "X2", None, G, 150, 200)
    for entries in ([restriction_of(RAILWAY), exemption(), alone], [restriction_of(RAILWAY), alone, exemption()]):
        result = evaluate(entries, G, 160, ONE_IDENTITY)
        assert result.exemption is not None and result.exemption.id == "X1"


def test_a_confirmed_exemption_keeps_its_mark_through_the_packed_form_and_older_entries_read_as_before():
    refs = {"Chaoyang Court": "a"}
    texts = {"a": "Chaoyang Court"}
    confirmed = IndexEntry(EntryKind.EXEMPTION, "X1", None, G, 150, 200, authority="Chaoyang Court", confirmed=True)
    packed = encode_entry(confirmed, refs)
    assert packed.split(FIELD_SEP)[-1] == "1" and decode_entry(packed, texts) == confirmed
    alone = replace(confirmed, confirmed=False)
    assert len(encode_entry(alone, refs).split(FIELD_SEP)) == 11  # the form entries were written in before
    assert decode_entry(encode_entry(alone, refs), texts) == alone
    # A restriction is never marked, whatever it was built with.
    marked = IndexEntry(EntryKind.RESTRICTION, "R1", Role.DEBTOR, G, 100, None, confirmed=True)
    assert decode_entry(encode_entry(marked, refs), texts) == replace(marked, confirmed=False)
