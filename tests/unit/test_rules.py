"""The check rule and its inputs, as pure logic."""

from __future__ import annotations

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
from debar.sanction.domain.model import EntryKind, IndexEntry, Outcome, Role
from debar.sanction.domain.rules import evaluate

G, HOTEL = 1 << 0, 1 << 5


def restriction(mask=G, start=100, end=None, role=Role.DEBTOR):
    return IndexEntry(EntryKind.RESTRICTION, "R1", role, mask, start, end)


def exemption(mask=G, start=150, end=200):
    return IndexEntry(EntryKind.EXEMPTION, "X1", None, mask, start, end)


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
