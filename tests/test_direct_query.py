import logging
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy import Connection, bindparam, select

from tenant_config import direct_query
from tenant_config.direct_query import DirectQuery
from tenant_config.extensions import db
from tenant_config.models import Tenant

_tenant = Tenant.__table__
BY_SLUG = select(_tenant.c.id, _tenant.c.slug).where(_tenant.c.slug == bindparam("slug"))
EVERY_SLUG = select(_tenant.c.slug).order_by(_tenant.c.slug)
_missing = sa.Table("no_such_table", sa.MetaData(), sa.Column("id", sa.Integer))
FROM_MISSING_TABLE = select(_missing.c.id).where(_missing.c.id == bindparam("id"))


def _core_first(statement, parameters):
    return db.session.connection().execute(statement, parameters).first()


def _forbid_core(monkeypatch):
    def execute(*args, **kwargs):
        raise AssertionError("the statement ran through Connection.execute")

    monkeypatch.setattr(Connection, "execute", execute)


def _record_core_statements(monkeypatch) -> list:
    """Return a list that collects every statement that runs through Connection.execute from now on."""
    calls = []
    execute = Connection.execute

    def spy(self, statement, *args, **kwargs):
        calls.append(statement)
        return execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(Connection, "execute", spy)
    return calls


def test_first_returns_same_row_as_core(app, world):
    with app.app_context():
        acme_id = db.session.scalars(select(Tenant.id).where(Tenant.slug == "acme")).one()
        query = DirectQuery(BY_SLUG)

        assert tuple(query.first({"slug": "acme"})) == (acme_id, "acme")
        assert tuple(query.first({"slug": "acme"})) == tuple(_core_first(BY_SLUG, {"slug": "acme"}))
        assert query.first({"slug": "initech"}) is None


def test_first_bypasses_connection_execute(app, world, monkeypatch):
    with app.app_context():
        query = DirectQuery(BY_SLUG)
        query.first({"slug": "acme"})
        _forbid_core(monkeypatch)

        assert query.first({"slug": "globex"})[1] == "globex"


def test_first_sees_uncommitted_changes(app, world):
    with app.app_context():
        query = DirectQuery(BY_SLUG)
        db.session.add(Tenant(slug="initech", name="Initech"))

        assert query.first({"slug": "initech"})[1] == "initech"
        db.session.rollback()
        assert query.first({"slug": "initech"}) is None


class Shouted(sa.types.TypeDecorator):
    """A column type that converts every value it reads, on every dialect."""

    impl = sa.String
    cache_ok = True

    def process_result_value(self, value, dialect):
        return value.upper()


CONVERTED = select(_tenant.c.created_at, sa.type_coerce(_tenant.c.slug, Shouted()).label("shouted")).where(
    _tenant.c.slug == bindparam("slug")
)


def test_converted_column_matches_core(app, world):
    with app.app_context():
        created_at, shouted = DirectQuery(CONVERTED).first({"slug": "acme"})
        core = _core_first(CONVERTED, {"slug": "acme"})

    assert isinstance(created_at, datetime)
    assert shouted == "ACME"
    assert (created_at, shouted) == tuple(core)


def test_converted_column_bypasses_core_on_sqlite(app, world, database, monkeypatch):
    query = DirectQuery(CONVERTED)
    with app.app_context():
        query.first({"slug": "acme"})
        if database.backend == "sqlite":
            _forbid_core(monkeypatch)

        row = query.first({"slug": "globex"})

    assert row[1] == "GLOBEX"
    assert (query._compiled.sql is None) == (database.backend == "postgresql")


def test_rows_are_read_by_name(app, world):
    others = DirectQuery(
        select(_tenant.c.slug, _tenant.c.created_at).where(_tenant.c.slug != bindparam("slug")).order_by(_tenant.c.slug)
    )
    with app.app_context():
        core = list(db.session.connection().execute(others.statement, {"slug": "acme"}))
        rows = others.rows({"slug": "acme"})

    assert [row.slug for row in rows] == ["globex"]
    assert isinstance(rows[0].created_at, datetime)
    assert [tuple(row) for row in rows] == [tuple(row) for row in core]


def test_expanding_parameter_runs_through_core(app, world):
    named = DirectQuery(select(_tenant.c.slug).where(_tenant.c.slug.in_(bindparam("slugs", expanding=True))))
    with app.app_context():
        rows = named.rows({"slugs": ["globex", "initech"]})

    assert [row.slug for row in rows] == ["globex"]
    assert named._compiled.sql is None


def test_rows_use_values_bound_in_statement(app, world):
    first_one = DirectQuery(select(_tenant.c.slug).order_by(_tenant.c.slug).limit(1))
    with app.app_context():
        rows = first_one.rows({})

    assert [row.slug for row in rows] == ["acme"]


