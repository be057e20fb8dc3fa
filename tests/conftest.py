"""Shared fixtures: an app on a real SQLite file, and on real PostgreSQL when one is reachable.

PostgreSQL is used when ``TEST_DATABASE_URL`` is set, or when a server accepts
connections on 127.0.0.1:5432 (database ``test``). Each test session works in its
own schema, which it drops at the end.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from tenant_config import create_app
from tenant_config.accounts import create_tenant, create_user, grant
from tenant_config.crypto import generate_master_key

MASTER_KEY = generate_master_key()

# Every log record of the whole run, at DEBUG, checked at the end for secrets.
SECRET_PATTERNS = [
    re.compile(r"[sr]k_(live|test)_[A-Za-z0-9]{6,}"),
    re.compile(r"/services/T[A-Za-z0-9_-]*/B"),
]
KNOWN_SECRETS: set[str] = set()


def remember_secret(value: str) -> str:
    """Register a secret that a test uses, so the run fails if any log line contains it."""
    KNOWN_SECRETS.add(value)
    return value


class _RecordingHandler(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def logs_without_secrets():
    """Capture every log line of the session at DEBUG, and fail the run if one contains a secret."""
    handler = _RecordingHandler()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    previous_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # SQL statement logging carries only ciphertexts and plain settings, and would double the run time.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    yield handler

    root.removeHandler(handler)
    root.setLevel(previous_level)
    text = "\n".join(handler.lines)
    for pattern in SECRET_PATTERNS:
        match = pattern.search(text)
        assert match is None, f"a log line contains a secret matching {pattern.pattern}"
    for secret in KNOWN_SECRETS:
        assert secret not in text, "a log line contains a secret that a test registered"
SECRET_KEY = "test-secret-key-" + uuid.uuid4().hex
PASSWORD = "correct horse battery"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parent.parent


def postgres_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
    except OSError:
        return None
    return DEFAULT_POSTGRES_URL


BACKENDS = ["sqlite"] + (["postgresql"] if postgres_url() else [])


def app_config(database_uri: str, **extra) -> dict:
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_uri,
        "CONFIG_ENCRYPTION_KEY": MASTER_KEY,
        "SECRET_KEY": SECRET_KEY,
        # A real scrypt hash at a low cost, so that tests that create users stay fast.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        # The test client talks plain HTTP, which a Secure cookie would never be sent over.
        "SESSION_COOKIE_SECURE": False,
        "PREFERRED_URL_SCHEME": "http",
    }
    config.update(extra)
    return config


@dataclass
class Database:
    """One test database: how to reach it, and how to empty it between tests."""

    backend: str
    uri: str
    engine_options: dict
    template_path: str | None = None

    def config(self, **extra) -> dict:
        return app_config(self.uri, SQLALCHEMY_ENGINE_OPTIONS=self.engine_options, **extra)


@pytest.fixture(scope="session", params=BACKENDS)
def database_server(request, tmp_path_factory):
    if request.param == "sqlite":
        template = tmp_path_factory.mktemp("sqlite-template") / "template.db"
        database = Database("sqlite", f"sqlite:///{template}", {}, template_path=str(template))
        _migrate(database, tmp_path_factory.mktemp("instance"))
        yield database
        return

    schema = f"tenant_config_test_{uuid.uuid4().hex[:12]}"
    base_url = postgres_url()
    admin_engine = sa.create_engine(base_url)
    with admin_engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    separator = "&" if "?" in base_url else "?"
    database = Database("postgresql", f"{base_url}{separator}options=-csearch_path%3D{schema}", {})
    _migrate(database, tmp_path_factory.mktemp("instance"))
    yield database

    with admin_engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin_engine.dispose()


def _migrate(database: Database, instance_path) -> None:
    app = create_app(database.config(), environ={}, instance_path=str(instance_path))
    with app.app_context():
        upgrade()
        from tenant_config.extensions import db
        db.engine.dispose()


@pytest.fixture
def database(database_server, tmp_path):
    """A migrated, empty database for one test."""
    if database_server.backend == "sqlite":
        path = tmp_path / "tenant_config.db"
        shutil.copyfile(database_server.template_path, path)
        yield Database("sqlite", f"sqlite:///{path}", {}, template_path=str(path))
        return

    yield database_server
    engine = sa.create_engine(database_server.uri, **database_server.engine_options)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "TRUNCATE tenant, user_account, membership, tenant_data_key, config_value, audit_event RESTART IDENTITY CASCADE"
        ))
    engine.dispose()


@pytest.fixture
def app_overrides() -> dict:
    """Extra app config for one test module; a module overrides this fixture to set its own."""
    return {}


@pytest.fixture
def app(database, tmp_path, app_overrides):
    app = create_app(database.config(**app_overrides), environ={}, instance_path=str(tmp_path / "instance"))
    yield app
    with app.app_context():
        from tenant_config.extensions import db
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(database, tmp_path):
    """Build more apps on the test database with other master keys, and dispose of them at the end."""
    apps = []

    def make(current: str, previous: tuple[str, ...] = (), check_stored_keys: bool = True, **extra):
        config = database.config(CONFIG_ENCRYPTION_KEY=current, CONFIG_ENCRYPTION_PREVIOUS_KEYS=",".join(previous))
        config.update(extra)
        instance = tmp_path / f"instance-{len(apps) + 1}"
        other = create_app(config, environ={}, instance_path=str(instance), check_stored_keys=check_stored_keys)
        apps.append(other)
        return other

    yield make
    for other in apps:
        with other.app_context():
            from tenant_config.extensions import db
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def operator_env(database, tmp_path):
    return {
        **{key: value for key, value in os.environ.items() if not key.startswith(("FLASK_", "TENANT_CONFIG_", "CONFIG_ENCRYPTION_"))},
        "DATABASE_URL": database.uri,
        "CONFIG_ENCRYPTION_KEY": MASTER_KEY,
        "SECRET_KEY": SECRET_KEY,
    }


def flask_cli(env, *args, stdin: str | None = None):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )


@dataclass
class World:
    """Two tenants, each with an admin and a member, and one user of both."""

    acme_admin: str = "admin@acme.example"
    acme_member: str = "member@acme.example"
    globex_admin: str = "admin@globex.example"
    globex_member: str = "member@globex.example"
    both_admin: str = "admin@both.example"


@pytest.fixture
def world(app) -> World:
    with app.app_context():
        acme = create_tenant("acme", "Acme")
        globex = create_tenant("globex", "Globex")
        for email, tenant, role in [
            ("admin@acme.example", acme, "admin"),
            ("member@acme.example", acme, "member"),
            ("admin@globex.example", globex, "admin"),
            ("member@globex.example", globex, "member"),
        ]:
            grant(create_user(email, PASSWORD), tenant, role)
        both = create_user("admin@both.example", PASSWORD)
        grant(both, acme, "admin")
        grant(both, globex, "admin")
    return World()


CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_from(html: str) -> str:
    match = CSRF_PATTERN.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


class Browser:
    """A Flask test client that logs in and posts forms with their CSRF token, as a browser does."""

    def __init__(self, client):
        self.client = client

    def login(self, email: str, password: str = PASSWORD):
        token = csrf_from(self.client.get("/login").text)
        response = self.client.post("/login", data={"email": email, "password": password, "csrf_token": token})
        return response

    def token(self, path: str = "/login") -> str:
        return csrf_from(self.client.get(path).text)

    def post_form(self, path: str, data: dict, token_page: str | None = None):
        token = self.token(token_page or "/login")
        return self.client.post(path, data={**data, "csrf_token": token})

    def save(self, slug: str, group: str, fields: dict):
        data = {name.replace(".", "__"): value for name, value in fields.items()}
        return self.post_form(f"/t/{slug}/settings/{group}", data, token_page="/login")

    def get(self, path: str):
        return self.client.get(path)


@pytest.fixture
def browser(app) -> Browser:
    return Browser(app.test_client())


@pytest.fixture
def make_browser(app):
    def make(email: str | None = None) -> Browser:
        browser = Browser(app.test_client())
        if email:
            response = browser.login(email)
            assert response.status_code == 302, f"login failed for {email}"
        return browser
    return make
