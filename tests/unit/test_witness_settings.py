"""The witness lists as operators write them: the log's witnesses (DEBAR_LOG_WITNESSES) and the logs a witness
follows (DEBAR_WITNESS_LOGS). A wrong entry stops the start with a message naming the setting and the entry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from debar.common.settings import Settings, SettingsError
from debar.common.witnesses import WitnessEndpoint, parse_log_witnesses, parse_witnessed_logs
from debar.tlog.cosignature import CosignatureSigner
from debar.tlog.keys import Ed25519Signer

W1 = CosignatureSigner("witness.example/w1", bytes(range(32)))
W2 = CosignatureSigner("witness.example/w2", bytes(range(1, 33)))
LOG = Ed25519Signer("debar.example/log", bytes(range(2, 34)))
ROTATED = Ed25519Signer("debar.example/log", bytes(range(3, 35)))


def test_witnesses_are_key_and_url_pairs_separated_by_commas():
    text = (
        f" {W1.verifier().verifier_key()}  http://w1:50057 ,{W2.verifier().verifier_key()} https://w2.example/tlog/ ,"
    )
    w1, w2 = parse_log_witnesses(text)
    assert (w1.verifier, w1.url, w1.add_checkpoint_url) == (
        W1.verifier(),
        "http://w1:50057",
        "http://w1:50057/add-checkpoint",
    )
    assert (w2.name, w2.add_checkpoint_url) == ("witness.example/w2", "https://w2.example/tlog/add-checkpoint")
    assert parse_log_witnesses(w1.setting()) == (w1,)
    assert parse_log_witnesses("") == ()


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (f"{W1.verifier().verifier_key()}", "entry 1: not '<witness verifier key> <URL>'"),
        (f"http://w1 {W1.verifier().verifier_key()}", "entry 1: verifier key"),
        (f"{LOG.verifier().verifier_key()} http://w1", "entry 1: verifier key: not a signature type 0x04"),
        (f"{W1.verifier().verifier_key()} ftp://w1", "entry 1: the URL must be http:// or https://"),
        (f"{W1.verifier().verifier_key()} http://w1/?x=1", "entry 1: the URL"),
        (f"{W1.verifier().verifier_key()} http:///path", "entry 1: the URL"),
        (
            f"{W1.verifier().verifier_key()} http://a,{W1.verifier().verifier_key()} http://b",
            "entry 2: a second witness named witness.example/w1",
        ),
    ],
)
def test_a_wrong_witness_entry_names_the_setting_and_the_entry(text: str, complaint: str):
    with pytest.raises(ValueError, match="^" + re.escape(complaint)):
        parse_log_witnesses(text)
    with pytest.raises(SettingsError, match=r"^DEBAR_LOG_WITNESSES entry"):
        Settings.from_env({"DEBAR_LOG_WITNESSES": text})


def test_followed_logs_are_verifier_keys_named_by_their_origin():
    text = f"{LOG.verifier().verifier_key()}, {ROTATED.verifier().verifier_key()}"
    assert parse_witnessed_logs(text) == {"debar.example/log": (LOG.verifier(), ROTATED.verifier())}
    settings = Settings.from_env({"DEBAR_WITNESS_LOGS": text})
    assert settings.witnessed_logs() == parse_witnessed_logs(text)


def test_a_witness_key_is_no_log_key():
    with pytest.raises(SettingsError, match=r"^DEBAR_WITNESS_LOGS entry 1: verifier key: not a signature type 0x01"):
        Settings.from_env({"DEBAR_WITNESS_LOGS": W1.verifier().verifier_key()})


def test_the_state_folder_follows_the_data_folder_unless_given():
    assert Settings.from_env({"DEBAR_DATA_DIR": "/srv/d"}).witness_state_path == Path("/srv/d/witness")
    given = Settings.from_env({"DEBAR_DATA_DIR": "/srv/d", "DEBAR_WITNESS_STATE_DIR": "/w"})
    assert given.witness_state_path == Path("/w")


def test_the_endpoint_of_a_setting_round_trips():
    endpoint = WitnessEndpoint(W2.verifier(), "http://127.0.0.1:50057")
    assert parse_log_witnesses(endpoint.setting()) == (endpoint,)
