"""Settings are read once, validated, and refuse unsafe combinations."""

from __future__ import annotations

import pytest

from debar.common.settings import Settings, SettingsError


def test_defaults_suit_a_laptop():
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.ports["sanction"] == 50051
    assert settings.redis_url == ""


def test_the_public_dev_key_is_refused_beyond_loopback():
    with pytest.raises(SettingsError, match="DEBAR_PSEUDONYM_KEYS"):
        Settings.from_env({"DEBAR_HOST": "0.0.0.0"}).check_pseudonym_key()
    Settings.from_env({"DEBAR_HOST": "0.0.0.0", "DEBAR_PSEUDONYM_KEYS": "k1:s"}).check_pseudonym_key()
    Settings.from_env({}).check_pseudonym_key()


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"DEBAR_SANCTION_PORT": "x"}, "DEBAR_SANCTION_PORT"),
        ({"DEBAR_REDIS_CLUSTER": "maybe"}, "DEBAR_REDIS_CLUSTER"),
        ({"DEBAR_REDIS_CLUSTER": "true"}, "DEBAR_REDIS_CLUSTER"),
        ({"DEBAR_LOG_FORMAT": "xml"}, "DEBAR_LOG_FORMAT"),
        ({"DEBAR_MAX_BATCH_ITEMS": "0"}, "DEBAR_MAX_BATCH_ITEMS"),
    ],
)
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


@pytest.mark.parametrize("keys", ["k2:two-secret,k1:one-secret", "k1:one-secret", "k3:three,k2:two,k1:one"])
def test_only_the_first_of_several_keys_can_be_staged(keys):
    staged = {"DEBAR_PSEUDONYM_KEYS": keys, "DEBAR_PSEUDONYM_STAGED": "k2"}
    if keys.startswith("k2:"):
        assert Settings.from_env(staged).pseudonym_staged == "k2"
    else:
        with pytest.raises(SettingsError, match="DEBAR_PSEUDONYM_STAGED"):
            Settings.from_env(staged)
