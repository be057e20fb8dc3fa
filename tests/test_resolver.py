import logging

import pytest
from sqlalchemy import select

from tenant_config import resolver, values
from tenant_config.accounts import create_tenant, find_tenant
from tenant_config.audit import Actor
from tenant_config.crypto import DecryptionError
from tenant_config.extensions import db
from tenant_config.identity import TenantRef
from tenant_config.models import ConfigValue, TenantDataKey
from tenant_config.resolver import KeyNotSetError, TenantNotFoundError, UnknownKeyError, resolve, resolve_many
from tenant_config.secret import Secret

ACME_KEY = "sk_test_acmeAAAA1111"
GLOBEX_KEY = "sk_test_globexBBBB2222"
ACME_HOOK = "https://hooks.slack.com/services/TACME/BACME/acmeSecretPath1"


@pytest.fixture
def configured(app, world):
    with app.app_context():
        actor = Actor.cli()
        values.set_value(find_tenant("acme"), "stripe.secret_key", ACME_KEY, actor)
        values.set_value(find_tenant("acme"), "slack.webhook_url", ACME_HOOK, actor)
        values.set_value(find_tenant("globex"), "stripe.secret_key", GLOBEX_KEY, actor)
        values.set_value(find_tenant("acme"), "smtp.host", "smtp.acme.example", actor)
    return app


def _row(slug, key):
    tenant = find_tenant(slug)
    return db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id, ConfigValue.key == key)).one()


def test_resolver_returns_each_tenants_own_value(configured):
    with configured.app_context():
        acme = resolve("acme", "stripe.secret_key")
        globex = resolve("globex", "stripe.secret_key")
    assert isinstance(acme, Secret)
    assert acme.reveal() == ACME_KEY
    assert globex.reveal() == GLOBEX_KEY


def test_resolver_takes_tenant_ref(configured):
    with configured.app_context():
        acme = find_tenant("acme")
        ref = TenantRef(acme.id, acme.slug, acme.name)
        single = resolve(ref, "stripe.secret_key")
        many = list(resolve_many("stripe.secret_key", [ref, "globex"]))

    assert single.reveal() == ACME_KEY
    assert [(slug, value.reveal()) for slug, value in many] == [("acme", ACME_KEY), ("globex", GLOBEX_KEY)]


def test_resolver_returns_plain_values_and_defaults(configured):
    with configured.app_context():
        assert resolve("acme", "smtp.host") == "smtp.acme.example"
        assert resolve("acme", "smtp.port") == "587"
        assert resolve(find_tenant("globex"), "smtp.security") == "starttls"


def test_resolver_raises_clear_errors(configured):
    with configured.app_context():
        with pytest.raises(UnknownKeyError):
            resolve("acme", "stripe.api_key")
        with pytest.raises(TenantNotFoundError, match="'initech'"):
            resolve("initech", "stripe.secret_key")
        with pytest.raises(KeyNotSetError, match="'smtp.password' is not set for tenant 'globex'"):
            resolve("globex", "smtp.password")


def test_ciphertext_copied_to_other_tenant_fails(configured):
    with configured.app_context():
        _row("globex", "stripe.secret_key").value = _row("acme", "stripe.secret_key").value
        db.session.commit()

        with pytest.raises(DecryptionError) as raised:
            resolve("globex", "stripe.secret_key")
    assert str(raised.value) == "cannot decrypt 'stripe.secret_key' for tenant 'globex'"
    assert ACME_KEY not in str(raised.value)


def test_ciphertext_copied_to_other_key_fails(configured):
    with configured.app_context():
        _row("acme", "slack.webhook_url").value = _row("acme", "stripe.secret_key").value
        db.session.commit()

        with pytest.raises(DecryptionError, match="slack.webhook_url"):
            resolve("acme", "slack.webhook_url")
        assert resolve("acme", "stripe.secret_key").reveal() == ACME_KEY


def test_flipped_ciphertext_byte_fails(configured):
    with configured.app_context():
        row = _row("acme", "stripe.secret_key")
        middle = len(row.value) // 2
        replacement = "A" if row.value[middle] != "A" else "B"
        row.value = row.value[:middle] + replacement + row.value[middle + 1:]
        db.session.commit()

        with pytest.raises(DecryptionError):
            resolve("acme", "stripe.secret_key")
        assert resolve("globex", "stripe.secret_key").reveal() == GLOBEX_KEY


def test_wrong_master_key_fails(configured, database, tmp_path):
    from tenant_config import create_app
    from tenant_config.crypto import generate_master_key

    # The start-up check would stop this app, so skip it to reach the resolver.
    other = create_app(
        database.config(CONFIG_ENCRYPTION_KEY=generate_master_key()), environ={}, instance_path=str(tmp_path / "other"),
        check_stored_keys=False,
    )
    with other.app_context():
        with pytest.raises(DecryptionError, match="stripe.secret_key"):
            resolve("acme", "stripe.secret_key")
        db.session.remove()
        db.engine.dispose()


def test_data_key_swapped_between_tenants_fails(configured):
    with configured.app_context():
        acme, globex = find_tenant("acme"), find_tenant("globex")
        acme_key = db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == acme.id)).one()
        globex_key = db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == globex.id)).one()
        globex_key.wrapped_key = acme_key.wrapped_key
        db.session.commit()
        configured.extensions["tenant_config.data_key_cache"].clear()

        with pytest.raises(DecryptionError, match="globex"):
            resolve("globex", "stripe.secret_key")


def test_resolved_secret_stays_out_of_logs(configured, caplog):
    caplog.set_level(logging.DEBUG)
    with configured.app_context():
        secret = resolve("acme", "slack.webhook_url")
        logging.getLogger("job").info("posting to %s (%r)", secret, secret)
    assert ACME_HOOK not in caplog.text
    assert "acmeSecretPath1" not in caplog.text


