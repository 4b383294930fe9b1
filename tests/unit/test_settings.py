"""Settings are read once, validated, and refuse unsafe combinations."""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import replace
from pathlib import Path

import pytest

from debar.common import settings as settings_module
from debar.common.settings import (
    DEV_BUCKET_KEY,
    DEV_OBJECTION_KEYS,
    DEV_PSEUDONYM_KEYS,
    SERVICE_PORTS,
    PerService,
    Settings,
    SettingsError,
    Variable,
    _parser_of,
    declarations,
)


def test_defaults_suit_a_laptop():
    settings = Settings.from_env({})
    assert settings.host == "127.0.0.1"
    assert settings.ports["sanction"] == 50051
    assert settings.redis_url == ""


REAL_KEYS = {
    "DEBAR_PSEUDONYM_KEYS": "k1:" + "p" * 32,
    "DEBAR_BUCKET_KEY": "b" * 32,
    "DEBAR_OBJECTION_KEYS": "o1:" + "o" * 32,
}


@pytest.mark.parametrize("name", REAL_KEYS)
def test_the_public_dev_keys_are_refused_beyond_loopback(name):
    beyond = {"DEBAR_HOST": "0.0.0.0", **REAL_KEYS}
    Settings.from_env(beyond).check_keys()
    without = {k: v for k, v in beyond.items() if k != name}
    with pytest.raises(SettingsError, match=f"^{name} must be set when listening beyond this machine"):
        Settings.from_env(without).check_keys()
    Settings.from_env({}).check_keys()  # on loopback, `debar up` and the tests use them


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"DEBAR_PSEUDONYM_KEYS": "k1:x"}, "DEBAR_PSEUDONYM_KEYS"),  # the attack: a one-character secret
        ({"DEBAR_PSEUDONYM_KEYS": f"k2:{'s' * 40},k1:{'s' * 31}"}, "DEBAR_PSEUDONYM_KEYS"),
        ({"DEBAR_BUCKET_KEY": "b" * 31}, "DEBAR_BUCKET_KEY"),
        ({"DEBAR_OBJECTION_KEYS": "o1:short"}, "DEBAR_OBJECTION_KEYS"),
    ],
)
def test_secrets_shorter_than_32_bytes_refuse_to_start(env, name):
    with pytest.raises(SettingsError, match=f"^{name}.*at least 32") as raised:
        Settings.from_env(env)
    secret = next(iter(env.values())).rpartition(":")[2]
    assert secret not in str(raised.value)


def test_a_secret_may_come_from_a_file(tmp_path):
    (tmp_path / "keys").write_text(REAL_KEYS["DEBAR_PSEUDONYM_KEYS"] + "\n")  # as `echo` or a Secret writes it
    (tmp_path / "url").write_text("rediss://:hunter2@redis.example:6379/0")
    settings = Settings.from_env(
        {"DEBAR_PSEUDONYM_KEYS_FILE": str(tmp_path / "keys"), "DEBAR_REDIS_URL_FILE": str(tmp_path / "url")}
    )
    assert settings.pseudonym_keys == REAL_KEYS["DEBAR_PSEUDONYM_KEYS"]
    assert settings.redis_url == "rediss://:hunter2@redis.example:6379/0"


def test_a_secret_file_is_checked_as_its_value_is_and_never_repeated(tmp_path):
    (tmp_path / "short").write_text("k1:hunter2")
    (tmp_path / "url").write_text("http://user:hunter2@redis:6379")
    (tmp_path / "binary").write_bytes(b"\xffhunter2")
    cases = {
        "DEBAR_PSEUDONYM_KEYS_FILE": (tmp_path / "short", "at least 32"),
        "DEBAR_REDIS_URL_FILE": (tmp_path / "url", "must start with"),
        "DEBAR_BUCKET_KEY_FILE": (tmp_path / "binary", "is not UTF-8 text"),
        "DEBAR_OBJECTION_KEYS_FILE": (tmp_path / "missing", "cannot read"),
    }
    for name, (path, why) in cases.items():
        with pytest.raises(SettingsError, match=why) as raised:
            Settings.from_env({name: str(path)})
        assert name.removesuffix("_FILE") in str(raised.value) and "hunter2" not in str(raised.value)


def test_a_value_and_its_file_together_are_refused(tmp_path):
    (tmp_path / "key").write_text("b" * 32)
    with pytest.raises(SettingsError, match="DEBAR_BUCKET_KEY and DEBAR_BUCKET_KEY_FILE are both set"):
        Settings.from_env({"DEBAR_BUCKET_KEY": "c" * 32, "DEBAR_BUCKET_KEY_FILE": str(tmp_path / "key")})


