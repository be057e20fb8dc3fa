"""Recording when the backend last used each secret, cheaply enough for the resolver's hot path.

A use is stored in ``config_value.last_used_at`` and ``last_used_by``. Each
process writes at most once per ``RECORD_INTERVAL`` for a tenant and key, so
a job that resolves one secret in a loop costs one write a minute, and every
other call costs a clock read and a dictionary lookup. With several worker
processes, each one writes on its own schedule.

The write has its own connection and transaction, waits at most
``LOCK_WAIT_MS`` for a lock, and is skipped, with a DEBUG log line, when it
cannot get one. So it never blocks the caller's transaction for longer than
that, and never commits or rolls it back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Connection, Engine, and_, bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from .extensions import db
from .models import ConfigValue, utcnow

logger = logging.getLogger(__name__)

RECORD_INTERVAL = timedelta(seconds=60)
LOCK_WAIT_MS = 50
USED_BY_MAX_LENGTH = 64
# Beyond this many (tenant, key) pairs, entries older than the interval are dropped from the throttle.
MAX_TRACKED = 100_000

_value = ConfigValue.__table__
_this_value = and_(_value.c.tenant_id == bindparam("match_tenant_id"), _value.c.key == bindparam("match_key"))
_new_use = {"last_used_at": bindparam("used_at"), "last_used_by": bindparam("used_by")}

_SET_LAST_USE = update(_value).where(_this_value).values(_new_use)

# On PostgreSQL the row is skipped, not waited for, while any transaction holds its lock, the caller's included.
_SET_LAST_USE_UNLESS_LOCKED = (
    update(_value)
    .where(_value.c.id == select(_value.c.id).where(_this_value).with_for_update(skip_locked=True).scalar_subquery())
    .values(_new_use)
)


class UsageRecorder:
    """Writer of each secret's last use, at most once per interval per (tenant, key) in this process.

    ``clock`` returns the current UTC time. Tests pass their own to move time on.
    """

    def __init__(self, clock: Callable[[], datetime] = utcnow, interval: timedelta = RECORD_INTERVAL):
        self.clock = clock
        self.interval = interval
        self._last_attempts: dict[tuple[str, str], datetime] = {}
        self._lock = threading.Lock()

    def record(self, tenant_id: str, key_name: str, used_by: str, tenant_label: str) -> bool:
        """Store the use unless one was written recently. Returns True when a row was updated."""
        now = self.clock()
        if not self._due((tenant_id, key_name), now):
            return False

        engine = db.engine
        if _shares_connections(engine):
            logger.debug("Not recording the use of %s for tenant %s: the database is in memory", key_name, tenant_label)
            return False
        return _write(engine, tenant_id, key_name, used_by[:USED_BY_MAX_LENGTH], now, tenant_label)

    def _due(self, marker: tuple[str, str], now: datetime) -> bool:
        """Claim the next write for ``marker``. A failed or skipped write also waits for the next interval."""
        # Most calls end here, without taking the lock. The check is repeated under the lock.
        if self._recent(self._last_attempts.get(marker), now):
            return False

        with self._lock:
            if self._recent(self._last_attempts.get(marker), now):
                return False
            self._last_attempts[marker] = now
            if len(self._last_attempts) > MAX_TRACKED:
                self._forget_before(now - self.interval)
        return True

    def _recent(self, last: datetime | None, now: datetime) -> bool:
        # A clock that went backwards makes the pair due again instead of silencing it.
        return last is not None and timedelta(0) <= now - last < self.interval

    def _forget_before(self, cutoff: datetime) -> None:
        self._last_attempts = {marker: at for marker, at in self._last_attempts.items() if at >= cutoff}


def recorder() -> UsageRecorder:
    return current_app.extensions["tenant_config.usage"]


def record_use(tenant_id: str, key_name: str, used_by: str, tenant_label: str) -> None:
    """Record that ``used_by``, such as a job's name, used the tenant's secret just now."""
    recorder().record(tenant_id, key_name, used_by, tenant_label)


def _shares_connections(engine: Engine) -> bool:
    """Return True when a second connection would be the caller's own, as with an in-memory SQLite database."""
    return isinstance(engine.pool, (StaticPool, SingletonThreadPool))


def _write(engine: Engine, tenant_id: str, key_name: str, used_by: str, now: datetime, tenant_label: str) -> bool:
    parameters = {"match_tenant_id": tenant_id, "match_key": key_name, "used_at": now, "used_by": used_by}
    statement = _SET_LAST_USE_UNLESS_LOCKED if engine.dialect.name == "postgresql" else _SET_LAST_USE
    try:
        with engine.connect() as connection, _short_lock_wait(connection):
            updated = connection.execute(statement, parameters).rowcount
            connection.commit()
    except DBAPIError as error:
        logger.debug(
            "Skipped recording the use of %s for tenant %s: %s", key_name, tenant_label, type(error.orig).__name__,
        )
        return False

    if not updated:
        logger.debug("Skipped recording the use of %s for tenant %s: the row is locked or gone", key_name, tenant_label)
    return bool(updated)


@contextmanager
def _short_lock_wait(connection: Connection):
    """Make lock waits on ``connection`` give up after LOCK_WAIT_MS, and restore the pooled connection after."""
    if connection.dialect.name == "postgresql":
        # SET LOCAL ends with the transaction.
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT_MS}ms'")
        yield
        return
    if connection.dialect.name != "sqlite":
        yield
        return

    previous = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
    try:
        yield
    finally:
        connection.rollback()
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {int(previous)}")
