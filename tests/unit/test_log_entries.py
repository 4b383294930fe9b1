"""The canonical entry bytes (domain/log_entries.py): one record has exactly one encoding, it decodes back to what
was encoded, and anything else is refused."""

from __future__ import annotations

import contextlib

import pytest

from debar.sanction.domain.log_entries import (
    DecisionEncoder,
    DecisionEntry,
    EntryKind,
    LoggedExemption,
    LoggedGround,
    MalformedEntry,
    ObjectionEntry,
    RegistryEntry,
    RekeyEntry,
    decode,
    encode,
    escape,
    unescape,
)

GROUND = LoggedGround("RDEBTOR1", "LEGAL_REPRESENTATIVE", 1700000000, None, "SPC_DEFAULTERS", "Acme, Ltd.",
                      "Art. 3%\nline two", "Court, Beijing", "(2024) 京01执123号")  # fmt: skip
DECISION = DecisionEntry(
    decision_id="d3q2x", at_ms=1764250000123, catalogue_version="2026.1", caller="railway",
    on_behalf_of="platform:12306", revision=42, id_type="RIC", subject="pseudo=", measure="RAIL_G_TRAIN",
    checked_at=1764250000, outcome="DENY", grounds=(GROUND, GROUND), exemption=None,
)  # fmt: skip


def test_a_decision_entry_is_its_documented_lines_in_order():
    text = DECISION.encode().decode()
    lines = text.split("\n")
    assert lines[0] == "debar-log-entry/1 decision"
    assert [line.partition("=")[0] for line in lines[1:-1]] == [
        "id", "at_ms", "catalogue", "caller", "on_behalf_of", "revision", "id_type", "subject", "measure",
        "checked_at", "outcome", "ground", "ground", "exemption", "spooled",
    ]  # fmt: skip
    assert "on_behalf_of=platform:12306\n" in text
    assert "ground=RDEBTOR1,LEGAL_REPRESENTATIVE,1700000000,,SPC_DEFAULTERS,Acme%2C Ltd.,Art. 3%25%0Aline two," in text
    assert text.endswith("spooled=\n")


def test_every_kind_round_trips():
    with_permit = DecisionEntry(**{**DECISION.__dict__, "outcome": "ALLOW",
                                   "exemption": LoggedExemption("XPERMIT", 1, 2, "Court")})  # fmt: skip
    assert DecisionEntry.decode(with_permit.encode()) == with_permit
    assert DecisionEntry.decode(DECISION.encode()) == DECISION
    registry = RegistryEntry(
        at=1, caller="clerk:wang", action="impose", target="RX", subject="p", changed=("shortened", "measures_dropped"),
        before=(("measures", "AIR_TRAVEL RAIL_G_TRAIN"), ("effective_until", "2000")),
        after=(("measures", "AIR_TRAVEL"), ("effective_until", "1000")),
    )  # fmt: skip
    assert RegistryEntry.decode(registry.encode()) == registry
    objection = ObjectionEntry(1, "reviewer:li", "O1", "d1", "", "FILED", "because, well\n")
    assert ObjectionEntry.decode(objection.encode()) == objection
    rekey = RekeyEntry(5, "local", "t2", {"records": 3, "raced": 1})
    assert RekeyEntry.decode(rekey.encode()).counts["records"] == 3


def test_decoding_accepts_only_the_canonical_bytes():
    good = DECISION.encode()
    assert decode(good).kind is EntryKind.DECISION
    broken = [
        good + b"x",  # trailing data
        good[:-1],  # no final line feed
        good.replace(b"debar-log-entry/1", b"debar-log-entry/2"),
        good.replace(b"caller=railway\n", b""),  # a field missing
        good.replace(b"caller=railway\non_behalf_of", b"on_behalf_of=platform:12306\ncaller=railway\non_behalf_of"),
        good.replace(b"Acme%2C", b"Acme%2c"),  # lower-case escape
        good.replace(b"subject=pseudo=", b"subject=pseudo%3D"),  # needless escape
        good.replace(b"outcome=DENY", b"outcome=DENY\r"),
        good.replace(b"revision=42", b"revision=042"),
        b"\xff" + good,
    ]
    for data in broken:
        with pytest.raises(MalformedEntry):
            DecisionEntry.decode(data)


