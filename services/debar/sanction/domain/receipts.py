"""Receipts: what `debar receipt get` writes and `debar receipt verify` checks offline, with nothing but the
log's public key and the witnesses' (no Redis, no network). Pure: no Redis, no gRPC.

Format `debar-receipt/1` (README "Receipts"): one JSON object, keys sorted, two-space indent, ASCII only (other
characters as \\u escapes), ending in one newline; nothing else. Keys:

    format           "debar-receipt/1"
    decision_id      the external decision id
    entry            base64 (standard, padded) of the decision's canonical log entry bytes (debar-log-entry/1)
    leaf_index       the entry's leaf in the tree
    inclusion_proof  RFC 6962 inclusion proof to the checkpoint's root: base64 hashes, from the leaf upwards
    checkpoint       the signed checkpoint note as text (c2sp.org/tlog-checkpoint in a c2sp.org/signed-note),
                     its signature lines included: the log's and each witness's cosignature

Verification is strict, so that one byte changed anywhere fails, and says why: the file must be exactly the
canonical encoding of what it holds; every signature line must be from a key given (the log key, or a witness
key) and verify; every witness key given must have cosigned; the inclusion proof must lead from SHA-256(0x00 ||
entry) to the checkpoint's root; the entry must decode as a canonical decision entry whose id is decision_id."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

from debar.sanction.domain.log_entries import DecisionEntry, MalformedEntry
from debar.tlog.checkpoint import Checkpoint, CheckpointError, open_checkpoint
from debar.tlog.merkle import leaf_hash
from debar.tlog.note import NoteError, Verifier, parse_note
from debar.tlog.proofs import InvalidProof, verify_inclusion

FORMAT = "debar-receipt/1"
MAX_RECEIPT_BYTES = 1 << 20


class InvalidReceipt(ValueError):
    """The receipt does not prove what it claims; the message says what broke."""


@dataclass(frozen=True)
class Receipt:
    decision_id: str
    entry: bytes
    leaf_index: int
    inclusion_proof: tuple[bytes, ...]
    checkpoint_note: bytes

    def to_bytes(self) -> bytes:
        body = {
            "format": FORMAT,
            "decision_id": self.decision_id,
            "entry": base64.b64encode(self.entry).decode(),
            "leaf_index": self.leaf_index,
            "inclusion_proof": [base64.b64encode(h).decode() for h in self.inclusion_proof],
            "checkpoint": self.checkpoint_note.decode("utf-8"),
        }
        return (json.dumps(body, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode("ascii")


def _b64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidReceipt(f"{what}: not a base64 string")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidReceipt(f"{what}: not base64") from None
    if base64.b64encode(raw).decode() != value:
        raise InvalidReceipt(f"{what}: not canonical base64")
    return raw


def parse_receipt(data: bytes) -> Receipt:
    if len(data) > MAX_RECEIPT_BYTES:
        raise InvalidReceipt(f"larger than {MAX_RECEIPT_BYTES} bytes: not a receipt")
    try:
        body = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as error:
        raise InvalidReceipt(f"not a receipt file (JSON): {error}") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise InvalidReceipt(f"not a {FORMAT} receipt (its format field)")
    expected = {"format", "decision_id", "entry", "leaf_index", "inclusion_proof", "checkpoint"}
    if set(body) != expected:
        raise InvalidReceipt(f"fields {sorted(set(body) ^ expected)} missing or unknown")
    index = body["leaf_index"]
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise InvalidReceipt("leaf_index: not a leaf index")
    proof = body["inclusion_proof"]
    if not isinstance(proof, list):
        raise InvalidReceipt("inclusion_proof: not a list of hashes")
    if not isinstance(body["decision_id"], str) or not isinstance(body["checkpoint"], str):
        raise InvalidReceipt("decision_id and checkpoint are text")
    receipt = Receipt(
        decision_id=body["decision_id"],
        entry=_b64(body["entry"], "entry"),
        leaf_index=index,
        inclusion_proof=tuple(_b64(h, f"inclusion_proof[{i}]") for i, h in enumerate(proof)),
        checkpoint_note=body["checkpoint"].encode("utf-8"),
    )
    if receipt.to_bytes() != data:
        raise InvalidReceipt("the file is not in the receipt's canonical form: changed after it was written")
    return receipt


@dataclass(frozen=True)
class VerifiedReceipt:
    receipt: Receipt
    checkpoint: Checkpoint
    decision: DecisionEntry
    cosigned_by: tuple[str, ...]


def verify_receipt(data: bytes, log_key: Verifier, witness_keys: Sequence[Verifier] = ()) -> VerifiedReceipt:
    """Checks everything a receipt claims; InvalidReceipt naming the first thing that broke."""
    receipt = parse_receipt(data)
    try:
        note = parse_note(receipt.checkpoint_note)
    except NoteError as error:
        raise InvalidReceipt(f"checkpoint: {error}") from None
    known = {(k.name, k.key_id) for k in (log_key, *witness_keys)}
    for signature in note.signatures:
        if (signature.name, signature.key_id) not in known:
            raise InvalidReceipt(
                f"checkpoint: a signature by {signature.name} (key {signature.key_id.hex()}) from no key given "
                "(--log-key, --witness-key)"
            )
    try:
        signed = open_checkpoint(receipt.checkpoint_note, log_key, witnesses=witness_keys)
    except (NoteError, CheckpointError) as error:
        raise InvalidReceipt(f"checkpoint: {error}") from None
    checkpoint = signed.checkpoint
    try:
        verify_inclusion(
            leaf_hash(receipt.entry), receipt.leaf_index, checkpoint.size, receipt.inclusion_proof, checkpoint.root_hash
        )
    except InvalidProof as error:
        raise InvalidReceipt(f"inclusion proof: {error} (the entry, its index or the proof was changed)") from None
    try:
        decision = DecisionEntry.decode(receipt.entry)
    except MalformedEntry as error:
        raise InvalidReceipt(f"entry: not a canonical decision entry: {error}") from None
    if decision.decision_id != receipt.decision_id:
        raise InvalidReceipt(f"entry: the decision logged is {decision.decision_id}, not {receipt.decision_id}")
    return VerifiedReceipt(receipt, checkpoint, decision, tuple(w.name for w in witness_keys))
