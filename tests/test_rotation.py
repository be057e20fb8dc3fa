"""``keys rotate``: rewrapping every data key under a new master key, and resuming after an interruption."""

import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from tenant_config import rotation
from tenant_config.accounts import create_tenant, find_tenant
from tenant_config.audit import Actor
from tenant_config.crypto import (
    DecryptionError, Keyring, MasterKey, decrypt_value, generate_master_key, master_key_id, parse_master_key,
    unwrap_data_key,
)
from tenant_config.extensions import db
from tenant_config.models import ConfigValue, Tenant, TenantDataKey
from tenant_config.resolver import resolve
from tenant_config.values import set_value
from tests.bulk import insert_tenants
from tests.conftest import MASTER_KEY, ROOT, flask_cli

SECRETS = {
    ("acme", "stripe.secret_key"): "sk_test_acmeRotate1",
    ("acme", "smtp.password"): "pw-acme-rotate-1",
    ("globex", "slack.webhook_url"): "https://hooks.slack.com/services/TGLOBEX/BGLOBEX/rotate1",
}


def master(key: str) -> MasterKey:
    return MasterKey(parse_master_key(key))


def key_id(key: str) -> str:
    return master_key_id(parse_master_key(key))


def store_secrets(app) -> None:
    with app.app_context():
        for (slug, name), secret in SECRETS.items():
            set_value(find_tenant(slug), name, secret, Actor.cli())


def keys_by_master_id() -> dict[str, int]:
    rows = db.session.execute(select(TenantDataKey.master_key_id, func.count()).group_by(TenantDataKey.master_key_id))
    return dict(rows.all())


def decrypt_every_value(keyring: Keyring) -> dict[tuple[str, str], str]:
    """Decrypt every stored secret with the given keyring, without the app's data key cache."""
    query = (
        select(Tenant.slug, ConfigValue.key, ConfigValue.value, TenantDataKey.tenant_id, TenantDataKey.version,
               TenantDataKey.master_key_id, TenantDataKey.wrapped_key)
        .join(Tenant, Tenant.id == ConfigValue.tenant_id)
        .join(TenantDataKey, sa.and_(
            TenantDataKey.tenant_id == ConfigValue.tenant_id, TenantDataKey.version == ConfigValue.data_key_version,
        ))
    )
    plaintexts = {}
    for slug, name, blob, tenant_id, version, master_id, wrapped in db.session.execute(query):
        data_key = unwrap_data_key(keyring, tenant_id, version, master_id, wrapped)
        plaintexts[(slug, name)] = decrypt_value(data_key, tenant_id, name, blob)
    return plaintexts