def test_one_changed_byte_anywhere_changes_or_breaks_the_entry():
    good = DECISION.encode()
    for i in range(len(good)):
        changed = bytearray(good)
        changed[i] ^= 0x01
        with contextlib.suppress(MalformedEntry):
            assert DecisionEntry.decode(bytes(changed)) != DECISION


def test_escaping_is_exact():
    for text in ["", "plain", "%", ",", "\x00\x1f\x7f", "中文%2C", "a=b"]:
        assert unescape(escape(text)) == text
    with pytest.raises(ValueError):
        encode(EntryKind.OBJECTION, {"nonsense": "x"})


def test_the_fast_decision_encoder_writes_the_same_bytes_as_the_entry():
    """DecisionEncoder (the integrator's, a few microseconds an entry) and DecisionEntry.encode (the documented
    format, which `debar log verify` and receipts decode) agree byte for byte, escapes and repeats included."""
    odd = ["", "plain", "a,b", "50%", "line\nbreak", "tab\tx\x7f", "京01执", "=x=", "p%2C"]
    encoder = DecisionEncoder()
    exemption = LoggedExemption("XPERMIT,1", 1, None, "Court%\n")
    count = 0
    for i, text in enumerate(odd * 3):
        other = odd[(i * 5 + 1) % len(odd)]
        grounds = (GROUND, LoggedGround(text, "DEBTOR", i, i + 1, other, text, other, text, other))[: i % 3]
        entry = DecisionEntry(
            decision_id=f"id{text}", at_ms=1764250000123 + i, catalogue_version=other, caller=text,
            on_behalf_of=other, revision=i, id_type=other, subject=text, measure=other, checked_at=1764250000 - i,
            outcome=text or "ALLOW", grounds=grounds, exemption=exemption if i % 2 else None, spooled=other,
        )  # fmt: skip
        fast = encoder.encode(
            entry.decision_id, DecisionEncoder.record_part(entry.at_ms, entry.catalogue_version), entry.caller,
            entry.on_behalf_of, entry.revision, entry.id_type, entry.subject, entry.measure, entry.checked_at,
            entry.outcome, "".join(DecisionEncoder.ground_line(g) for g in grounds),
            DecisionEncoder.exemption_value(entry.exemption), entry.spooled,
        )  # fmt: skip
        assert fast == entry.encode(), (i, text)
        count += 1
    assert count == 27


@pytest.mark.parametrize(
    "entry",
    [
        RegistryEntry(at=1, caller="import", action="impose", target="R1", subject="k1.abc", changed=("created",),
                      after=(("source", "COURT"), ("measures", "RAIL_G_TRAIN AIR"), ("effective_until", ""))),
        RegistryEntry(at=1_800_000_000, caller="registry:wang", on_behalf_of="p,1", action="lift", target="R%2",
                      subject="k1.x", document_number="(2026) 1,\n2", reason="paid\x7f", changed=("lifted", "x:%"),
                      before=(("lifted_at", ""), ("name", "a:b,c")), after=(("lifted_at", "5"), ("n", "é\x00"))),
        RegistryEntry(at=0, caller="", action="", target=""),
    ],
)  # fmt: skip
def test_a_registry_entry_encodes_as_the_generic_encoder_does(entry: RegistryEntry):
    """The fast encoder of every import's entries: byte for byte the generic one's, escapes and all."""
    generic = encode(
        EntryKind.REGISTRY,
        {
            "at": entry.at, "caller": entry.caller, "on_behalf_of": entry.on_behalf_of, "action": entry.action,
            "target": entry.target, "subject": entry.subject, "document_number": entry.document_number,
            "reason": entry.reason, "changed": list(entry.changed),
            "before": [f"{k}:{v}" for k, v in entry.before], "after": [f"{k}:{v}" for k, v in entry.after],
        },
    )  # fmt: skip
    assert entry.encode() == generic
    assert RegistryEntry.decode(generic) == entry