def test_stream_returns_every_row_in_batches(app, world):
    with app.app_context():
        batches = [list(batch) for batch in DirectQuery(EVERY_SLUG).stream({}, 1)]

    assert [[tuple(row) for row in batch] for batch in batches] == [[("acme",)], [("globex",)]]


def test_stream_stopped_early_leaves_session_usable(app, world):
    with app.app_context():
        stream = DirectQuery(EVERY_SLUG).stream({}, 1)
        assert [tuple(row) for row in next(stream)] == [("acme",)]
        stream.close()

        assert DirectQuery(BY_SLUG).first({"slug": "globex"})[1] == "globex"
        db.session.add(Tenant(slug="initech", name="Initech"))
        db.session.commit()
        assert DirectQuery(BY_SLUG).first({"slug": "initech"})[1] == "initech"


def test_database_error_is_wrapped_like_core(app, world, monkeypatch):
    with app.app_context():
        with pytest.raises(sa.exc.DBAPIError) as from_core:
            _core_first(FROM_MISSING_TABLE, {"id": 1})
        db.session.rollback()
        with pytest.raises(sa.exc.DBAPIError) as from_stream:
            list(DirectQuery(FROM_MISSING_TABLE).stream({"id": 1}, 10))
        db.session.rollback()

        _forbid_core(monkeypatch)
        with pytest.raises(sa.exc.DBAPIError) as from_first:
            DirectQuery(FROM_MISSING_TABLE).first({"id": 1})
        db.session.rollback()
        assert DirectQuery(BY_SLUG).first({"slug": "acme"})[1] == "acme"

    for raised in (from_first, from_stream):
        assert type(raised.value) is type(from_core.value)
        assert type(raised.value.orig) is type(from_core.value.orig)
        assert "no_such_table" in str(raised.value)
        assert raised.value.connection_invalidated is False


def test_event_listener_sees_statements(app, world):
    with app.app_context():
        statements = []

        def record(connection, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            row = DirectQuery(BY_SLUG).first({"slug": "acme"})
            batches = list(DirectQuery(EVERY_SLUG).stream({}, 10))
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)

    assert row[1] == "acme"
    assert len(batches[0]) == 2
    assert len(statements) == 2
    assert "WHERE tenant.slug" in statements[0]
    assert "ORDER BY tenant.slug" in statements[1]


def test_sql_logging_shows_statements(app, world, caplog):
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine.Engine")
    with app.app_context():
        # A new session's connection reads the logging level when it opens.
        db.session.remove()
        row = DirectQuery(BY_SLUG).first({"slug": "acme"})

    assert row[1] == "acme"
    assert "WHERE tenant.slug" in caplog.text


def test_autocommit_connection_bypasses_core(app, world, monkeypatch):
    with app.app_context():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        _forbid_core(monkeypatch)

        assert DirectQuery(BY_SLUG).first({"slug": "acme"})[1] == "acme"


def test_other_execution_option_runs_through_core(app, world, monkeypatch):
    calls = _record_core_statements(monkeypatch)
    with app.app_context():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT", "logging_token": "probe"})
        row = DirectQuery(BY_SLUG).first({"slug": "acme"})

    assert row[1] == "acme"
    assert len(calls) == 1


def test_uncovered_driver_runs_through_core(app, world, monkeypatch):
    monkeypatch.setattr(direct_query, "DIRECT_DRIVERS", frozenset())
    calls = _record_core_statements(monkeypatch)
    with app.app_context():
        row = DirectQuery(BY_SLUG).first({"slug": "acme"})
        batches = [list(batch) for batch in DirectQuery(EVERY_SLUG).stream({}, 1)]

    assert row[1] == "acme"
    assert [[tuple(row) for row in batch] for batch in batches] == [[("acme",)], [("globex",)]]
    assert len(calls) == 2


def test_lost_connection_is_invalidated(app, world, database, monkeypatch):
    if database.backend != "postgresql":
        pytest.skip("only a server connection can be lost")
    with app.app_context():
        backend_pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
        other = sa.create_engine(database.uri)
        try:
            with other.begin() as connection:
                connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
        finally:
            other.dispose()

        query = DirectQuery(BY_SLUG)
        _forbid_core(monkeypatch)
        with pytest.raises(sa.exc.OperationalError) as raised:
            query.first({"slug": "acme"})
        assert raised.value.connection_invalidated is True
        with pytest.raises(sa.exc.PendingRollbackError):
            query.first({"slug": "acme"})

        db.session.rollback()
        assert query.first({"slug": "acme"})[1] == "acme"
