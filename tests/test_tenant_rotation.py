"""``keys rotate-tenant``: a new data key per tenant, with every value re-encrypted and no concurrent save lost."""

import threading

import pytest
from sqlalchemy import select

from tenant_config import datakeys
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.extensions import db
from tenant_config.models import AuditEvent, ConfigValue, TenantDataKey
from tenant_config.resolver import resolve
from tenant_config.tenant_rotation import rotate_tenant_key
from tenant_config.values import set_value

SECRETS = {
    ("acme", "stripe.secret_key"): "sk_test_acmeTenantRotate1",
    ("acme", "slack.webhook_url"): "https://hooks.slack.com/services/TACME/BACME/tenantRotate1",
    ("acme", "smtp.password"): "pw-acme-tenant-rotate",
    ("globex", "stripe.secret_key"): "sk_test_globexTenantRotate1",
}


@pytest.fixture
def configured(app, world):
    with app.app_context():
        # The host first, because changing it clears a stored SMTP password.
        set_value(find_tenant("acme"), "smtp.host", "smtp.acme.example", Actor.cli())
        for (slug, name), secret in SECRETS.items():
            set_value(find_tenant(slug), name, secret, Actor.cli())
    return app


def data_key_versions(slug: str) -> list[int]:
    tenant = find_tenant(slug)
    query = select(TenantDataKey.version).where(TenantDataKey.tenant_id == tenant.id).order_by(TenantDataKey.version)
    return list(db.session.scalars(query))


def value_rows(slug: str) -> dict[str, tuple[str, int | None]]:
    tenant = find_tenant(slug)
    rows = db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id))
    return {row.key: (row.value, row.data_key_version) for row in rows}


def flip_byte(slug: str, name: str) -> str:
    """Damage one stored ciphertext in the middle and return the damaged text."""
    tenant = find_tenant(slug)
    row = db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id, ConfigValue.key == name)).one()
    middle = len(row.value) // 2
    row.value = row.value[:middle] + ("A" if row.value[middle] != "A" else "B") + row.value[middle + 1:]
    db.session.commit()
    return row.value


def test_rotate_tenant_moves_every_value(configured):
    with configured.app_context():
        globex_before = value_rows("globex")

    result = configured.test_cli_runner().invoke(args=["keys", "rotate-tenant", "acme"])

    assert result.exit_code == 0, result.output
    assert "acme: data key v2, 3 value(s) re-encrypted, older data keys deleted." in result.output
    assert "Rotated: 1 tenant(s), values re-encrypted: 3, failed: 0." in result.output
    with configured.app_context():
        assert data_key_versions("acme") == [2]
        rows = value_rows("acme")
        assert {name: version for name, (_, version) in rows.items()} == {
            "stripe.secret_key": 2, "slack.webhook_url": 2, "smtp.password": 2, "smtp.host": None,
        }
        for (slug, name), secret in SECRETS.items():
            assert resolve(slug, name).reveal() == secret
        assert resolve("acme", "smtp.host") == "smtp.acme.example"
        assert data_key_versions("globex") == [1]
        assert value_rows("globex") == globex_before
        actions = db.session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == find_tenant("acme").id))
        assert "rotate_data_key" in list(actions)
    for secret in SECRETS.values():
        assert secret not in result.output


def test_rotate_tenant_all(configured):
    result = configured.test_cli_runner().invoke(args=["keys", "rotate-tenant", "--all"])

    assert result.exit_code == 0, result.output
    assert "Rotated: 2 tenant(s), values re-encrypted: 4, failed: 0." in result.output
    with configured.app_context():
        assert data_key_versions("acme") == [2]
        assert data_key_versions("globex") == [2]
        for (slug, name), secret in SECRETS.items():
            assert resolve(slug, name).reveal() == secret


