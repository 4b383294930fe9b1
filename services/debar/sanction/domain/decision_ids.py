"""Decision ids that reveal nothing. Inside, a decision lives at a location: the log record (stream id) in its
bucket's stream, and its index in the record (DecisionAddress). Outside (Check and BatchCheck answers, the domain
services, ListDecisions, GetDecision, objections, the spool, log entries), it is known only by its external id:
one AES-256 block, a keyed pseudorandom permutation of the location, written in 26 base32 characters. The key is
derived (HKDF-SHA256, info "debar decision ids") from DEBAR_BUCKET_KEY, which is never rotated, so an id keeps
meaning the same decision for ever.

The 128-bit block holds the location in 104 bits and 24 fixed bits of redundancy (a version byte and two zero
bytes, plus the high bits of the bucket): an id that was guessed, or changed in any bit, decrypts to a block whose
redundancy fails but with probability about 2^-27, and is answered as unknown (NOT_FOUND), like an id that decrypts to
a location where no decision is. Neighbouring decisions (the next index, the next record) have ids that share no
visible structure: without the key, nothing about one id tells anything about another.

A decision made while the log could not be written (fail-open, spooled) gets an id of the same form: version 2,
its bucket, and 96 random bits, so it too reveals nothing and cannot be guessed; the log maps it to the location
its replay got."""

from __future__ import annotations

import base64
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from debar.common.errors import InvalidField
from debar.common.identifiers import Placement, derive_from_bucket_key
from debar.sanction.domain.decisions import DecisionAddress, parse_decision_id

HKDF_INFO = b"debar decision ids"
LOGGED, SPOOLED = 1, 2
_SHAPE = re.compile(r"^[a-z2-7]{26}\Z", re.ASCII)
_STREAM_ID = re.compile(r"^(\d{1,15})-(\d{1,9})\Z", re.ASCII)
MAX_MS, MAX_SEQ, MAX_INDEX = 2**48 - 1, 2**24 - 1, 2**16 - 1


def derive_key(bucket_key: bytes) -> bytes:
    """The same key as Placement(bucket_key).derive(HKDF_INFO)."""
    return derive_from_bucket_key(bucket_key, HKDF_INFO)


def _record_prefix(stream_id: str, bucket: str) -> bytes:
    """The first 12 bytes of the blocks of every decision in record `stream_id` of `bucket`'s stream."""
    match = _STREAM_ID.match(stream_id)
    if not match:
        raise ValueError(f"not a stream id: {stream_id!r}")
    ms, seq = int(match[1]), int(match[2])
    b = int(bucket, 16) if len(bucket) == 3 else -1
    if ms > MAX_MS or seq > MAX_SEQ or not 0 <= b < 4096:
        raise ValueError("decision location out of range")
    return bytes([LOGGED]) + ms.to_bytes(6, "big") + seq.to_bytes(3, "big") + b.to_bytes(2, "big")


def _plain(address: DecisionAddress) -> bytes:
    if not 0 <= address.index <= MAX_INDEX:
        raise ValueError("decision location out of range")
    return _record_prefix(address.stream_id, address.bucket) + address.index.to_bytes(2, "big") + b"\x00\x00"


_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"  # RFC 4648 base32, lower case
_TRIPLES: list[str] = []  # every 15 bits as their 3 characters: a block is 9 look-ups, not base64's 4 rounds


def _text(block: bytes) -> str:
    """base64.b32encode(block), lower case, without its padding (26 characters), at a fifth of its cost."""
    t = _TRIPLES or _triples()
    n = int.from_bytes(block, "big") << 7  # 135 bits: 27 characters, the last one all padding
    return (
        t[n >> 120] + t[(n >> 105) & 32767] + t[(n >> 90) & 32767] + t[(n >> 75) & 32767] + t[(n >> 60) & 32767]
        + t[(n >> 45) & 32767] + t[(n >> 30) & 32767] + t[(n >> 15) & 32767] + t[n & 32767][:2]
    )  # fmt: skip


