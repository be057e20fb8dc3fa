import pytest
from sqlalchemy import func, select

from tenant_config.accounts import find_tenant, find_user
from tenant_config.crypto import parse_master_key
from tenant_config.extensions import db
from tenant_config.models import AuditEvent, ConfigValue, Membership, TenantDataKey
from tenant_config.resolver import resolve


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def test_keys_generate_prints_valid_distinct_keys(runner):
    first = runner.invoke(args=["keys", "generate"])
    second = runner.invoke(args=["keys", "generate"])
    assert first.exit_code == 0
    assert len(parse_master_key(first.output)) == 32
    assert first.output != second.output


def test_tenants_create_makes_data_key(app, runner):
    result = runner.invoke(args=["tenants", "create", "initech", "--name", "Initech Inc"])
    assert result.exit_code == 0, result.output
    assert "Created tenant initech" in result.output

    with app.app_context():
        tenant = find_tenant("initech")
        keys = db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == tenant.id)).all()
        assert [key.version for key in keys] == [1]
        assert keys[0].master_key_id == app.config["KEYRING"].current.id

    listing = runner.invoke(args=["tenants", "list"])
    assert "initech" in listing.output
    assert "1 tenant(s)." in listing.output


@pytest.mark.parametrize("slug, message", [
    ("Initech", "invalid slug"),
    ("initech-", "invalid slug"),
    ("ini tech", "invalid slug"),
])
def test_tenants_create_rejects_bad_slug(runner, slug, message):
    result = runner.invoke(args=["tenants", "create", slug, "--name", "X"])
    assert result.exit_code != 0
    assert message in result.output


def test_tenants_create_rejects_duplicate(runner):
    runner.invoke(args=["tenants", "create", "initech", "--name", "Initech"])
    result = runner.invoke(args=["tenants", "create", "initech", "--name", "Again"])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_users_create_and_grant(app, runner):
    runner.invoke(args=["tenants", "create", "initech", "--name", "Initech"])
    created = runner.invoke(args=["users", "create", "Ops@Initech.example", "--operator", "--password-stdin"],
                            input="a long password\n")
    granted = runner.invoke(args=["users", "grant", "ops@initech.example", "initech", "--role", "member"])
    regranted = runner.invoke(args=["users", "grant", "ops@initech.example", "initech", "--role", "admin"])

    assert created.exit_code == 0, created.output
    assert "Created operator ops@initech.example." in created.output
    assert granted.exit_code == 0, granted.output
    assert regranted.exit_code == 0, regranted.output
    with app.app_context():
        user = find_user("ops@initech.example")
        assert user.is_operator
        assert user.password_hash.startswith("scrypt:")
        assert "a long password" not in user.password_hash
        roles = db.session.scalars(select(Membership.role).where(Membership.user_id == user.id)).all()
        assert roles == ["admin"]


