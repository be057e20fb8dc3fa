"""Benchmark databases: a SQLite file or a PostgreSQL schema, migrated and removed by the benchmark itself."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from tenant_config import create_app
from tenant_config.crypto import Keyring, MasterKey, generate_master_key, parse_master_key
from tenant_config.extensions import db

POSTGRES_URL_VARIABLE = "BENCH_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SQLITE = "sqlite"
POSTGRESQL = "postgresql"


def postgres_url() -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL


def postgres_unavailable_reason() -> str | None:
    """Return why PostgreSQL cannot be used, or None when it accepts connections."""
    url = sa.make_url(postgres_url())
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        first_line = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        return f"PostgreSQL at {url.host}:{url.port or 5432}/{url.database} is not reachable ({first_line}); set {POSTGRES_URL_VARIABLE}"
    finally:
        engine.dispose()
    return None


@dataclass
class Keys:
    """The master key and session key of one benchmark database."""

    master_text: str
    secret_key: str

    @classmethod
    def generate(cls) -> Keys:
        return cls(master_text=generate_master_key(), secret_key=secrets.token_urlsafe(48))

    @property
    def master(self) -> MasterKey:
        return MasterKey(parse_master_key(self.master_text))


@dataclass
class BenchDatabase:
    """One migrated database that a benchmark fills, and the folder for its app's instance files."""

    backend: str
    url: str
    folder: Path
    keys: Keys

    @property
    def label(self) -> str:
        return "SQLite" if self.backend == SQLITE else "PostgreSQL"

    def app(self, keyring: Keyring | None = None, **config: Any) -> Flask:
        """Create the product's app on this database, with ``keyring`` replacing the one built from the master key."""
        settings = {
            "SQLALCHEMY_DATABASE_URI": self.url,
            "CONFIG_ENCRYPTION_KEY": self.keys.master_text,
            "SECRET_KEY": self.keys.secret_key,
        }
        if keyring is not None:
            settings["KEYRING"] = keyring
        settings.update(config)
        return create_app(settings, environ={}, instance_path=str(self.folder / f"instance-{uuid.uuid4().hex[:8]}"))

    def environment(self) -> dict[str, str]:
        """Return the environment variables that make ``app:app`` use this database and its keys."""
        return {
            "DATABASE_URL": self.url,
            "CONFIG_ENCRYPTION_KEY": self.keys.master_text,
            "SECRET_KEY": self.keys.secret_key,
        }

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url)


def _migrate(database: BenchDatabase) -> None:
    app = database.app()
    with app.app_context():
        upgrade()
        db.session.remove()
        db.engine.dispose()


@contextmanager
def sqlite_database(parent: Path) -> Iterator[BenchDatabase]:
    """Yield a migrated SQLite file in a new folder under ``parent``, and delete the folder afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="sqlite-", dir=parent))
    database = BenchDatabase(SQLITE, f"sqlite:///{folder / 'bench.db'}", folder, Keys.generate())
    try:
        _migrate(database)
        yield database
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_database(parent: Path) -> Iterator[BenchDatabase]:
    """Yield a migrated schema of its own on the PostgreSQL server, and drop it afterwards."""
    schema = f"tenant_config_bench_{uuid.uuid4().hex[:12]}"
    base_url = postgres_url()
    admin_engine = sa.create_engine(base_url)
    with admin_engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    separator = "&" if "?" in base_url else "?"
    folder = Path(tempfile.mkdtemp(prefix="postgresql-", dir=parent))
    url = f"{base_url}{separator}options=-csearch_path%3D{schema}"
    database = BenchDatabase(POSTGRESQL, url, folder, Keys.generate())
    try:
        _migrate(database)
        yield database
    finally:
        with admin_engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def bench_database(backend: str, parent: Path) -> Iterator[BenchDatabase]:
    opener = sqlite_database if backend == SQLITE else postgres_database
    with opener(parent) as database:
        yield database
