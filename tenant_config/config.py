"""Configuration read from the environment and checked before the app starts."""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .crypto import Keyring, KeyFormatError, MasterKey, generate_master_key, parse_master_key
from .outbound.config import OutboundConfigError, outbound_config

logger = logging.getLogger(__name__)

DEV_MODE_VARIABLE = "TENANT_CONFIG_ENV"
DEV_KEYS_FILE = "dev-keys.json"
MIN_SECRET_KEY_LENGTH = 32
KEY_VARIABLES = ("CONFIG_ENCRYPTION_KEY", "CONFIG_ENCRYPTION_PREVIOUS_KEYS", "SECRET_KEY")


class ConfigError(RuntimeError):
    """Configuration that stops start-up. The message names the variable, never its value."""


def load_config(instance_path: str, environ: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Build the Flask config from the environment, with ``overrides`` taking precedence."""
    overrides = dict(overrides or {})
    values = {name: environ[name] for name in KEY_VARIABLES if environ.get(name)}
    values.update({name: overrides.pop(name) for name in KEY_VARIABLES if name in overrides})

    if is_development(environ) and not (values.get("CONFIG_ENCRYPTION_KEY") or values.get("SECRET_KEY")):
        values.update(load_development_keys(Path(instance_path)))

    config: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": database_url(environ.get("DATABASE_URL"), instance_path),
        "SECRET_KEY": values.get("SECRET_KEY"),
        "KEYRING": build_keyring(values.get("CONFIG_ENCRYPTION_KEY"), values.get("CONFIG_ENCRYPTION_PREVIOUS_KEYS")),
        "DATA_KEY_CACHE_SIZE": 1024,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Secure unless in development or turned off for a plain-HTTP deployment behind a trusted network.
        "SESSION_COOKIE_SECURE": _session_cookie_secure(environ),
        # Settings forms are a few kilobytes; larger bodies are rejected before parsing.
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": 3600,
        # Werkzeug's scrypt, at its default cost. Tests lower the cost to run faster.
        "PASSWORD_HASH_METHOD": "scrypt",
        # Shared rate-limit storage for several workers; in-process memory when unset.
        "REDIS_URL": environ.get("REDIS_URL", "").strip() or None,
        # Failed logins allowed per account and per client address (Flask-Limiter notation).
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": environ.get("LOGIN_RATE_LIMIT_PER_ACCOUNT", "").strip() or "10 per 15 minutes",
        "LOGIN_RATE_LIMIT_PER_ADDRESS": environ.get("LOGIN_RATE_LIMIT_PER_ADDRESS", "").strip() or "50 per 15 minutes",
        "PREFERRED_URL_SCHEME": environ.get("PREFERRED_URL_SCHEME", "").strip() or (
            "http" if is_development(environ) else "https"
        ),
        # How many reverse proxies in front of the app set X-Forwarded-For, -Proto and -Host.
        "TRUSTED_PROXY_COUNT": _count(environ, "TRUSTED_PROXY_COUNT"),
    }
    try:
        config.update(outbound_config(environ))
    except OutboundConfigError as error:
        raise ConfigError(str(error)) from None
    config.update(overrides)

    check_secret_key(config["SECRET_KEY"], config["KEYRING"])
    return config


def _count(environ: Mapping[str, str], name: str) -> int:
    text = environ.get(name, "").strip() or "0"
    if not text.isdigit():
        raise ConfigError(f"{name} must be a whole number, such as 1 for one reverse proxy")
    return int(text)


def _session_cookie_secure(environ: Mapping[str, str]) -> bool:
    value = environ.get("SESSION_COOKIE_SECURE", "").strip().lower()
    if value:
        return value in ("1", "true", "yes", "on")
    return not is_development(environ)


def is_development(environ: Mapping[str, str]) -> bool:
    return environ.get(DEV_MODE_VARIABLE, "").strip().lower() == "development"


def database_url(value: str | None, instance_path: str) -> str:
    """Return the SQLAlchemy URL, defaulting to a SQLite file in the instance folder."""
    if not value:
        return f"sqlite:///{Path(instance_path) / 'tenant_config.db'}"
    if value.startswith("postgres://"):
        value = "postgresql://" + value[len("postgres://"):]
    if value.startswith("postgresql://"):
        value = "postgresql+psycopg://" + value[len("postgresql://"):]
    return value


def build_keyring(master_key_text: str | None, previous_keys_text: str | None = None) -> Keyring:
    """Build the keyring from CONFIG_ENCRYPTION_KEY and the comma-separated CONFIG_ENCRYPTION_PREVIOUS_KEYS."""
    current = _parse_current_key(master_key_text)
    previous = _parse_previous_keys(previous_keys_text or "")

    seen = {current.id: "CONFIG_ENCRYPTION_KEY"}
    for position, key in enumerate(previous, start=1):
        where = f"entry {position} of CONFIG_ENCRYPTION_PREVIOUS_KEYS"
        if key.id in seen:
            raise ConfigError(
                f"{where} is the same key as {seen[key.id]} (master key id {key.id}). List each key only once, "
                "and never the current key among the previous ones."
            )
        seen[key.id] = where
    return Keyring(current, previous)


def _parse_current_key(text: str | None) -> MasterKey:
    if not text:
        raise ConfigError(
            "CONFIG_ENCRYPTION_KEY is not set. Set it to base64 of 32 random bytes, "
            "for example the output of `flask --app app keys generate`."
        )
    try:
        return MasterKey(parse_master_key(text))
    except KeyFormatError as error:
        raise ConfigError(
            f"CONFIG_ENCRYPTION_KEY is invalid: {error}. Expected standard or URL-safe base64 of exactly 32 random bytes."
        ) from None


def _parse_previous_keys(text: str) -> list[MasterKey]:
    """Parse each comma-separated entry as strictly as the current key. A blank variable means no previous keys."""
    if not text.strip():
        return []

    keys = []
    for position, entry in enumerate(text.split(","), start=1):
        try:
            keys.append(MasterKey(parse_master_key(entry)))
        except KeyFormatError as error:
            raise ConfigError(
                f"CONFIG_ENCRYPTION_PREVIOUS_KEYS is invalid: entry {position}: {error}. Expected a comma-separated "
                "list in which each entry is standard or URL-safe base64 of exactly 32 random bytes."
            ) from None
    return keys


def check_secret_key(secret_key: str | None, keyring: Keyring) -> None:
    if not secret_key:
        raise ConfigError("SECRET_KEY is not set. Set it to a random string of at least 32 characters.")
    if len(secret_key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"SECRET_KEY is too short. Use a random string of at least {MIN_SECRET_KEY_LENGTH} characters.")

    try:
        secret_as_master = MasterKey(parse_master_key(secret_key))
    except KeyFormatError:
        return
    if secret_as_master.id in keyring.ids:
        raise ConfigError(
            "SECRET_KEY must differ from CONFIG_ENCRYPTION_KEY and from every key in CONFIG_ENCRYPTION_PREVIOUS_KEYS. "
            "Generate a separate random value for each."
        )


def load_development_keys(instance_path: Path) -> dict[str, str]:
    """Read the development keys from the instance folder, creating them on first use."""
    path = instance_path / DEV_KEYS_FILE
    if not path.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        keys = {"CONFIG_ENCRYPTION_KEY": generate_master_key(), "SECRET_KEY": secrets.token_urlsafe(48)}
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(keys, file)
        logger.warning("Generated development keys in %s", path)

    with path.open() as file:
        keys = json.load(file)
    logger.warning(
        "Using development keys from %s. Do not use them in production: set CONFIG_ENCRYPTION_KEY and SECRET_KEY.", path
    )
    return keys