def test_the_staged_key_file_may_be_missing(tmp_path):
    # It comes from the Secret's optional key `staged`, which is a file only while a rotation stages a key.
    ring = f"k2:{'n' * 32},k1:{'o' * 32}"
    env = {"DEBAR_PSEUDONYM_KEYS": ring, "DEBAR_PSEUDONYM_STAGED_FILE": str(tmp_path / "staged")}
    assert Settings.from_env(env).pseudonym_staged == ""
    (tmp_path / "staged").write_text("k2\n")
    assert Settings.from_env(env).pseudonym_staged == "k2"


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
        ({"DEBAR_REDIS_SENTINELS": "sentinel-0"}, "DEBAR_REDIS_SENTINELS"),
        ({"DEBAR_REDIS_SENTINELS": "s0:26379,s1:x"}, "DEBAR_REDIS_SENTINELS"),
        (
            {"DEBAR_REDIS_SENTINELS": "s0:26379", "DEBAR_REDIS_CLUSTER": "true", "DEBAR_REDIS_URL": "redis://r"},
            "DEBAR_REDIS_SENTINELS",
        ),
        ({"DEBAR_REDIS_SENTINEL_MASTER": "my master"}, "DEBAR_REDIS_SENTINEL_MASTER"),
        ({"DEBAR_REDIS_MIN_REPLICAS": "some"}, "DEBAR_REDIS_MIN_REPLICAS"),
        ({"DEBAR_REDIS_MIN_REPLICAS": "-1"}, "DEBAR_REDIS_MIN_REPLICAS"),
        ({"DEBAR_REDIS_REPLICA_WAIT_MS": "500"}, "DEBAR_REDIS_REPLICA_WAIT_MS"),  # not under the 0.5 s timeout
    ],
)
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


TWO, ONE, THREE = "two-secret-of-32-bytes-or-more-!!", "one-secret-of-32-bytes-or-more-!!", "three-" * 6


@pytest.mark.parametrize("keys", [f"k2:{TWO},k1:{ONE}", f"k1:{ONE}", f"k3:{THREE},k2:{TWO},k1:{ONE}", f"k2:{TWO},"])
def test_only_the_first_of_several_keys_can_be_staged(keys):
    staged = {"DEBAR_PSEUDONYM_KEYS": keys, "DEBAR_PSEUDONYM_STAGED": "k2"}
    if keys == f"k2:{TWO},k1:{ONE}":
        assert Settings.from_env(staged).pseudonym_staged == "k2"
    else:
        with pytest.raises(SettingsError, match="DEBAR_PSEUDONYM_STAGED"):
            Settings.from_env(staged)


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6380/0", "rediss://user:pw@redis.example:6379/2", "unix:///run/redis.sock", "redis://r"]
)
def test_redis_urls_the_client_takes_are_accepted(url):
    assert Settings.from_env({"DEBAR_REDIS_URL": url}).redis_url == url


def test_sentinels_name_where_the_redis_is():
    settings = Settings.from_env({"DEBAR_REDIS_SENTINELS": "s0:26379, s1:26380", "DEBAR_REDIS_MIN_REPLICAS": "2"})
    assert settings.redis_location == "sentinel://s0:26379,s1:26380/debar"  # the spool's folder follows it
    assert settings.redis_min_replicas == "2"
    assert Settings.from_env({"DEBAR_REDIS_URL": "redis://r:1/0"}).redis_location == "redis://r:1/0"


def test_a_bad_redis_url_is_not_repeated_in_the_error():
    with pytest.raises(SettingsError) as error:
        Settings.from_env({"DEBAR_REDIS_URL": "http://user:hunter2@redis:6379"})
    assert "hunter2" not in str(error.value)


def test_the_grace_period_is_a_setting():
    assert Settings.from_env({"DEBAR_GRACE_S": "12.5"}).grace_s == 12.5
    with pytest.raises(SettingsError, match="DEBAR_GRACE_S"):
        Settings.from_env({"DEBAR_GRACE_S": "-1"})


def test_an_empty_port_is_refused_like_any_empty_number():
    # Unset means the default; set but empty is a mistake (a template that rendered nothing), named at start.
    for name in ("DEBAR_SANCTION_PORT", "DEBAR_METRICS_PORT", "DEBAR_GRACE_S"):
        with pytest.raises(SettingsError, match=f"{name} must be"):
            Settings.from_env({name: ""})


def test_the_sanction_address_follows_the_sanction_port_unless_given():
    assert Settings.from_env({"DEBAR_SANCTION_PORT": "6000"}).sanction_address == "127.0.0.1:6000"
    given = {"DEBAR_SANCTION_PORT": "6000", "DEBAR_SANCTION_ADDRESS": "sanction:50051"}
    assert Settings.from_env(given).sanction_address == "sanction:50051"
    assert Settings().sanction_address == Settings.from_env({}).sanction_address == "127.0.0.1:50051"


def test_validation_checks_the_values_however_they_were_made():
    with pytest.raises(SettingsError, match=r"DEBAR_MAX_BATCH_ITEMS must be in \[1, 10000\]"):
        replace(Settings(), max_batch_items=0).validate()
    with pytest.raises(SettingsError, match="DEBAR_RAILWAY_PORT must be a port number"):
        replace(Settings(), ports={**SERVICE_PORTS, "railway": 70000}).validate()


