import base64
import json
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tenant_config import ConfigError, create_app
from tenant_config.config import database_url
from tenant_config.crypto import generate_master_key, master_key_id, parse_master_key

ROOT = Path(__file__).resolve().parent.parent
GOOD_SECRET = "s" * 40


def _create(tmp_path, **environ):
    return create_app(environ=environ, instance_path=str(tmp_path / "instance"))


def test_starts_with_valid_keys(tmp_path):
    key = generate_master_key()
    app = _create(tmp_path, CONFIG_ENCRYPTION_KEY=f"  {key}\n", SECRET_KEY=GOOD_SECRET)
    assert app.config["KEYRING"].current.id == create_app(
        environ={"CONFIG_ENCRYPTION_KEY": key, "SECRET_KEY": GOOD_SECRET}, instance_path=str(tmp_path / "again")
    ).config["KEYRING"].current.id
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'instance' / 'tenant_config.db'}"


def test_accepts_standard_base64_key(tmp_path):
    raw = bytes([0xFB, 0xFF] * 16)
    app = _create(tmp_path, CONFIG_ENCRYPTION_KEY=base64.b64encode(raw).decode(), SECRET_KEY=GOOD_SECRET)
    assert app.config["KEYRING"].current.id


@pytest.mark.parametrize("environ, message", [
    ({"SECRET_KEY": GOOD_SECRET}, "CONFIG_ENCRYPTION_KEY is not set"),
    ({"CONFIG_ENCRYPTION_KEY": "c2hvcnQ=", "SECRET_KEY": GOOD_SECRET}, "decodes to 5 bytes, expected 32"),
    ({"CONFIG_ENCRYPTION_KEY": "not base64!" * 4, "SECRET_KEY": GOOD_SECRET}, "not valid base64"),
    ({"CONFIG_ENCRYPTION_KEY": generate_master_key()}, "SECRET_KEY is not set"),
    ({"CONFIG_ENCRYPTION_KEY": generate_master_key(), "SECRET_KEY": "short"}, "SECRET_KEY is too short"),
])
def test_bad_configuration_stops_startup(tmp_path, environ, message):
    with pytest.raises(ConfigError) as raised:
        _create(tmp_path, **environ)
    assert message in str(raised.value)
    if "CONFIG_ENCRYPTION_KEY" in environ:
        assert environ["CONFIG_ENCRYPTION_KEY"] not in str(raised.value)


def test_secret_key_equal_to_master_key_is_rejected(tmp_path):
    key = generate_master_key()
    standard_spelling = base64.b64encode(parse_master_key(key)).decode()
    for secret in (key, standard_spelling):
        with pytest.raises(ConfigError, match="SECRET_KEY must differ from CONFIG_ENCRYPTION_KEY") as raised:
            _create(tmp_path, CONFIG_ENCRYPTION_KEY=key, SECRET_KEY=secret)
        assert key not in str(raised.value)


def test_previous_keys_join_the_keyring(tmp_path):
    current, first, second = generate_master_key(), generate_master_key(), generate_master_key()
    app = _create(
        tmp_path, CONFIG_ENCRYPTION_KEY=current, CONFIG_ENCRYPTION_PREVIOUS_KEYS=f" {first} ,\n{second}", SECRET_KEY=GOOD_SECRET,
    )
    keyring = app.config["KEYRING"]
    assert keyring.current.id == master_key_id(parse_master_key(current))
    assert keyring.previous_ids == [master_key_id(parse_master_key(first)), master_key_id(parse_master_key(second))]


@pytest.mark.parametrize("previous", ["", "   "])
def test_blank_previous_keys_mean_none(tmp_path, previous):
    app = _create(tmp_path, CONFIG_ENCRYPTION_KEY=generate_master_key(), CONFIG_ENCRYPTION_PREVIOUS_KEYS=previous, SECRET_KEY=GOOD_SECRET)
    assert app.config["KEYRING"].previous_ids == []


KEY_A = generate_master_key()
KEY_B = generate_master_key()
KEY_C = generate_master_key()
KEY_A_STANDARD = base64.b64encode(parse_master_key(KEY_A)).decode()


