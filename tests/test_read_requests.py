import psycopg
import pytest
from sqlalchemy import event, select, text, update

from tenant_config import values
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.extensions import csrf, db
from tenant_config.models import Tenant
from tenant_config.read_requests import ReadOnlyRequestError
from tenant_config.resolver import resolve_many


def _in_transaction() -> bool:
    """Return whether the session's DBAPI connection has a transaction open."""
    connection = db.session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite":
        return dbapi_connection.in_transaction
    return dbapi_connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def _transaction_after_read() -> str:
    db.session.scalars(select(Tenant.slug)).all()
    return "transaction" if _in_transaction() else "none"


def _transaction_after_write() -> str:
    _add_tenant()
    return "transaction" if _in_transaction() else "none"


def _add_tenant() -> str:
    db.session.add(Tenant(slug="initech", name="Initech"))
    db.session.flush()
    return "added"


def _rename_acme() -> str:
    db.session.execute(update(Tenant).where(Tenant.slug == "acme").values(name="Renamed"))
    return "renamed"


def _rename_acme_in_sql() -> str:
    db.session.execute(text("UPDATE tenant SET name = 'Renamed' WHERE slug = 'acme'"))
    return "renamed"


def _read_then_fail() -> str:
    db.session.scalars(select(Tenant.slug)).all()
    raise ValueError("failed after a read")


def _stripe_key_tenants() -> str:
    return ",".join(sorted(slug for slug, _value in resolve_many("stripe.secret_key")))


def _add_tenant_then_fail() -> str:
    _add_tenant()
    raise ValueError("failed after the INSERT")


@pytest.fixture
def routes(app, world):
    """Views that report whether a transaction is open, or that write, registered on the test app only."""
    app.add_url_rule("/probe/read", "probe_read", _transaction_after_read, methods=["GET", "POST"])
    app.add_url_rule("/probe/write", "probe_write", _transaction_after_write, methods=["POST"])
    app.add_url_rule("/probe/add", "probe_add", _add_tenant, methods=["GET", "POST"])
    app.add_url_rule("/probe/rename", "probe_rename", _rename_acme, methods=["GET"])
    app.add_url_rule("/probe/rename-in-sql", "probe_rename_in_sql", _rename_acme_in_sql, methods=["GET"])
    app.add_url_rule("/probe/read-then-fail", "probe_read_then_fail", _read_then_fail, methods=["GET"])
    app.add_url_rule("/probe/stripe-key-tenants", "probe_stripe_key_tenants", _stripe_key_tenants, methods=["GET"])
    app.add_url_rule("/probe/add-then-fail", "probe_add_then_fail", _add_tenant_then_fail, methods=["POST"])
    for endpoint in ("probe_read", "probe_write", "probe_add", "probe_add_then_fail"):
        csrf.exempt(app.view_functions[endpoint])
    return app.test_client()


def _tenant_names(app) -> dict[str, str]:
    with app.app_context():
        names = {slug: name for slug, name in db.session.execute(select(Tenant.slug, Tenant.name))}
        db.session.remove()
        return names


def _check_post_is_atomic(app, routes) -> None:
    """Check that a POST on the pooled connection opens a transaction, and that a failure rolls its INSERT back."""
    assert routes.post("/probe/write").text == "transaction"
    with pytest.raises(ValueError):
        routes.post("/probe/add-then-fail")
    assert "initech" not in _tenant_names(app)


def test_get_reads_outside_transaction(routes):
    assert routes.get("/probe/read").text == "none"
    assert routes.head("/probe/read").status_code == 200


def test_post_opens_transaction(routes, database):
    expected = "none" if database.backend == "sqlite" else "transaction"

    # Python's sqlite3 module opens a transaction at the first write, PostgreSQL's driver at the first statement.
    assert routes.post("/probe/read").text == expected
    assert routes.post("/probe/write").text == "transaction"


def test_post_after_get_gets_transaction_back(app, routes):
    routes.get("/probe/read")

    _check_post_is_atomic(app, routes)


def test_get_rejects_orm_flush(app, routes):
    with pytest.raises(ReadOnlyRequestError, match="POST handler"):
        routes.get("/probe/add")

    assert "initech" not in _tenant_names(app)


def test_get_rejects_update_statement(app, routes):
    with pytest.raises(ReadOnlyRequestError, match="INSERT, UPDATE, DELETE"):
        routes.get("/probe/rename")

    assert _tenant_names(app)["acme"] == "Acme"


def test_get_rejects_textual_update(app, routes):
    with pytest.raises(ReadOnlyRequestError, match="not a SELECT"):
        routes.get("/probe/rename-in-sql")

    assert _tenant_names(app)["acme"] == "Acme"


def test_failed_get_gives_transaction_back(app, routes):
    with pytest.raises(ValueError):
        routes.get("/probe/read-then-fail")

    _check_post_is_atomic(app, routes)


def test_get_resolves_every_tenant(app, routes):
    with app.app_context():
        values.set_value(find_tenant("acme"), "stripe.secret_key", "sk_test_readRequest1234", Actor.cli())

    # On PostgreSQL, resolve_many streams from a server-side cursor, which autocommit mode does not allow.
    response = routes.get("/probe/stripe-key-tenants")

    assert response.status_code == 200
    assert response.text == "acme"


def test_login_page_takes_no_connection(app):
    checkouts = []
    with app.app_context():
        pool = db.engine.pool
    event.listen(pool, "checkout", lambda *arguments: checkouts.append(arguments))

    response = app.test_client().get("/login")

    assert response.status_code == 200
    assert checkouts == []


def test_post_writes(app, routes):
    assert routes.post("/probe/add").text == "added"
    # The view flushed and did not commit, so the request's end discards its change.
    assert "initech" not in _tenant_names(app)


def test_get_keeps_caller_transaction(app, routes):
    with app.app_context():
        db.session.add(Tenant(slug="initech", name="Initech"))
        db.session.flush()

        assert routes.get("/probe/read").text == "transaction"
        assert db.session.scalars(select(Tenant.name).where(Tenant.slug == "initech")).one() == "Initech"
        db.session.rollback()


def test_settings_page_reads_outside_transaction(app, browser, world, database):
    seen = []

    def record(response):
        connection = db.session.connection()
        seen.append((_in_transaction(), connection.get_execution_options().get("isolation_level")))
        return response

    app.after_request(record)
    browser.login(world.acme_admin)

    assert browser.client.get("/t/acme/settings").status_code == 200
    in_transaction, isolation_level = seen[-1]
    assert in_transaction is False
    # SQLite's connection keeps its isolation level, because its reads never open a transaction.
    assert isolation_level == (None if database.backend == "sqlite" else "AUTOCOMMIT")