@pytest.mark.parametrize("args, message", [
    ([], "Give a tenant SLUG, or --all to rotate every tenant."),
    (["acme", "--all"], "Give either a tenant SLUG or --all, not both."),
    (["initech"], "tenant 'initech' not found"),
])
def test_rotate_tenant_argument_errors(configured, args, message):
    result = configured.test_cli_runner().invoke(args=["keys", "rotate-tenant", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_undecryptable_value_is_left_alone(configured, make_browser, world):
    with configured.app_context():
        damaged = flip_byte("acme", "stripe.secret_key")

    result = configured.test_cli_runner().invoke(args=["keys", "rotate-tenant", "acme"])

    assert result.exit_code == 1
    assert "Failed: tenant acme, stripe.secret_key: it cannot be decrypted" in result.stderr
    assert "Tenants not fully rotated: acme." in result.stderr
    assert "acme: data key v2, 2 value(s) re-encrypted, older data keys kept." in result.output
    with configured.app_context():
        assert data_key_versions("acme") == [1, 2]
        rows = value_rows("acme")
        assert rows["stripe.secret_key"] == (damaged, 1)
        assert rows["slack.webhook_url"][1] == 2
        assert resolve("acme", "smtp.password").reveal() == SECRETS[("acme", "smtp.password")]

    make_browser(world.acme_admin).save("acme", "stripe", {"stripe.secret_key": "sk_test_reentered1"})
    again = configured.test_cli_runner().invoke(args=["keys", "rotate-tenant", "acme"])

    assert again.exit_code == 0, again.output
    with configured.app_context():
        assert data_key_versions("acme") == [3]
        assert resolve("acme", "stripe.secret_key").reveal() == "sk_test_reentered1"


def test_rotate_tenant_finishes_interrupted_run(configured):
    # The state that a run killed after committing its new key leaves behind:
    # two data keys, with a save made meanwhile already under the newer one.
    with configured.app_context():
        datakeys.next_data_key(find_tenant("acme"))
        db.session.commit()
        set_value(find_tenant("acme"), "smtp.password", "pw-saved-meanwhile", Actor.cli())
        assert value_rows("acme")["smtp.password"][1] == 2
        assert value_rows("acme")["stripe.secret_key"][1] == 1

        result = rotate_tenant_key(find_tenant("acme"), Actor.cli())

        assert result.ok
        assert (result.new_version, result.moved) == (3, 3)
        assert data_key_versions("acme") == [3]
        assert resolve("acme", "smtp.password").reveal() == "pw-saved-meanwhile"
        assert resolve("acme", "stripe.secret_key").reveal() == SECRETS[("acme", "stripe.secret_key")]


WRITERS = [
    ("acme", "stripe.secret_key"),
    ("acme", "slack.webhook_url"),
    ("acme", "smtp.password"),
    ("globex", "stripe.secret_key"),
    ("globex", "slack.webhook_url"),
    ("globex", "smtp.password"),
]
SAVES_PER_WRITER = 60


def writer_value(slug: str, name: str, number: int) -> str:
    if name == "stripe.secret_key":
        return f"sk_test_{slug}{number:04d}"
    if name == "slack.webhook_url":
        return f"https://hooks.slack.com/services/T{slug}/B{number:04d}/writer"
    return f"pw-{slug}-{number:04d}"


def test_saves_during_rotation_are_kept(app, world):
    """Writer threads save values while the main thread rotates both tenants' data keys again and again.

    On PostgreSQL the rotation and the saves lock rows and run side by side.
    SQLite has only a database-wide write lock, so there each save and each
    rotation batch takes turns, and the test checks that their interleaving
    loses nothing.
    """
    start = threading.Barrier(len(WRITERS) + 1)
    last_saved: dict[tuple[str, str], str] = {}
    errors: list[BaseException] = []

    def write(slug: str, name: str) -> None:
        try:
            with app.app_context():
                start.wait()
                for number in range(SAVES_PER_WRITER):
                    value = writer_value(slug, name, number)
                    set_value(find_tenant(slug), name, value, Actor(label=f"writer {slug} {name}"))
                    last_saved[(slug, name)] = value
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=writer) for writer in WRITERS]
    for thread in threads:
        thread.start()

    rotations_during_saves = 0
    results = []
    with app.app_context():
        start.wait()
        while any(thread.is_alive() for thread in threads):
            for slug in ("acme", "globex"):
                results.append(rotate_tenant_key(find_tenant(slug), Actor.cli()))
            rotations_during_saves += 1
        for thread in threads:
            thread.join()

        assert errors == []
        assert rotations_during_saves >= 1, "no rotation ran while the writers were saving"
        assert [result for result in results if not result.ok] == []
        assert len(last_saved) == len(WRITERS)
        for slug in ("acme", "globex"):
            assert len(data_key_versions(slug)) == 1
            current = data_key_versions(slug)[0]
            assert {version for _, version in value_rows(slug).values()} == {current}
        for (slug, name), value in last_saved.items():
            assert value == writer_value(slug, name, SAVES_PER_WRITER - 1)
            assert resolve(slug, name).reveal() == value, f"{slug} {name} lost its last save"
