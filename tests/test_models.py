import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tenant_config.accounts import find_tenant
from tenant_config.extensions import db


def _insert_value(tenant_id: str, key: str):
    db.session.execute(sa.text(
        "INSERT INTO config_value (tenant_id, key, value, row_version, updated_at, updated_by_label) "
        "VALUES (:tenant, :key, 'x', 1, CURRENT_TIMESTAMP, 'test')"
    ), {"tenant": tenant_id, "key": key})


def test_database_enforces_one_value_per_key(app, world):
    with app.app_context():
        tenant_id = find_tenant("acme").id
        _insert_value(tenant_id, "smtp.host")
        db.session.commit()
        with pytest.raises(IntegrityError):
            _insert_value(tenant_id, "smtp.host")
            db.session.commit()
        db.session.rollback()

        _insert_value(find_tenant("globex").id, "smtp.host")
        db.session.commit()


def test_database_enforces_membership_roles(app, world):
    with app.app_context():
        with pytest.raises(IntegrityError):
            db.session.execute(sa.text("UPDATE membership SET role = 'owner'"))
            db.session.commit()
        db.session.rollback()


def test_tenant_id_cannot_change(app, world):
    with app.app_context():
        tenant = find_tenant("acme")
        tenant.id = "00000000-0000-0000-0000-000000000000"
        with pytest.raises(ValueError, match="cannot change"):
            db.session.commit()
        db.session.rollback()


def test_deleting_tenant_removes_its_rows(app, world, make_browser):
    make_browser(world.acme_admin).save("acme", "stripe", {"stripe.secret_key": "sk_test_deleteme1"})
    with app.app_context():
        tenant_id = find_tenant("acme").id
        db.session.execute(sa.text("DELETE FROM tenant WHERE id = :id"), {"id": tenant_id})
        db.session.commit()
        for table in ("config_value", "tenant_data_key", "membership", "audit_event"):
            count = db.session.execute(sa.text(f"SELECT count(*) FROM {table} WHERE tenant_id = :id"), {"id": tenant_id})
            assert count.scalar() == 0, table


def test_migrations_match_models(app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with app.app_context():
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_value_cannot_outlive_its_data_key(app, world, make_browser):
    make_browser(world.acme_admin).save("acme", "stripe", {"stripe.secret_key": "sk_test_keepme1"})
    with app.app_context():
        tenant_id = find_tenant("acme").id
        with pytest.raises(IntegrityError):
            db.session.execute(sa.text("DELETE FROM tenant_data_key WHERE tenant_id = :id"), {"id": tenant_id})
            db.session.commit()
        db.session.rollback()

        with pytest.raises(IntegrityError):
            db.session.execute(sa.text("UPDATE config_value SET data_key_version = 2 WHERE tenant_id = :id"), {"id": tenant_id})
            db.session.commit()
        db.session.rollback()
