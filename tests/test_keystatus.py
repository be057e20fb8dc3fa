"""``keys status`` and the start-up check that the configured keys can unwrap the stored data keys."""

import logging
import uuid

import pytest
import sqlalchemy as sa

from tenant_config import ConfigError, create_app
from tenant_config.accounts import create_tenant, find_tenant
from tenant_config.audit import Actor
from tenant_config.crypto import generate_master_key, master_key_id, parse_master_key
from tenant_config.values import set_value
from tests.conftest import MASTER_KEY, app_config, flask_cli

MASTER_ID = master_key_id(parse_master_key(MASTER_KEY))


def key_id(key: str) -> str:
    return master_key_id(parse_master_key(key))


def output_rows(output: str) -> list[list[str]]:
    """Split each output line into words, so that checks do not depend on column widths."""
    return [line.split() for line in output.splitlines()]


def add_tenant(app, slug: str, secret: str | None = None) -> None:
    with app.app_context():
        tenant = create_tenant(slug, slug.title())
        if secret:
            set_value(tenant, "smtp.password", secret, Actor.cli())


def test_status_counts_keys_and_values(app, world, make_app):
    with app.app_context():
        set_value(find_tenant("acme"), "stripe.secret_key", "sk_test_status1", Actor.cli())
        set_value(find_tenant("acme"), "smtp.host", "smtp.acme.example", Actor.cli())
    new_key = generate_master_key()
    rotated = make_app(new_key, previous=(MASTER_KEY,))
    add_tenant(rotated, "initech", secret="pw-status-initech")

    result = rotated.test_cli_runner().invoke(args=["keys", "status"])

    assert result.exit_code == 0, result.output
    assert f"  {key_id(new_key)}  current (CONFIG_ENCRYPTION_KEY)" in result.output
    assert f"  {MASTER_ID}  previous (CONFIG_ENCRYPTION_PREVIOUS_KEYS)" in result.output
    rows = output_rows(result.output)
    assert [key_id(new_key), "1", "current"] in rows
    assert [MASTER_ID, "2", "previous"] in rows
    assert ["v1", "2"] in rows
    assert "Plain values: 1" in result.output
    assert "2 data key(s) use a previous master key. Run `keys rotate`." in result.output


def test_status_fails_on_unconfigured_key(app, world, make_app):
    new_key = generate_master_key()
    add_tenant(make_app(new_key, check_stored_keys=False), "initech")
    without_old_key = make_app(new_key)

    result = without_old_key.test_cli_runner().invoke(args=["keys", "status"])

    assert result.exit_code == 1
    assert [MASTER_ID, "2", "NOT", "CONFIGURED"] in output_rows(result.output)
    assert f"2 data key(s) are wrapped under master key ids that are not configured: {MASTER_ID}." in result.stderr
    assert "CONFIG_ENCRYPTION_PREVIOUS_KEYS" in result.stderr
    assert new_key not in result.output
    assert MASTER_KEY not in result.output


def test_status_on_empty_database(app):
    result = app.test_cli_runner().invoke(args=["keys", "status"])
    assert result.exit_code == 0, result.output
    assert "  (none)" in result.output
    assert "Every data key uses the current master key." in result.output


def test_wrong_key_stops_startup(world, make_app):
    wrong_key, wrong_previous = generate_master_key(), generate_master_key()
    with pytest.raises(ConfigError) as raised:
        make_app(wrong_key, previous=(wrong_previous,))

    message = str(raised.value)
    assert "no configured master key can unwrap the tenant data keys" in message
    assert f"{MASTER_ID} (2 data keys)" in message
    assert f"{key_id(wrong_key)} (CONFIG_ENCRYPTION_KEY)" in message
    assert f"{key_id(wrong_previous)} (CONFIG_ENCRYPTION_PREVIOUS_KEYS)" in message
    assert "Set CONFIG_ENCRYPTION_KEY to the key that this database was written with" in message
    for key in (wrong_key, wrong_previous, MASTER_KEY):
        assert key not in message


def test_previous_key_alone_lets_app_start(world, make_app):
    started = make_app(generate_master_key(), previous=(MASTER_KEY,))
    assert started.config["KEYRING"].previous_ids == [MASTER_ID]


def test_empty_database_starts_with_any_key(make_app):
    assert make_app(generate_master_key()).config["KEYRING"].current.id


def test_some_unconfigured_keys_log_warning(app, world, make_app, caplog):
    new_key = generate_master_key()
    add_tenant(make_app(new_key, check_stored_keys=False), "initech")
    caplog.set_level(logging.WARNING)

    make_app(new_key)

    assert f"2 tenant data keys are wrapped under master key ids {MASTER_ID}, which are not configured" in caplog.text
    assert new_key not in caplog.text


@pytest.fixture
def database_without_tables(database_server, tmp_path):
    """The URL of a database in which no migration has run yet."""
    if database_server.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return

    schema = f"tenant_config_fresh_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(database_server.uri)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    base = database_server.uri.split("?", 1)[0]
    yield f"{base}?options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def test_database_without_tables_starts(database_without_tables, tmp_path):
    app = create_app(app_config(database_without_tables), environ={}, instance_path=str(tmp_path / "instance"))
    with app.app_context():
        from tenant_config.extensions import db
        assert not sa.inspect(db.engine).has_table("tenant_data_key")
        db.engine.dispose()


def test_cli_with_wrong_key(world, operator_env):
    wrong_env = {**operator_env, "CONFIG_ENCRYPTION_KEY": generate_master_key()}

    listing = flask_cli(wrong_env, "tenants", "list")
    assert listing.returncode != 0
    assert "Configuration error: no configured master key can unwrap the tenant data keys" in listing.stderr
    assert MASTER_ID in listing.stderr
    assert "Traceback" not in listing.stderr

    status = flask_cli(wrong_env, "keys", "status")
    assert status.returncode == 1
    assert [MASTER_ID, "2", "NOT", "CONFIGURED"] in output_rows(status.stdout)

    for args in (("db", "upgrade"), ("keys", "generate")):
        result = flask_cli(wrong_env, *args)
        assert result.returncode == 0, f"{args}: {result.stderr}"

    for output in (listing.stdout + listing.stderr, status.stdout + status.stderr):
        assert wrong_env["CONFIG_ENCRYPTION_KEY"] not in output
        assert MASTER_KEY not in output


@pytest.mark.parametrize("args", [
    ["keys", "status"],
    ["keys", "rotate"],
    ["keys", "rotate-tenant", "--all"],
    ["keys", "verify"],
])
def test_key_commands_need_tables(database_without_tables, tmp_path, args):
    app = create_app(app_config(database_without_tables), environ={}, instance_path=str(tmp_path / "instance"))
    result = app.test_cli_runner().invoke(args=args)
    with app.app_context():
        from tenant_config.extensions import db
        db.engine.dispose()

    assert result.exit_code == 1
    assert "the database has no tables yet; run `flask --app app db upgrade` first" in result.output