def test_rotation_drill(app, world, make_app):
    store_secrets(app)
    new_key = generate_master_key()

    both = make_app(new_key, previous=(MASTER_KEY,))
    rotated = both.test_cli_runner().invoke(args=["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "Rewrapping 2 data key(s)" in rotated.output
    assert "Rewrapped: 2, already current: 0, failed: 0." in rotated.output

    status = both.test_cli_runner().invoke(args=["keys", "status"])
    assert status.exit_code == 0
    assert [key_id(MASTER_KEY), "0", "previous"] in [line.split() for line in status.output.splitlines()]
    assert "No data key in this database uses the previous keys any more." in status.output

    only_new = make_app(new_key)
    with only_new.app_context():
        assert keys_by_master_id() == {key_id(new_key): 2}
        for (slug, name), secret in SECRETS.items():
            assert resolve(slug, name).reveal() == secret
    assert only_new.test_cli_runner().invoke(args=["keys", "status"]).exit_code == 0
    verified = only_new.test_cli_runner().invoke(args=["keys", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "Verified 2 data key(s) and 3 value(s): 0 failed." in verified.output


def test_rotation_is_idempotent(app, world, make_app):
    both = make_app(generate_master_key(), previous=(MASTER_KEY,))
    first = both.test_cli_runner().invoke(args=["keys", "rotate"])
    second = both.test_cli_runner().invoke(args=["keys", "rotate"])

    assert first.exit_code == 0
    assert second.exit_code == 0
    assert "Rewrapped: 0, already current: 2, failed: 0." in second.output


def test_rotation_leaves_values_untouched(app, world, make_app):
    store_secrets(app)
    with app.app_context():
        before = db.session.execute(select(ConfigValue.id, ConfigValue.value, ConfigValue.row_version)).all()

    both = make_app(generate_master_key(), previous=(MASTER_KEY,))
    assert both.test_cli_runner().invoke(args=["keys", "rotate"]).exit_code == 0

    with both.app_context():
        after = db.session.execute(select(ConfigValue.id, ConfigValue.value, ConfigValue.row_version)).all()
    assert sorted(after) == sorted(before)


def test_rotation_in_small_batches(app, make_app):
    with app.app_context():
        secrets = insert_tenants(master(MASTER_KEY), 7)
    new_key = generate_master_key()
    both = make_app(new_key, previous=(MASTER_KEY,))

    batches = []
    with both.app_context():
        result = rotation.rotate_master_key(both.config["KEYRING"], batch_size=3, on_batch=batches.append)
        assert keys_by_master_id() == {key_id(new_key): 7}
        plaintexts = decrypt_every_value(Keyring(master(new_key)))

    assert batches == [3, 3, 1]
    assert result.rewrapped == 7
    assert {slug: text for (slug, _), text in plaintexts.items()} == secrets


def test_rotation_names_failed_tenants(app, make_app):
    unknown_key = generate_master_key()
    with app.app_context():
        insert_tenants(master(MASTER_KEY), 3, prefix="known")
        insert_tenants(master(unknown_key), 2, prefix="lost")
        damaged = db.session.scalars(
            select(TenantDataKey).join(Tenant).where(Tenant.slug == "known-00001")
        ).one()
        damaged.wrapped_key = damaged.wrapped_key[:-6] + ("AAAAAA" if not damaged.wrapped_key.endswith("AAAAAA") else "BBBBBB")
        db.session.commit()

    new_key = generate_master_key()
    both = make_app(new_key, previous=(MASTER_KEY,))
    result = both.test_cli_runner().invoke(args=["keys", "rotate"])

    assert result.exit_code == 1
    assert "Rewrapped: 2, already current: 0, failed: 3." in result.output
    assert "Tenants not rotated: known-00001, lost-00000, lost-00001." in result.stderr
    assert f"tenant lost-00000, data key v1: it is wrapped under master key {key_id(unknown_key)}, which is not configured" in result.stderr
    assert "tenant known-00001, data key v1: it cannot be unwrapped with master key" in result.stderr
    for key in (new_key, unknown_key, MASTER_KEY):
        assert key not in result.output


def terminate_session_connection() -> None:
    """Close the session's PostgreSQL connection from the server side, as a failover or restart would."""
    backend = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    db.session.commit()
    admin = sa.create_engine(db.engine.url)
    with admin.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    admin.dispose()


def lock_sqlite_database(uri: str) -> sa.engine.Connection:
    """Take SQLite's exclusive lock from another connection, so that the next statement of the app fails."""
    engine = sa.create_engine(uri, connect_args={"isolation_level": None})
    connection = engine.connect()
    connection.exec_driver_sql("BEGIN EXCLUSIVE")
    return connection


@pytest.mark.parametrize("interruption", ["keyboard interrupt", "database error"])
def test_rotation_resumes_after_interruption(app, database, make_app, interruption):
    with app.app_context():
        secrets = insert_tenants(master(MASTER_KEY), 12)
    new_key = generate_master_key()
    # A short SQLite busy timeout, so that the locked database fails the next batch at once.
    engine_options = {"connect_args": {"timeout": 0.2}} if database.backend == "sqlite" else {}
    both = make_app(new_key, previous=(MASTER_KEY,), SQLALCHEMY_ENGINE_OPTIONS=engine_options)
    locks = []

    def interrupt(count: int) -> None:
        if interruption == "keyboard interrupt":
            raise KeyboardInterrupt
        if database.backend == "postgresql":
            terminate_session_connection()
        else:
            locks.append(lock_sqlite_database(database.uri))

    expected = KeyboardInterrupt if interruption == "keyboard interrupt" else OperationalError
    with both.app_context():
        with pytest.raises(expected):
            rotation.rotate_master_key(both.config["KEYRING"], batch_size=5, on_batch=interrupt)
        db.session.rollback()
    for lock in locks:
        lock.exec_driver_sql("ROLLBACK")
        lock.close()
        lock.engine.dispose()

    with both.app_context():
        assert keys_by_master_id() == {key_id(new_key): 5, key_id(MASTER_KEY): 7}
        result = rotation.rotate_master_key(both.config["KEYRING"], batch_size=5)
        assert (result.rewrapped, result.already_current, result.failures) == (7, 5, [])
        plaintexts = decrypt_every_value(Keyring(master(new_key)))
    assert {slug: text for (slug, _), text in plaintexts.items()} == secrets


KILL_TEST_TENANTS = 3000
KILL_TEST_BATCH = 100


def wait_for_progress(engine, master_id: str, process: subprocess.Popen, deadline_seconds: float = 120) -> int:
    """Poll the database until the rotation has committed at least one batch; return the count then."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            done = connection.execute(
                sa.text("SELECT count(*) FROM tenant_data_key WHERE master_key_id = :id"), {"id": master_id}
            ).scalar_one()
        if done or process.poll() is not None:
            return done
        time.sleep(0.02)
    raise AssertionError(f"keys rotate committed no batch within {deadline_seconds} s")


def test_rotation_survives_sigkill(app, database, operator_env):
    with app.app_context():
        secrets = insert_tenants(master(MASTER_KEY), KILL_TEST_TENANTS)
    new_key = generate_master_key()
    env = {**operator_env, "CONFIG_ENCRYPTION_KEY": new_key, "CONFIG_ENCRYPTION_PREVIOUS_KEYS": MASTER_KEY}

    # The pause between batches keeps the run long enough to be killed in the middle.
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "keys", "rotate",
         "--batch-size", str(KILL_TEST_BATCH), "--pause", "0.2"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    engine = sa.create_engine(database.uri)
    try:
        wait_for_progress(engine, key_id(new_key), process)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL, "keys rotate ended before it was killed"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    engine.dispose()

    with app.app_context():
        counts = keys_by_master_id()
        done = counts.get(key_id(new_key), 0)
        assert 0 < done < KILL_TEST_TENANTS, "the kill did not come in the middle of the run"
        assert done % KILL_TEST_BATCH == 0, "a batch was committed in part"
        assert counts[key_id(MASTER_KEY)] == KILL_TEST_TENANTS - done
        both = Keyring(master(new_key), [master(MASTER_KEY)])
        assert {slug: text for (slug, _), text in decrypt_every_value(both).items()} == secrets

    again = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "keys", "rotate"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert again.returncode == 0, again.stderr
    assert f"Rewrapped: {KILL_TEST_TENANTS - done}, already current: {done}, failed: 0." in again.stdout

    with app.app_context():
        assert keys_by_master_id() == {key_id(new_key): KILL_TEST_TENANTS}
        only_new = Keyring(master(new_key))
        assert {slug: text for (slug, _), text in decrypt_every_value(only_new).items()} == secrets
        with pytest.raises(DecryptionError):
            decrypt_every_value(Keyring(master(MASTER_KEY)))


def test_readme_rotation_through_real_cli(app, operator_env):
    """Follow the README's master key rotation from generating the new key to removing the old one."""
    with app.app_context():
        set_value(create_tenant("initech", "Initech"), "smtp.password", "pw-initech-readme", Actor.cli())

    generated = flask_cli(operator_env, "keys", "generate")
    new_key = generated.stdout.strip()
    both = {**operator_env, "CONFIG_ENCRYPTION_KEY": new_key, "CONFIG_ENCRYPTION_PREVIOUS_KEYS": MASTER_KEY}
    only_new = {**operator_env, "CONFIG_ENCRYPTION_KEY": new_key}

    rotated = flask_cli(both, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "Rewrapped: 1, already current: 0, failed: 0." in rotated.stdout

    status = flask_cli(both, "keys", "status")
    assert status.returncode == 0, status.stderr
    assert [key_id(MASTER_KEY), "0", "previous"] in [line.split() for line in status.stdout.splitlines()]

    for env in (both, only_new):
        verified = flask_cli(env, "keys", "verify")
        assert verified.returncode == 0, verified.stderr
        assert "Verified 1 data key(s) and 1 value(s): 0 failed." in verified.stdout

    listing = flask_cli(only_new, "config", "list", "--tenant", "initech")
    assert listing.returncode == 0, listing.stderr
    assert "smtp.password        ********" in listing.stdout
    for result in (generated, rotated, status, listing):
        assert "pw-initech-readme" not in result.stdout + result.stderr
        assert MASTER_KEY not in result.stdout + result.stderr