@pytest.mark.parametrize("args, stdin, message", [
    (["users", "create", "not-an-email", "--password-stdin"], "a long password\n", "invalid email address"),
    (["users", "create", "a@b.example", "--password-stdin"], "short\n", "at least 10 characters"),
    (["users", "grant", "nobody@b.example", "acme", "--role", "admin"], None, "user 'nobody@b.example' not found"),
    (["users", "grant", "admin@acme.example", "initech", "--role", "admin"], None, "tenant 'initech' not found"),
    (["users", "grant", "admin@acme.example", "acme", "--role", "owner"], None, "'owner' is not one of"),
])
def test_users_errors_are_clear(world, runner, args, stdin, message):
    result = runner.invoke(args=args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output


def test_config_set_list_unset(app, world, runner):
    secret = "pw-CLI-8812-secret"
    host_result = runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.host"], input="mail.acme.example\n")
    set_result = runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.password"], input=secret + "\n")
    listing = runner.invoke(args=["config", "list", "--tenant", "acme"])

    assert set_result.exit_code == 0, set_result.output
    assert "smtp.password for acme: set." in set_result.output
    assert host_result.exit_code == 0
    assert secret not in listing.output
    assert "smtp.password        ********" in listing.output
    assert "smtp.host            mail.acme.example" in listing.output
    assert "smtp.port            587 (default)" in listing.output
    assert "2 of 8 keys set for acme." in listing.output

    unset = runner.invoke(args=["config", "unset", "--tenant", "acme", "smtp.password"])
    assert unset.exit_code == 0
    assert "removed" in unset.output
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
        labels = set(db.session.scalars(select(AuditEvent.actor_label)).all())
    assert actions == ["set", "set", "clear"]
    assert all(label.startswith("cli (") for label in labels)


def test_config_set_host_clears_bound_password(app, world, runner):
    runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.host"], input="mail.acme.example\n")
    runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.password"], input="pw-bound-1234\n")
    result = runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.host"], input="mail.other.example\n")

    assert result.exit_code == 0, result.output
    assert "smtp.password for acme: cleared, because it was saved for the previous smtp.host." in result.output
    listing = runner.invoke(args=["config", "list", "--tenant", "acme"])
    assert "smtp.password        (not set)" in listing.output


@pytest.mark.parametrize("key, value, message", [
    ("stripe.secret_key", "pk_live_abc123\n", "publishable key"),
    ("smtp.port", "70000\n", "between 1 and 65535"),
    ("smtp.password", "********\n", "masked value"),
    ("smtp.password", "x" * 2000, "at most 256 characters"),
])
def test_config_set_validates_like_ui(app, world, runner, key, value, message):
    result = runner.invoke(args=["config", "set", "--tenant", "acme", key], input=value)
    assert result.exit_code != 0
    assert message in result.output
    assert key in result.output
    with app.app_context():
        assert db.session.scalars(select(AuditEvent)).all() == []


@pytest.mark.parametrize("args, message", [
    (["config", "set", "--tenant", "acme", "stripe.api_key"], "unknown config key 'stripe.api_key'"),
    (["config", "set", "--tenant", "initech", "smtp.host"], "tenant 'initech' not found"),
    (["config", "list", "--tenant", "initech"], "tenant 'initech' not found"),
    (["config", "unset", "--tenant", "acme", "nope"], "unknown config key"),
])
def test_config_errors_are_clear(world, runner, args, message):
    result = runner.invoke(args=args, input="value\n")
    assert result.exit_code != 0
    assert message in result.output


def test_demo_is_idempotent(app, runner):
    first = runner.invoke(args=["demo"])
    second = runner.invoke(args=["demo"])
    assert first.exit_code == 0, first.output
    assert "Created 4 demo user(s)" in first.output
    assert "Created 0 demo user(s)" in second.output
    assert "admin@acme.example" in first.output
    with app.app_context():
        assert find_tenant("acme") is not None
        assert find_tenant("globex") is not None
        member = find_user("member@globex.example")
        assert db.session.scalars(select(Membership.role).where(Membership.user_id == member.id)).all() == ["member"]


def _tenant_row_counts(tenant_id: str) -> dict[str, int]:
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id))
        for model in (ConfigValue, TenantDataKey, Membership, AuditEvent)
    }


def test_tenants_delete_removes_everything(app, world, runner):
    runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.password"], input="pw-delete-me-1\n")
    runner.invoke(args=["config", "set", "--tenant", "globex", "smtp.password"], input="pw-keep-me-1\n")
    with app.app_context():
        acme_id = find_tenant("acme").id

    result = runner.invoke(args=["tenants", "delete", "acme", "--yes"])

    assert result.exit_code == 0, result.output
    assert "Deleted tenant acme: 1 value(s), 1 data key(s), 3 membership(s), 1 audit event(s)." in result.output
    with app.app_context():
        assert find_tenant("acme") is None
        assert _tenant_row_counts(acme_id) == {"config_value": 0, "tenant_data_key": 0, "membership": 0, "audit_event": 0}
        assert resolve("globex", "smtp.password").reveal() == "pw-keep-me-1"
        assert find_user("admin@acme.example") is not None


def test_tenants_delete_asks_first(app, world, runner):
    declined = runner.invoke(args=["tenants", "delete", "acme"], input="n\n")
    assert declined.exit_code != 0
    assert "Delete tenant acme (Acme) with its 0 value(s) and 1 data key(s)? This cannot be undone." in declined.output
    with app.app_context():
        assert find_tenant("acme") is not None

    confirmed = runner.invoke(args=["tenants", "delete", "acme"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    with app.app_context():
        assert find_tenant("acme") is None


def test_tenants_delete_unknown_tenant(world, runner):
    result = runner.invoke(args=["tenants", "delete", "initech", "--yes"])
    assert result.exit_code != 0
    assert "tenant 'initech' not found" in result.output