def test_resolver_sees_unflushed_changes(configured):
    with configured.app_context():
        _row("globex", "stripe.secret_key").value = _row("acme", "stripe.secret_key").value

        with pytest.raises(DecryptionError, match="globex"):
            resolve("globex", "stripe.secret_key")
        db.session.rollback()
        assert resolve("globex", "stripe.secret_key").reveal() == GLOBEX_KEY


def test_resolve_many_returns_each_tenants_value(configured):
    with configured.app_context():
        resolved = dict(resolve_many("stripe.secret_key"))

    assert sorted(resolved) == ["acme", "globex"]
    assert all(isinstance(value, Secret) for value in resolved.values())
    assert resolved["acme"].reveal() == ACME_KEY
    assert resolved["globex"].reveal() == GLOBEX_KEY


def test_resolve_many_skips_tenants_without_key(configured):
    with configured.app_context():
        resolved = dict(resolve_many("slack.webhook_url"))
        plain = dict(resolve_many("smtp.host"))

    assert list(resolved) == ["acme"]
    assert resolved["acme"].reveal() == ACME_HOOK
    assert plain == {"acme": "smtp.acme.example"}


def test_resolve_many_reports_named_tenants_in_order(configured):
    with configured.app_context():
        pairs = list(resolve_many("slack.webhook_url", ["globex", "initech", find_tenant("acme")]))

    assert [slug for slug, _ in pairs] == ["globex", "initech", "acme"]
    assert isinstance(pairs[0][1], KeyNotSetError)
    assert str(pairs[0][1]) == "'slack.webhook_url' is not set for tenant 'globex'"
    assert isinstance(pairs[1][1], TenantNotFoundError)
    assert pairs[2][1].reveal() == ACME_HOOK


def test_resolve_many_returns_plain_defaults(configured):
    with configured.app_context():
        pairs = list(resolve_many("smtp.port", ["acme", "globex"]))
    assert pairs == [("acme", "587"), ("globex", "587")]


def test_resolve_many_reports_undecryptable_value(configured):
    with configured.app_context():
        _row("globex", "stripe.secret_key").value = _row("acme", "stripe.secret_key").value
        db.session.commit()

        everyone = dict(resolve_many("stripe.secret_key"))
        named = dict(resolve_many("stripe.secret_key", ["globex", "acme"]))

    for resolved in (everyone, named):
        assert isinstance(resolved["globex"], DecryptionError)
        assert str(resolved["globex"]) == "cannot decrypt 'stripe.secret_key' for tenant 'globex'"
        assert ACME_KEY not in str(resolved["globex"])
        assert resolved["acme"].reveal() == ACME_KEY


def test_resolve_many_reports_damaged_data_key(configured):
    with configured.app_context():
        acme = find_tenant("acme")
        data_key = db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == acme.id)).one()
        data_key.wrapped_key = data_key.wrapped_key[:-4] + "AAAA"
        db.session.commit()
        configured.extensions["tenant_config.data_key_cache"].clear()

        everyone = dict(resolve_many("stripe.secret_key"))
        named = dict(resolve_many("stripe.secret_key", ["acme"]))

    assert isinstance(everyone["acme"], DecryptionError)
    assert isinstance(named["acme"], DecryptionError)
    assert everyone["globex"].reveal() == GLOBEX_KEY


def test_resolve_many_wrong_master_key_reports_each(configured, database, tmp_path):
    from tenant_config import create_app
    from tenant_config.crypto import generate_master_key

    # The start-up check would stop this app, so skip it to reach the resolver.
    other = create_app(
        database.config(CONFIG_ENCRYPTION_KEY=generate_master_key()), environ={}, instance_path=str(tmp_path / "other"),
        check_stored_keys=False,
    )
    with other.app_context():
        resolved = dict(resolve_many("stripe.secret_key"))
        db.session.remove()
        db.engine.dispose()

    assert sorted(resolved) == ["acme", "globex"]
    assert all(isinstance(value, DecryptionError) for value in resolved.values())


def test_resolve_many_rejects_unknown_key_before_iterating(configured):
    with configured.app_context():
        with pytest.raises(UnknownKeyError):
            resolve_many("stripe.api_key")
        with pytest.raises(UnknownKeyError):
            resolve_many("stripe.api_key", ["acme"])


def test_resolve_many_matches_resolve_across_batches(configured, monkeypatch):
    monkeypatch.setattr(resolver, "BULK_BATCH_SIZE", 3)
    with configured.app_context():
        actor = Actor.cli()
        slugs = []
        for number in range(8):
            tenant = create_tenant(f"tenant-{number}", f"Tenant {number}")
            values.set_value(tenant, "stripe.secret_key", f"sk_test_tenant{number}", actor)
            slugs.append(tenant.slug)

        requested = ["globex", *slugs, "acme", "tenant-3", "initech"]
        pairs = list(resolve_many("stripe.secret_key", requested))
        everyone = {slug: value.reveal() for slug, value in resolve_many("stripe.secret_key")}
        single = {slug: resolve(slug, "stripe.secret_key").reveal() for slug in ["globex", "acme", *slugs]}

    assert [slug for slug, _ in pairs] == requested
    assert {slug: value.reveal() for slug, value in pairs[:-1]} == single
    assert isinstance(pairs[-1][1], TenantNotFoundError)
    assert everyone == single


def test_resolve_many_leaves_data_key_cache_alone(configured):
    cache = configured.extensions["tenant_config.data_key_cache"]
    cache.clear()
    with configured.app_context():
        assert len(dict(resolve_many("stripe.secret_key"))) == 2
        assert len(dict(resolve_many("stripe.secret_key", ["acme", "globex"]))) == 2
    assert len(cache) == 0
