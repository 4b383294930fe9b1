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
        ({"DEBAR_REDIS_URL": "notaurl"}, "DEBAR_REDIS_URL"),
        ({"DEBAR_REDIS_URL": "http://redis:6379"}, "DEBAR_REDIS_URL"),
        ({"DEBAR_REDIS_URL": "redis://redis:port/0"}, "DEBAR_REDIS_URL"),
        ({"DEBAR_REDIS_URL": "redis:///0"}, "DEBAR_REDIS_URL"),
        ({"DEBAR_REDIS_URL": "unix:///tmp/r.sock", "DEBAR_REDIS_CLUSTER": "true"}, "DEBAR_REDIS_URL"),
        ({"DEBAR_PSEUDONYM_KEYS": "bad"}, "DEBAR_PSEUDONYM_KEYS"),
        ({"DEBAR_PSEUDONYM_KEYS": "k-1:secret"}, "DEBAR_PSEUDONYM_KEYS"),
        ({"DEBAR_PSEUDONYM_KEYS": " , "}, "DEBAR_PSEUDONYM_KEYS"),
    ],
)
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "keys", ["k2:two-secret,k1:one-secret", "k1:one-secret", "k3:three,k2:two,k1:one", "k2:two-secret,"]
)
def test_only_the_first_of_several_keys_can_be_staged(keys):
    staged = {"DEBAR_PSEUDONYM_KEYS": keys, "DEBAR_PSEUDONYM_STAGED": "k2"}
    if keys == "k2:two-secret,k1:one-secret":
        assert Settings.from_env(staged).pseudonym_staged == "k2"
    else:
        with pytest.raises(SettingsError, match="DEBAR_PSEUDONYM_STAGED"):
            Settings.from_env(staged)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6380/0", "rediss://user:pw@redis.example:6379/2", "unix:///run/redis.sock", "redis://r"]
)
def test_redis_urls_the_client_takes_are_accepted(url):
    assert Settings.from_env({"DEBAR_REDIS_URL": url}).redis_url == url


def test_a_bad_redis_url_is_not_repeated_in_the_error():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"DEBAR_REDIS_URL": "http://user:hunter2@redis:6379"})
    assert "hunter2" not in str(error.value)


def test_the_grace_period_is_a_setting():
    assert Settings.from_env({"DEBAR_GRACE_S": "12.5"}).grace_s == 12.5
    with pytest.raises(SettingsError, match="DEBAR_GRACE_S"):
        Settings.from_env({"DEBAR_GRACE_S": "-1"})