def test_every_setting_is_parsed_as_its_field_is_typed():
    # The parser follows the default's type: a float setting declared with 5 would refuse DEBAR_GRACE_S=2.5.
    hints = typing.get_type_hints(Settings)
    for item in dataclasses.fields(Settings):
        if isinstance(declarations()[item.name], Variable):
            assert _parser_of(type(item.default)) is _parser_of(hints[item.name]), item.name


# --- the README's settings tables agree with the declarations ----------------------------------------------------

README = Path(__file__).parents[2] / "README.md"
ROW = re.compile(r"^\| (`DEBAR_[^|]*`) \| ([^|]*) \| [^|]* \|$")
# Where the README says in words what the default is.
IN_WORDS = {
    "DEBAR_PSEUDONYM_KEYS": (DEV_PSEUDONYM_KEYS, "a dev-only key"),
    "DEBAR_BUCKET_KEY": (DEV_BUCKET_KEY, "a dev-only key"),
    "DEBAR_OBJECTION_KEYS": (DEV_OBJECTION_KEYS, "a dev-only key"),
}


def _documented() -> dict[str, str]:
    """Each setting the README's tables name, with the default they give it."""
    rows: dict[str, str] = {}
    for line in README.read_text().splitlines():
        if match := ROW.match(line):
            names = [name.strip("`") for name in match[1].split(", ")]
            defaults = match[2].replace("`", "").split(", ")  # one for all the row's names, or one each
            for name, default in zip(names, defaults * len(names) if len(defaults) == 1 else defaults, strict=True):
                assert name not in rows, f"{name} is in the README twice"
                rows[name] = default
    return rows


def _declared() -> dict[str, object]:
    """Each setting's variable (a setting that also takes a file: both) with its default."""
    declared: dict[str, object] = {}
    for name, item in declarations().items():
        for env in [item.pattern] if isinstance(item, PerService) else item.names:
            declared[env] = getattr(Settings(), name)
    return declared


def _in_words(name: str) -> tuple[object, str] | None:
    return IN_WORDS.get(name.removesuffix("_FILE"))


def _agrees(readme: str, default: object) -> bool:
    if default == "":  # unset: the README says in brackets what happens then, e.g. "(none)", "(embedded)"
        return readme.startswith("(") and readme.endswith(")")
    if isinstance(default, dict):
        shown = f"{min(default.values())}-{max(default.values())}"
    elif isinstance(default, bool):
        shown = str(default).lower()
    elif isinstance(default, float):
        shown = f"{default:g}"
    else:
        shown = str(default)
    return readme == shown or readme.startswith(f"{shown} (")  # e.g. "0 (off)"


def test_the_readme_tables_list_every_setting_and_only_those():
    assert sorted(_documented()) == sorted(_declared())


def test_the_readme_tables_give_the_declared_defaults():
    declared = _declared()
    for name, readme in _documented().items():
        if (words := _in_words(name)) is not None:
            assert (declared[name], readme) == words, name
        else:
            assert _agrees(readme, declared[name]), f"{name}: README says {readme!r}, the code {declared[name]!r}"


def test_the_readme_and_the_error_messages_name_only_declared_settings():
    declared = {name for item in declarations().values() for name in item.names} | {"DEBAR_<SERVICE>_PORT"}
    source = Path(settings_module.__file__).read_text()
    for text in (README.read_text(), source):
        for name in re.findall(r"DEBAR_(?:<SERVICE>_PORT|[A-Z_]*[A-Z*])", text):
            if name.endswith("*"):
                assert any(known.startswith(name[:-1]) for known in declared), name
            else:
                assert name in declared, name


def test_the_entry_signer_is_the_log_key_or_the_one_debar_up_keeps_else_none(tmp_path: Path):
    from debar.tlog.keys import Ed25519Signer

    data = tmp_path / "data"
    data.mkdir()
    bare = Settings.from_env({"DEBAR_DATA_DIR": str(data)})
    assert bare.log_entry_signer() is None  # a tool without the key writes unsigned entries
    kept = Ed25519Signer.generate("debar.test/log")
    (data / "log-signing.key").write_text(kept.signer_key())
    found = bare.log_entry_signer()
    assert found is not None and found.public_key == kept.public_key
    named = Ed25519Signer.generate("debar.test/named")
    (tmp_path / "named.key").write_text(named.signer_key())
    chosen = Settings.from_env({"DEBAR_DATA_DIR": str(data), "DEBAR_LOG_SIGNING_KEY": str(tmp_path / "named.key")})
    signer = chosen.log_entry_signer()
    assert signer is not None and signer.public_key == named.public_key
    broken = Settings.from_env({"DEBAR_DATA_DIR": str(data), "DEBAR_LOG_SIGNING_KEY": str(tmp_path / "missing")})
    with pytest.raises(SettingsError, match="DEBAR_LOG_SIGNING_KEY"):
        broken.log_entry_signer()
