"""Prebuilt SELECTs that run on the DBAPI cursor of the session's connection, for the resolver's and the pages' hot paths.

``Connection.execute`` does much more per statement than SQLite itself: in
`make bench` on the two-core machine that docs/benchmarks.md describes, the
resolver's SELECT took about 30 µs through it, most of a warm resolve, and
about 12 µs this way. A ``DirectQuery`` compiles its statement
once per dialect and sends the SQL string to a cursor of the same pooled
connection, inside the session's transaction, so its rows include the
session's uncommitted changes as an ORM query's would. It keeps these parts of
``Connection.execute``:

- pending ORM changes are flushed first when the session autoflushes;
- a DBAPI error goes through the connection's own error handling, so callers
  get the same ``sqlalchemy.exc.DBAPIError`` subclass and a lost connection
  is invalidated;
- on SQLite, columns whose type converts the stored value, such as
  ``DateTime``, go through the same result processors, which pysqlite's
  cursor lets SQLAlchemy choose by type alone.

The statement runs through ``Connection.execute`` instead whenever that would
do more than send the SQL: when the driver is not one that the tests cover
(pysqlite or psycopg), when a parameter needs type processing or expands
into a list, when a column needs type processing on PostgreSQL, when the
engine, connection or dialect has event listeners or logs SQL, when the
connection has execution options other than ``isolation_level``, or when its
transaction is no longer active. Core then raises the error that it raises
for that state.

NOTE: the listener and logging checks and the error handling use private
members of SQLAlchemy's ``Connection`` (``_has_events``, ``_echo`` and
``_handle_dbapi_exception``, as in SQLAlchemy 2.1.9, which requirements.txt
pins). tests/test_direct_query.py exercises each of them on every database.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import methodcaller
from typing import Any, NamedTuple, TypeAlias

from sqlalchemy import Connection, Dialect, Select

from .extensions import db
from .read_requests import connect_for_read

_FETCH_ONE = methodcaller("fetchone")
_FETCH_ALL = methodcaller("fetchall")

# A row that ``DirectQuery.rows`` returns: a named tuple of the selected columns.
NamedRow: TypeAlias = Any

# Execution options that take effect when they are set on the connection, so that Connection.execute never reads them.
_OPTIONS_APPLIED_WHEN_SET = frozenset({"isolation_level"})

# (dialect name, driver) pairs whose DBAPI cursor the statements run on. The test suite runs on both.
DIRECT_DRIVERS = frozenset({("sqlite", "pysqlite"), ("postgresql", "psycopg")})


class _CompiledSql(NamedTuple):
    dialect: Dialect
    # None when the statement must run through Connection.execute on this dialect.
    sql: str | None
    # Parameter names in placeholder order for a positional paramstyle, None for a named one.
    positions: tuple[str, ...] | None
    # The result processor of each column, None for a column without one. None when no column has one.
    processors: tuple[Callable[[Any], Any] | None, ...] | None = None
    # Values that the statement itself binds, such as the one of ``.limit(50)``, by parameter name.
    fixed: Mapping[str, Any] | None = None


def session_connection() -> Connection:
    """Return the connection of the session's transaction, flushing pending changes first as an ORM query would.

    It takes the session's default connection, because every table of the
    product is on the default engine. Looking up the bind per model would
    cost about 3 µs per call, close to a tenth of a warm resolve before the
    direct cursor path existed.
    """
    session = db.session()
    if session.autoflush:
        session.flush()
    connect_for_read(session)
    return session.connection()


class DirectQuery:
    """A Core SELECT, compiled once per dialect, that runs on the DBAPI cursor of the session's connection.

    ``first`` and ``stream`` return the driver's tuples, or Core ``Row``
    objects when the statement runs through ``Connection.execute``. Both
    unpack and index the same way, so callers of those two must not use
    attribute access. ``rows`` returns named tuples either way, whose repr
    shows the column names and hides the values, because the pages read
    ciphertexts and wrapped data keys through it.
    """

    __slots__ = ("statement", "_compiled", "_row_class")

    def __init__(self, statement: Select):
        self.statement = statement
        self._compiled: _CompiledSql | None = None
        self._row_class = _row_class(statement)

    def rows(self, parameters: Mapping[str, Any]) -> list[NamedRow]:
        """Run the statement in the session's transaction and return every row, each readable by column name."""
        connection = session_connection()
        compiled = self._compiled_for(connection.dialect)
        make = self._row_class._make
        if compiled.sql is None or _needs_core(connection):
            return [make(row) for row in connection.execute(self.statement, parameters)]

        fetched = _fetch(connection, compiled, parameters, _FETCH_ALL)
        return [make(row) for row in _processed(compiled, fetched)]

    def first(self, parameters: Mapping[str, Any]) -> Sequence[Any] | None:
        """Run the statement in the session's transaction and return its first row, or None."""
        connection = session_connection()
        compiled = self._compiled_for(connection.dialect)
        if compiled.sql is None or _needs_core(connection):
            return connection.execute(self.statement, parameters).first()

        row = _fetch(connection, compiled, parameters, _FETCH_ONE)
        if row is None or compiled.processors is None:
            return row
        return _processed(compiled, [row])[0]

    def stream(self, parameters: Mapping[str, Any], rows_per_fetch: int) -> Iterator[Sequence[Sequence[Any]]]:
        """Run the statement in the session's transaction and yield its rows in lists of up to ``rows_per_fetch``.

        The statement runs when iteration starts. On a dialect with
        server-side cursors (PostgreSQL) it runs through Core with
        ``yield_per``, which streams from such a cursor. A connection in
        autocommit mode cannot keep such a cursor open, so on such a connection
        every row is fetched when the statement runs.
        """
        connection = session_connection()
        compiled = self._compiled_for(connection.dialect)
        server_side = connection.dialect.supports_server_side_cursors and not _in_autocommit(connection)
        if compiled.sql is None or server_side or _needs_core(connection):
            statement = self.statement.execution_options(yield_per=rows_per_fetch) if server_side else self.statement
            result = connection.execute(statement, parameters)
            # Closing the result also closes a server-side cursor that a consumer left before the end.
            with result:
                yield from result.partitions(rows_per_fetch)
            return

        arguments = _arguments(compiled, parameters)
        dbapi_connection = connection.connection
        cursor = None
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute(compiled.sql, arguments)
        except BaseException as error:
            _handle_error(connection, error, compiled.sql, arguments, cursor)
            raise

        # The yield stays outside the try, so that a consumer that stops early
        # (GeneratorExit) only closes the cursor and never counts as a database error.
        try:
            while True:
                try:
                    rows = cursor.fetchmany(rows_per_fetch)
                except BaseException as error:
                    _handle_error(connection, error, compiled.sql, arguments, cursor)
                    raise
                if not rows:
                    return
                yield rows if compiled.processors is None else _processed(compiled, rows)
        finally:
            cursor.close()

    def _compiled_for(self, dialect: Dialect) -> _CompiledSql:
        compiled = self._compiled
        if compiled is None or compiled.dialect is not dialect:
            compiled = self._compiled = _compile(self.statement, dialect)
        return compiled


