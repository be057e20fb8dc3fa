"""GET and HEAD requests read outside any transaction, and may not write.

In a transaction, a page's reads on PostgreSQL cost two round trips more
than its SELECTs: psycopg sends BEGIN before the first one, and the pool
sends ROLLBACK when the connection returns to it. A request that only reads
needs neither, so on PostgreSQL its first statement takes the session's
connection in autocommit mode. A request that reads nothing takes no
connection. Each SELECT then reads the data committed when it starts, which
is Django's default mode (Django's documentation, "Database transactions").
The pages still read consistent rows, because each of their queries reads
what belongs together: the values with their data keys, the user with the
tenant. Every form carries the row versions that a save checks again in its
own transaction.

On SQLite the connection keeps its isolation level. Python's sqlite3 module
opens a transaction only before an INSERT, UPDATE, DELETE or REPLACE, so its
reads already run outside one, and switching to autocommit and back would
cost SQLAlchemy's PRAGMA statement on every return to the pool.

On every database, the session of such a request raises
``ReadOnlyRequestError`` when it flushes ORM changes, or when it executes an
ORM INSERT, UPDATE or DELETE or a textual statement that does not start with
SELECT. In autocommit mode each statement would commit at once, so writes
belong in POST handlers.

NOTE: statements sent past the session's ``execute``, such as
``session.connection().execute(...)``, ``exec_driver_sql`` and the
``bulk_*_mappings`` methods, are not checked: a Core event that saw them
would send every ``DirectQuery`` back through ``Connection.execute``. The
body of a streamed response runs after the request's teardown, in an
ordinary transaction that is rolled back when the session is removed.
"""

from __future__ import annotations

from flask import Flask, request
from sqlalchemy import TextClause, event
from sqlalchemy.orm import ORMExecuteState, Session

from .extensions import db

READ_METHODS = frozenset({"GET", "HEAD"})
# Dialects whose driver opens no transaction for a SELECT on its own.
_READS_OUTSIDE_TRANSACTIONS = frozenset({"sqlite"})
# The session's info key that marks a read request. Its value is True, or "autocommit" once the connection is in that mode.
_READ_ONLY = "tenant_config.read_only_request"
_AUTOCOMMIT = "autocommit"


class ReadOnlyRequestError(RuntimeError):
    """Raised when a GET or HEAD request tries to write to the database."""


def register(app: Flask) -> None:
    """Make GET and HEAD requests read-only. Call it before registering other ``before_request`` hooks."""
    app.before_request(begin_read_request)
    app.teardown_request(end_read_request)
    if not event.contains(db.session, "before_flush", _reject_flush):
        event.listen(db.session, "before_flush", _reject_flush)
        event.listen(db.session, "do_orm_execute", _check_read_statement)


def begin_read_request() -> None:
    """Make the session of a GET or HEAD request read-only. Its connection is taken when a statement first needs it.

    A session that is already in a transaction keeps it. That happens only
    when a caller, such as a test, runs the request inside an app context in
    which it has used the session.
    """
    if request.method not in READ_METHODS or request.endpoint in (None, "static"):
        return

    session = db.session()
    if not session.in_transaction():
        session.info[_READ_ONLY] = True


def connect_for_read(session: Session) -> None:
    """Take the connection of a read request's session in autocommit mode, unless it has one or the database is SQLite."""
    if session.info.get(_READ_ONLY) is not True or session.in_transaction():
        return

    if session.get_bind().dialect.name in _READS_OUTSIDE_TRANSACTIONS:
        return

    session.info[_READ_ONLY] = _AUTOCOMMIT
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def end_read_request(_error: BaseException | None) -> None:
    """End the read, so that the connection goes back to the pool in its default isolation level."""
    if not db.session.registry.has():
        return

    session = db.session()
    if session.info.pop(_READ_ONLY, None) == _AUTOCOMMIT:
        # Each statement has already committed on its own, so this only releases the connection,
        # which resets its isolation level.
        session.rollback()


def _reject_flush(session: Session, _flush_context, _instances) -> None:
    if session.info.get(_READ_ONLY):
        raise ReadOnlyRequestError(
            "A GET or HEAD request tried to save ORM changes. Such requests must not write,"
            " so write in a POST handler."
        )


def _check_read_statement(state: ORMExecuteState) -> None:
    """Reject a write in a read request, and connect for the read before the session takes a connection."""
    session = state.session
    if not session.info.get(_READ_ONLY):
        return

    statement = state.statement
    writes_text = isinstance(statement, TextClause) and not statement.text.lstrip().upper().startswith("SELECT")
    if state.is_insert or state.is_update or state.is_delete or writes_text:
        raise ReadOnlyRequestError(
            "A GET or HEAD request tried to run an INSERT, UPDATE, DELETE or other statement that is not a SELECT."
            " Such requests must not write, so write in a POST handler."
        )

    connect_for_read(session)