def _triples() -> list[str]:
    _TRIPLES[:] = [a + b + c for a in _ALPHABET for b in _ALPHABET for c in _ALPHABET]
    return _TRIPLES


# Many blocks at once (a BatchCheck's ids, a record's entries): the blocks, each placed in the low 160 bits of a
# 256-bit slot (its 128 bits and 32 zero bits, as base32 pads them), are one integer, whose 5-bit groups are spread
# to a byte each by five mask-and-shift steps over the whole integer (160 -> 2 x 80 bits in 128-bit slots, 80 ->
# 2 x 40 in 64, ..., 10 -> 2 x 5 in 8); bytes.translate then maps 0..31 to the alphabet. A few operations on one
# large integer instead of nine per block: about a third of _text's cost per id at 100 ids.
_MANY = 8  # from this many blocks on (below it, _text per block costs less)
_TO_ALPHABET = bytes.maketrans(bytes(range(32)), _ALPHABET.encode())
_SLOT_HEAD, _SLOT_GAP = bytes(12), bytes(4) + bytes(12)  # around each block in its 32-byte slot
_SPREAD = [(slot, width // 2, slot // 2 - width // 2) for slot, width in ((256, 160), (128, 80), (64, 40), (32, 20),
                                                                          (16, 10))]  # fmt: skip
_MASKS: dict[int, list[tuple[int, int, int]]] = {}  # blocks -> each step's (low mask, high mask, shift)