def _row_class(statement: Select) -> type:
    """Return a named tuple class for the statement's columns, whose repr names the columns and hides the values."""
    fields = [column.key for column in statement.selected_columns]

    class DirectRow(namedtuple("DirectRow", fields)):
        __slots__ = ()

        def __repr__(self) -> str:
            return f"DirectRow({', '.join(self._fields)}; values hidden)"

    return DirectRow


def _compile(statement: Select, dialect: Dialect) -> _CompiledSql:
    if (dialect.name, dialect.driver) not in DIRECT_DRIVERS:
        return _CompiledSql(dialect, None, None)

    compiled = statement.compile(dialect=dialect)
    # The cursor gets the caller's values as they are, so no name may need escaping and no type may convert a value.
    converts_parameter = any(
        bind.type.dialect_impl(dialect).bind_processor(dialect) is not None for bind in compiled.binds.values()
    )
    # pysqlite's cursor description gives no column type, so SQLAlchemy chooses these processors by type
    # alone, as here. psycopg's gives one, which a processor may depend on, so such columns keep Core's path.
    processors = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in statement.selected_columns
    )
    converts_column = any(processor is not None for processor in processors)
    # A list parameter, such as one of ``in_``, is rendered into the SQL at each execution.
    expands = any(bind.expanding for bind in compiled.binds.values())
    if compiled.escaped_bind_names or expands or converts_parameter or (converts_column and dialect.driver != "pysqlite"):
        return _CompiledSql(dialect, None, None)

    positions = tuple(compiled.positiontup) if compiled.positional else None
    fixed = {name: bind.value for name, bind in compiled.binds.items() if bind.value is not None} or None
    return _CompiledSql(dialect, compiled.string, positions, processors if converts_column else None, fixed)


def _processed(compiled: _CompiledSql, rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """Apply the columns' result processors to fetched rows, as Core does."""
    processors = compiled.processors
    if processors is None:
        return rows
    return [
        tuple(value if processor is None else processor(value) for processor, value in zip(processors, row))
        for row in rows
    ]


def _fetch(connection: Connection, compiled: _CompiledSql, parameters: Mapping[str, Any], fetch: Callable[[Any], Any]) -> Any:
    """Run the compiled SQL on a new cursor of the connection and return what ``fetch`` reads from it."""
    arguments = _arguments(compiled, parameters)
    cursor = None
    try:
        cursor = connection.connection.cursor()
        cursor.execute(compiled.sql, arguments)
        result = fetch(cursor)
    except BaseException as error:
        _handle_error(connection, error, compiled.sql, arguments, cursor)
        raise
    cursor.close()
    return result


def _arguments(compiled: _CompiledSql, parameters: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
    if compiled.fixed:
        parameters = {**compiled.fixed, **parameters}
    if compiled.positions is None:
        return parameters
    return [parameters[name] for name in compiled.positions]


def _in_autocommit(connection: Connection) -> bool:
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def _needs_core(connection: Connection) -> bool:
    """Return True when ``Connection.execute`` would do more than send the SQL on this connection."""
    if connection._has_events or connection.engine._has_events or connection.dialect._has_events or connection._echo:
        return True
    options = connection.get_execution_options()
    if options and not options.keys() <= _OPTIONS_APPLIED_WHEN_SET:
        return True
    transaction = connection.get_transaction()
    nested = connection.get_nested_transaction()
    return transaction is None or not transaction.is_active or (nested is not None and not nested.is_active)


def _handle_error(connection: Connection, error: BaseException, sql: str, arguments: Any, cursor: Any) -> None:
    """Raise a DBAPI error or an interruption as ``Connection.execute`` would. For other errors, close the cursor.

    ``Connection.execute`` wraps DBAPI errors, and invalidates the connection
    after a disconnect or after an interruption such as KeyboardInterrupt,
    which leaves the connection in an unknown state.
    """
    if isinstance(error, connection.dialect.loaded_dbapi.Error) or not isinstance(error, Exception):
        # It always raises: the wrapped error, or the interruption itself.
        connection._handle_dbapi_exception(error, sql, arguments, cursor, None)
    if cursor is not None:
        try:
            cursor.close()
        except Exception:
            # The original error matters more than a failure to close the cursor after it.
            pass

