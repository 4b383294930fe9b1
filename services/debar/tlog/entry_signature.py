"""Signatures on log entries by the service that writes them, with the log's key (the one that signs checkpoints,
never in Redis). The Merkle tree proves that nothing the integrator saw was changed afterwards; it cannot tell a
record the service wrote from one an insider with Redis access added to a stream before it was integrated: the
integrator signs both. A registry write, an objection step or a rekey run is therefore signed by its writer before
it is sequenced, over the entry's canonical bytes, and `debar log verify` requires a valid signature on every such
entry: a forged lift, confirmation or overturn (or a genuine entry altered) has none, and a genuine one copied into
a stream again is the same signed bytes twice.

The message is a context line and the entry (`debar-entry-signature/1\\n` + entry), so that a signature on an entry
can never be taken for one on a checkpoint note (whose first line is the log's origin) or a cosignature. The
signature is base64(4-byte key id || Ed25519 signature), as in a signed note's signature line.

Decisions are not signed: the check script decides them inside Redis (their outcome is unknown to the service until
the script returns), on the hot path. Their questions are sealed instead, an HMAC per group of decisions under a key
derived from the bucket key (sanction/domain/decision_seals.py); see README, "Decision seals", threat model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from debar.tlog.encoding import decode_base64, encode_base64
from debar.tlog.keys import KEY_ID_SIZE
from debar.tlog.note import Signer, Verifier

CONTEXT = b"debar-entry-signature/1\n"
# An import's chunk (many entries sequenced as one stream record) is signed as a whole as well: over this line and
# the SHA-256 of each of its entries, in order. Each entry's own signature proves it genuine, not that it is still
# where its writer put it: an entry dropped from a chunk (with its record erased from Redis), moved to another
# chunk or reordered leaves every remaining entry's signature valid, and the chunk's broken.
CHUNK_CONTEXT = b"debar-chunk-signature/1\n"


def sign_entry(signer: Signer, entry: bytes) -> str:
    return encode_base64(signer.key_id + signer.sign(CONTEXT + entry))


def _chunk_message(entries: Sequence[bytes]) -> bytes:
    return CHUNK_CONTEXT + b"".join(hashlib.sha256(e).digest() for e in entries)


def sign_chunk(signer: Signer, entries: Sequence[bytes]) -> str:
    return encode_base64(signer.key_id + signer.sign(_chunk_message(entries)))


def chunk_signed_by(verifier: Verifier, entries: Sequence[bytes], signature: str) -> bool:
    """Whether `signature` is `verifier`'s key's on exactly these entries, in this order."""
    return _signed(verifier, _chunk_message(entries), signature)


def entry_signed_by(verifier: Verifier, entry: bytes, signature: str) -> bool:
    """Whether `signature` is `verifier`'s key's on exactly these entry bytes."""
    return _signed(verifier, CONTEXT + entry, signature)


def _signed(verifier: Verifier, message: bytes, signature: str) -> bool:
    if not isinstance(signature, str) or not signature:
        return False
    try:
        raw = decode_base64(signature)
    except ValueError:
        return False
    key_id, sig = raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:]
    return key_id == verifier.key_id and verifier.verify(message, sig)
