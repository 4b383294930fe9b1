"""Note keys: key ids, the key strings operators configure, generation, and every malformed key refused."""

from __future__ import annotations

import base64
import hashlib

import pytest

from debar.tlog.keys import Ed25519Signer, InvalidKey, generate_key, parse_signer_key, parse_verifier_key
from debar.tlog.note import open_note, sign_note
from tests.unit.tlog.test_note import ALICE, GO_SKEY, GO_VKEY


def test_the_key_id_is_the_hash_of_name_newline_type_and_key():
    public = ALICE.public_key
    assert ALICE.key_id == hashlib.sha256(b"example.com/alice\n\x01" + public).digest()[:4]
    vkey = ALICE.verifier().verifier_key()
    material = base64.b64encode(b"\x01" + public).decode()
    assert vkey == f"example.com/alice+{ALICE.key_id.hex()}+{material}"


def test_generated_keys_work_together_and_the_secret_stays_out_of_reprs():
    skey, vkey = generate_key("log.example/debar")
    signer, verifier = parse_signer_key(skey), parse_verifier_key(vkey)
    assert signer.name == verifier.name == "log.example/debar" and signer.key_id == verifier.key_id
    assert open_note(sign_note("hello\n", signer).to_bytes(), [verifier]).text == "hello\n"
    secret = skey.split("+", 4)[4]  # PRIVATE+KEY+<name>+<key id>+<base64>: base64 may itself hold a "+"
    assert secret not in repr(signer) and vkey in repr(signer)
    assert parse_verifier_key(vkey + "\n") == verifier, "a key read from a file may end in a newline"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # the spec says lowercase
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # id of another key
        "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+BRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # another type byte
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # short key
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TX",  # not canonical base64
        GO_SKEY,
    ],
)
def test_malformed_verifier_keys_are_refused(bad):
    with pytest.raises(InvalidKey):
        parse_verifier_key(bad)


def test_every_mangling_of_a_key_string_is_refused():
    for key, parse in ((GO_VKEY, parse_verifier_key), (GO_SKEY, parse_signer_key)):
        for i in range(len(key)):
            for mangled in (key[:i], key[i + 1 :], key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :]):
                if mangled.strip() == key:
                    continue
                with pytest.raises(InvalidKey):
                    parse(mangled)


def test_signer_keys_must_say_they_are_private():
    with pytest.raises(InvalidKey, match="PRIVATE"):
        parse_signer_key(GO_SKEY.removeprefix("PRIVATE+KEY+"))
    with pytest.raises(InvalidKey):
        parse_signer_key(GO_VKEY)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0here", "ideographic\u3000space"])
def test_key_names_without_spaces_or_plus(name):
    with pytest.raises(InvalidKey):
        Ed25519Signer(name, bytes(32))
