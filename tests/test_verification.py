"""``keys verify``: every stored data key and value is decrypted in memory, and each failure is reported."""

import base64

import pytest
from sqlalchemy import select

from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.crypto import generate_master_key, master_key_id, parse_master_key
from tenant_config.extensions import db
from tenant_config.models import ConfigValue, TenantDataKey
from tenant_config.values import set_value
from tests.conftest import MASTER_KEY

SECRETS = {
    ("acme", "stripe.secret_key"): "sk_test_acmeVerify1",
    ("acme", "smtp.password"): "pw-acme-verify-1",
    ("globex", "slack.webhook_url"): "https://hooks.slack.com/services/TGLOBEX/BGLOBEX/verify1",
}


@pytest.fixture
def configured(app, world):
    with app.app_context():
        # The host first, because changing it clears a stored SMTP password.
        set_value(find_tenant("acme"), "smtp.host", "smtp.acme.example", Actor.cli())
        for (slug, name), secret in SECRETS.items():
            set_value(find_tenant(slug), name, secret, Actor.cli())
    return app


def value_row(slug: str, name: str) -> ConfigValue:
    tenant = find_tenant(slug)
    return db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id, ConfigValue.key == name)).one()


def flip_byte(blob: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode()


def verify(app):
    return app.test_cli_runner().invoke(args=["keys", "verify"])


def test_verify_passes_clean_database(configured):
    result = verify(configured)

    assert result.exit_code == 0, result.output
    assert "Verified 2 data key(s) and 4 value(s): 0 failed." in result.output
    for secret in SECRETS.values():
        assert secret not in result.output


@pytest.mark.parametrize("index, reason", [
    (0, "the stored ciphertext is malformed"),
    (4, "the ciphertext names data key v0, but the row names v1"),
    (8, "the ciphertext does not authenticate"),
    (20, "the ciphertext does not authenticate"),
    (-1, "the ciphertext does not authenticate"),
])
def test_verify_catches_flipped_byte(configured, index, reason):
    with configured.app_context():
        row = value_row("acme", "stripe.secret_key")
        row.value = flip_byte(row.value, index)
        db.session.commit()

    result = verify(configured)

    assert result.exit_code == 1
    assert f"Failed: tenant acme, stripe.secret_key: {reason}" in result.stderr
    assert result.stderr.count("Failed:") == 1
    assert "Verified 2 data key(s) and 4 value(s): 1 failed." in result.output
    assert SECRETS[("acme", "stripe.secret_key")] not in result.output


def test_verify_reports_damaged_data_key(configured):
    with configured.app_context():
        data_key = db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == find_tenant("globex").id)).one()
        data_key.wrapped_key = flip_byte(data_key.wrapped_key, 30)
        db.session.commit()
        configured.extensions["tenant_config.data_key_cache"].clear()

    result = verify(configured)

    assert result.exit_code == 1
    assert "Failed: tenant globex, data key v1: it cannot be unwrapped with master key" in result.stderr
    assert "Failed: tenant globex, slack.webhook_url: its data key v1 cannot be unwrapped." in result.stderr
    assert "tenant acme" not in result.stderr


def test_verify_reports_unconfigured_master_key(configured, make_app):
    new_key = generate_master_key()
    without_old_key = make_app(new_key, check_stored_keys=False)
    old_id = master_key_id(parse_master_key(MASTER_KEY))

    result = verify(without_old_key)

    assert result.exit_code == 1
    assert f"Failed: tenant acme, data key v1: it is wrapped under master key {old_id}, which is not configured." in result.stderr
    assert "Failed: tenant acme, stripe.secret_key: its data key v1 cannot be unwrapped." in result.stderr
    assert "Verified 2 data key(s) and 4 value(s): 5 failed." in result.output


def test_verify_flags_secret_stored_in_plain_text(configured):
    with configured.app_context():
        row = value_row("acme", "smtp.password")
        row.value = "pw-plain"
        row.data_key_version = None
        db.session.commit()

    result = verify(configured)

    assert result.exit_code == 1
    assert "Failed: tenant acme, smtp.password: it is stored in plain text, but the key is declared encrypted." in result.stderr
    assert "pw-plain" not in result.output
