"""Master key rotation: rewrap every tenant data key under the current master key.

Only the wrapped data keys change. Values stay encrypted under the same data
keys, so the work grows with the number of data keys and not with the number
of values. Each batch is one short transaction, and a data key is rewrapped
only if its wrapped blob is still the one that was read (compare-and-swap), so
the rotation can be stopped at any point and run again to finish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Row, bindparam, func, select, update

from .crypto import DecryptionError, Keyring, unwrap_data_key, wrap_data_key
from .datakeys import unwrap_failure_reason
from .extensions import db
from .models import Tenant, TenantDataKey

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500

_data_keys = TenantDataKey.__table__


@dataclass(frozen=True)
class RewrapFailure:
    """A data key that could not be rewrapped, with a reason that contains no key material."""

    tenant_slug: str
    version: int
    reason: str


@dataclass
class RotationResult:
    """Counts of one ``rotate_master_key`` run."""

    rewrapped: int = 0
    already_current: int = 0
    changed_concurrently: int = 0
    failures: list[RewrapFailure] = field(default_factory=list)

    @property
    def failed_tenants(self) -> list[str]:
        return sorted({failure.tenant_slug for failure in self.failures})


def count_keys_to_rewrap(keyring: Keyring) -> int:
    """Count the data keys that are not wrapped under the current master key."""
    query = select(func.count()).select_from(TenantDataKey).where(TenantDataKey.master_key_id != keyring.current.id)
    return db.session.scalar(query) or 0


def rotate_master_key(
    keyring: Keyring,
    batch_size: int = DEFAULT_BATCH_SIZE,
    pause_seconds: float = 0.0,
    on_batch: Callable[[int], None] | None = None,
) -> RotationResult:
    """Rewrap every data key that is not under the current master key, one transaction per batch.

    ``on_batch`` is called after each commit with the number of data keys that
    the batch covered. ``pause_seconds`` is a wait between batches, which
    limits the load on a busy database.
    """
    current_id = keyring.current.id
    result = RotationResult(already_current=_count_under(current_id))
    logger.info("Rotating data keys to master key %s", current_id)

    after_id = 0
    while True:
        rows = _next_batch(current_id, after_id, batch_size)
        if not rows:
            break

        updates = _rewrap(keyring, rows, result.failures)
        stored = _store(updates)
        db.session.commit()

        result.rewrapped += stored
        result.changed_concurrently += len(updates) - stored
        after_id = rows[-1].id
        if on_batch is not None:
            on_batch(len(rows))
        if pause_seconds:
            time.sleep(pause_seconds)

    logger.info(
        "Rotation to master key %s done: %s rewrapped, %s already current, %s changed concurrently, %s failed",
        current_id, result.rewrapped, result.already_current, result.changed_concurrently, len(result.failures),
    )
    return result


def _count_under(master_id: str) -> int:
    query = select(func.count()).select_from(TenantDataKey).where(TenantDataKey.master_key_id == master_id)
    return db.session.scalar(query) or 0


def _next_batch(current_id: str, after_id: int, batch_size: int) -> list[Row]:
    query = (
        select(
            TenantDataKey.id, TenantDataKey.tenant_id, TenantDataKey.version,
            TenantDataKey.master_key_id, TenantDataKey.wrapped_key, Tenant.slug,
        )
        .join(Tenant, Tenant.id == TenantDataKey.tenant_id)
        .where(TenantDataKey.master_key_id != current_id, TenantDataKey.id > after_id)
        .order_by(TenantDataKey.id)
        .limit(batch_size)
    )
    return list(db.session.execute(query))


def _rewrap(keyring: Keyring, rows: list[Row], failures: list[RewrapFailure]) -> list[dict]:
    """Unwrap each data key with its master key and wrap it under the current one."""
    current = keyring.current
    updates = []
    for row in rows:
        try:
            data_key = unwrap_data_key(keyring, row.tenant_id, row.version, row.master_key_id, row.wrapped_key)
        except DecryptionError:
            reason = unwrap_failure_reason(keyring, row.master_key_id)
            failures.append(RewrapFailure(row.slug, row.version, reason))
            logger.warning("Failed to rewrap data key v%s of tenant %s: %s", row.version, row.slug, reason)
            continue

        updates.append({
            "row_id": row.id,
            "old_wrapped_key": row.wrapped_key,
            "new_master_key_id": current.id,
            "new_wrapped_key": wrap_data_key(current, row.tenant_id, row.version, data_key),
        })
    return updates


def _store(updates: list[dict]) -> int:
    """Write the rewrapped keys whose stored blob is unchanged. Returns how many rows were written."""
    if not updates:
        return 0

    statement = (
        update(_data_keys)
        .where(_data_keys.c.id == bindparam("row_id"), _data_keys.c.wrapped_key == bindparam("old_wrapped_key"))
        .values(master_key_id=bindparam("new_master_key_id"), wrapped_key=bindparam("new_wrapped_key"))
    )
    return db.session.connection().execute(statement, updates).rowcount