def _masks(count: int) -> list[tuple[int, int, int]]:
    masks = _MASKS.get(count)
    if masks is None:
        if len(_MASKS) >= 256:
            _MASKS.clear()
        masks = _MASKS[count] = [
            (
                int.from_bytes(((1 << half) - 1).to_bytes(slot // 8, "big") * (256 // slot * count), "big"),
                int.from_bytes((((1 << half) - 1) << half).to_bytes(slot // 8, "big") * (256 // slot * count), "big"),
                shift,
            )
            for slot, half, shift in _SPREAD
        ]
    return masks


def _texts(blocks: bytes) -> list[str]:
    """[_text(block) for each 16-byte block of `blocks`], the same strings."""
    count = len(blocks) // 16
    if count < _MANY:
        return [_text(blocks[i : i + 16]) for i in range(0, len(blocks), 16)]
    slots = _SLOT_HEAD + _SLOT_GAP.join([blocks[i : i + 16] for i in range(0, len(blocks), 16)]) + bytes(4)
    n = int.from_bytes(slots, "big")
    for low, high, shift in _masks(count):
        n = (n & low) | ((n & high) << shift)
    text = n.to_bytes(32 * count, "big").translate(_TO_ALPHABET).decode("ascii")
    return [text[i : i + 26] for i in range(0, 32 * count, 32)]


_INDEXES = [i.to_bytes(2, "big") + b"\x00\x00" for i in range(1024)]  # a block's last 4 bytes, index < 1024


@dataclass(frozen=True, slots=True)
class Located:
    """What an external id stands for: a logged decision's address, or a spooled decision's bucket (its location
    is the one its replay got, kept by the log)."""

    address: DecisionAddress | None
    spooled_bucket: str | None = None


class DecisionIds:
    def __init__(self, key: bytes) -> None:
        """`key`: 32 bytes, derived from the bucket key (`for_placement`, `derive_key`)."""
        if len(key) != 32:
            raise ValueError("a decision id key is 32 bytes")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())
        # One ECB encryptor per thread, kept: ECB carries nothing from one block to the next, so update() of whole
        # blocks is all an encryption needs (making an encryptor cost 16 times the update of one block).
        self._local = threading.local()

    @staticmethod
    def for_placement(placement: Placement) -> DecisionIds:
        return DecisionIds(placement.derive(HKDF_INFO))

    @staticmethod
    def for_bucket_key(bucket_key: str | bytes) -> DecisionIds:
        return DecisionIds(derive_key(bucket_key.encode() if isinstance(bucket_key, str) else bucket_key))

    def _encrypt(self, block: bytes) -> bytes:
        """`block`: whole 16-byte blocks."""
        try:
            update = self._local.update
        except AttributeError:
            update = self._local.update = self._cipher.encryptor().update
        return update(block)  # type: ignore[no-any-return]

    def _decrypt(self, block: bytes) -> bytes:
        decryptor = self._cipher.decryptor()
        return decryptor.update(block) + decryptor.finalize()

    def external(self, stream_id: str, bucket: str, index: int) -> str:
        """The external id of the decision at `index` in record `stream_id` of `bucket`'s stream."""
        return _text(self._encrypt(_plain(DecisionAddress(stream_id, bucket, index))))

    def of_record(self, stream_id: str, bucket: str, count: int) -> list[str]:
        """The external ids of the decisions 0..count-1 of record `stream_id` of `bucket`'s stream, in one
        cipher pass (a BatchCheck's decisions share a record)."""
        if not 0 <= count <= MAX_INDEX + 1:
            raise ValueError("decision location out of range")
        if not count:
            return []
        prefix = _record_prefix(stream_id, bucket)
        ends = _INDEXES[:count] if count <= len(_INDEXES) else [i.to_bytes(2, "big") + bytes(2) for i in range(count)]
        plain = prefix + prefix.join(ends)
        return _texts(self._encrypt(plain))

    def of(self, address: DecisionAddress) -> str:
        return self.external(address.stream_id, address.bucket, address.index)

    def of_internal(self, internal_ids: Sequence[str]) -> list[str]:
        """The external ids of internal ones ("<ms>-<seq>-<bucket>-<index>", as the log's lists keep them), in
        one cipher pass; each record's part is read once (a call's decisions share one)."""
        if not internal_ids:
            return []
        prefixes: dict[str, bytes] = {}
        plain: list[bytes] = []
        indexes = _INDEXES
        for value in internal_ids:
            record, _, index = value.rpartition("-")
            prefix = prefixes.get(record)
            if prefix is None or not (index.isascii() and index.isdigit() and len(index) <= 5):
                address = parse_decision_id(value)
                prefix = prefixes[record] = _record_prefix(address.stream_id, address.bucket)
            number = int(index)
            if number > MAX_INDEX:
                raise ValueError("decision location out of range")
            plain.append(prefix)
            plain.append(indexes[number] if number < 1024 else number.to_bytes(2, "big") + b"\x00\x00")
        return _texts(self._encrypt(b"".join(plain)))

    def new_spooled(self, bucket: str) -> str:
        """A fresh id for a fail-open decision of `bucket`: 96 random bits inside."""
        plain = bytes([SPOOLED]) + int(bucket, 16).to_bytes(2, "big") + secrets.token_bytes(12) + b"\x00"
        return _text(self._encrypt(plain))

    def locate(self, value: str, field: str = "decision_id") -> Located | None:
        """What `value` stands for; None when it is well formed but no id this key made (guessed or changed).
        Raises InvalidField when it is not even shaped like a decision id."""
        if not _SHAPE.match(value):
            raise InvalidField(field, "is not a decision id (26 characters a-z, 2-7)")
        try:
            block = base64.b32decode(value.upper() + "======")
        except ValueError:
            return None
        if len(block) != 16 or _text(block) != value:
            return None  # the last character's unused bits set: not one this service wrote
        plain = self._decrypt(block)
        if plain[0] == LOGGED and plain[14:] == b"\x00\x00":
            bucket = int.from_bytes(plain[10:12], "big")
            if bucket >= 4096:
                return None
            ms, seq = int.from_bytes(plain[1:7], "big"), int.from_bytes(plain[7:10], "big")
            address = DecisionAddress(f"{ms}-{seq}", f"{bucket:03x}", int.from_bytes(plain[12:14], "big"))
            return Located(address)
        if plain[0] == SPOOLED and plain[15] == 0:
            bucket = int.from_bytes(plain[1:3], "big")
            return Located(None, f"{bucket:03x}") if bucket < 4096 else None
        return None

    def bucket_of(self, value: str, field: str = "decision_id") -> str | None:
        located = self.locate(value, field)
        if located is None:
            return None
        return located.address.bucket if located.address else located.spooled_bucket