@pytest.mark.parametrize("previous, message", [
    (f"{KEY_A},", "entry 2: the key is empty"),
    (f"{KEY_A},,{KEY_B}", "entry 2: the key is empty"),
    (f"{KEY_A},c2hvcnQ=", "entry 2: the key decodes to 5 bytes, expected 32"),
    ("not base64!" * 4, "entry 1: the key is not valid base64"),
    (f"{KEY_A} {KEY_B}", "entry 1: the key is not valid base64"),
    (f"{KEY_B},{KEY_C},{KEY_B}", "entry 3 of CONFIG_ENCRYPTION_PREVIOUS_KEYS is the same key as entry 1"),
    (f"{KEY_B},{KEY_A_STANDARD}", "entry 2 of CONFIG_ENCRYPTION_PREVIOUS_KEYS is the same key as CONFIG_ENCRYPTION_KEY"),
])
def test_bad_previous_keys_stop_startup(tmp_path, previous, message):
    with pytest.raises(ConfigError) as raised:
        _create(tmp_path, CONFIG_ENCRYPTION_KEY=KEY_A, CONFIG_ENCRYPTION_PREVIOUS_KEYS=previous, SECRET_KEY=GOOD_SECRET)
    assert message in str(raised.value)
    assert "CONFIG_ENCRYPTION_PREVIOUS_KEYS" in str(raised.value)
    for key in (KEY_A, KEY_B, KEY_C, KEY_A_STANDARD):
        assert key not in str(raised.value)


def test_secret_key_equal_to_previous_key_is_rejected(tmp_path):
    previous = generate_master_key()
    with pytest.raises(ConfigError, match="every key in CONFIG_ENCRYPTION_PREVIOUS_KEYS") as raised:
        _create(tmp_path, CONFIG_ENCRYPTION_KEY=generate_master_key(), CONFIG_ENCRYPTION_PREVIOUS_KEYS=previous, SECRET_KEY=previous)
    assert previous not in str(raised.value)


def test_development_keys_are_generated_once(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    first = _create(tmp_path, TENANT_CONFIG_ENV="development")
    second = _create(tmp_path, TENANT_CONFIG_ENV="development")

    path = tmp_path / "instance" / "dev-keys.json"
    keys = json.loads(path.read_text())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"] == keys["SECRET_KEY"]
    assert first.config["KEYRING"].current.id == second.config["KEYRING"].current.id
    assert "development keys" in caplog.text
    assert keys["CONFIG_ENCRYPTION_KEY"] not in caplog.text


def test_environment_keys_win_over_development_keys(tmp_path):
    key = generate_master_key()
    app = _create(tmp_path, TENANT_CONFIG_ENV="development", CONFIG_ENCRYPTION_KEY=key, SECRET_KEY=GOOD_SECRET)
    assert app.config["SECRET_KEY"] == GOOD_SECRET
    assert not (tmp_path / "instance" / "dev-keys.json").exists()


def test_production_refuses_without_keys(tmp_path):
    with pytest.raises(ConfigError, match="CONFIG_ENCRYPTION_KEY is not set"):
        _create(tmp_path, TENANT_CONFIG_ENV="production")
    assert not (tmp_path / "instance" / "dev-keys.json").exists()


@pytest.mark.parametrize("value, expected", [
    ("postgres://u@db/app", "postgresql+psycopg://u@db/app"),
    ("postgresql://u@db/app", "postgresql+psycopg://u@db/app"),
    ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
    ("sqlite:////var/lib/app.db", "sqlite:////var/lib/app.db"),
])
def test_database_url_is_normalized(value, expected):
    assert database_url(value, "/instance") == expected


def _run_flask(tmp_path, *args, **environ):
    env = {key: value for key, value in os.environ.items()
           if key not in ("CONFIG_ENCRYPTION_KEY", "SECRET_KEY", "TENANT_CONFIG_ENV", "DATABASE_URL")}
    env.update(environ)
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli_refuses_to_start_without_key(tmp_path):
    result = _run_flask(tmp_path, "tenants", "list")
    assert result.returncode != 0
    assert "Configuration error: CONFIG_ENCRYPTION_KEY is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_error_never_prints_bad_key(tmp_path):
    bad_key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="
    result = _run_flask(tmp_path, "tenants", "list", CONFIG_ENCRYPTION_KEY=bad_key, SECRET_KEY=GOOD_SECRET)
    assert result.returncode != 0
    assert "CONFIG_ENCRYPTION_KEY is invalid" in result.stderr
    assert bad_key not in result.stderr + result.stdout


def test_keys_generate_works_without_keys(tmp_path):
    result = _run_flask(tmp_path, "keys", "generate")
    assert result.returncode == 0, result.stderr
    assert len(parse_master_key(result.stdout)) == 32
