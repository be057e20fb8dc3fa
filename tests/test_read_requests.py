import pytest
from sqlalchemy import select, update

from tenant_config.extensions import csrf, db
from tenant_config.models import Tenant
from tenant_config.read_requests import ReadOnlyRequestError


def _in_autocommit() -> bool:
    """Return whether the session's DBAPI connection runs each statement in its own transaction."""
    connection = db.session.connection()
    dbapi_connection = connection.connection.dbapi_connection
    if connection.dialect.name == "sqlite":
        return dbapi_connection.isolation_level is None
    return dbapi_connection.autocommit


def _connection_mode() -> str:
    return "autocommit" if _in_autocommit() else "transaction"


def _add_tenant() -> str:
    db.session.add(Tenant(slug="initech", name="Initech"))
    db.session.flush()
    return "added"


def _rename_acme() -> str:
    db.session.execute(update(Tenant).where(Tenant.slug == "acme").values(name="Renamed"))
    return "renamed"


def _add_tenant_then_fail() -> str:
    _add_tenant()
    raise ValueError("failed after the INSERT")


@pytest.fixture
def routes(app, world):
    """Views that report the connection's mode or write, registered on the test app only."""
    app.add_url_rule("/probe/mode", "probe_mode", _connection_mode, methods=["GET", "POST"])
    app.add_url_rule("/probe/add", "probe_add", _add_tenant, methods=["GET", "POST"])
    app.add_url_rule("/probe/rename", "probe_rename", _rename_acme, methods=["GET"])
    app.add_url_rule("/probe/add-then-fail", "probe_add_then_fail", _add_tenant_then_fail, methods=["POST"])
    for endpoint in ("probe_mode", "probe_add", "probe_add_then_fail"):
        csrf.exempt(app.view_functions[endpoint])
    return app.test_client()


def _tenant_names(app) -> dict[str, str]:
    with app.app_context():
        names = {slug: name for slug, name in db.session.execute(select(Tenant.slug, Tenant.name))}
        db.session.remove()
        return names


def test_get_reads_in_autocommit(routes):
    assert routes.get("/probe/mode").text == "autocommit"
    assert routes.head("/probe/mode").status_code == 200


def test_post_runs_in_transaction(routes):
    assert routes.post("/probe/mode").text == "transaction"


def test_post_after_get_gets_transaction_back(app, routes):
    routes.get("/probe/mode")

    assert routes.post("/probe/mode").text == "transaction"
    with pytest.raises(ValueError):
        routes.post("/probe/add-then-fail")
    assert "initech" not in _tenant_names(app)


def test_get_rejects_orm_flush(app, routes):
    with pytest.raises(ReadOnlyRequestError, match="POST handler"):
        routes.get("/probe/add")

    assert "initech" not in _tenant_names(app)


def test_get_rejects_update_statement(app, routes):
    with pytest.raises(ReadOnlyRequestError, match="INSERT, UPDATE or DELETE"):
        routes.get("/probe/rename")

    assert _tenant_names(app)["acme"] == "Acme"


def test_post_writes(app, routes):
    assert routes.post("/probe/add").text == "added"
    # The view flushed and did not commit, so the request's end discards its change.
    assert "initech" not in _tenant_names(app)


def test_get_keeps_caller_transaction(app, routes):
    with app.app_context():
        db.session.add(Tenant(slug="initech", name="Initech"))
        db.session.flush()

        assert routes.get("/probe/mode").text == "transaction"
        assert db.session.scalars(select(Tenant.name).where(Tenant.slug == "initech")).one() == "Initech"
        db.session.rollback()


def test_settings_page_reads_in_autocommit(app, browser, world):
    seen = []
    app.after_request(lambda response: seen.append(_in_autocommit()) or response)
    browser.login(world.acme_admin)

    assert browser.client.get("/t/acme/settings").status_code == 200
    assert seen[-1] is True
