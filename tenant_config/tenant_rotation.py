"""Tenant key rotation: give a tenant a new data key and re-encrypt every value under it.

1. The new data key is committed first, so that saves which start afterwards
   already encrypt under it.
2. Values under older data keys move in batches of short transactions. Each
   batch first locks the tenant's older data keys, which waits for saves that
   still encrypt under one of them. On PostgreSQL these are row locks (saves
   hold FOR KEY SHARE on their key), and on SQLite the database write lock.
   The batch then locks the value rows it moves, and writes each one only if
   its row_version is unchanged, so a concurrent save is never overwritten
   with a re-encryption of the previous plaintext.
3. The older data keys are deleted in the transaction that moves the last
   value. The foreign key from config_value to tenant_data_key rejects the
   delete while any value still uses one of them, and the rotation then
   starts another pass.

A value that cannot be decrypted stays as it is, together with its data key,
and is reported. It is never re-encrypted or written back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from . import audit, datakeys
from .audit import Actor
from .crypto import DecryptionError, decrypt_value, encrypt_value
from .extensions import db
from .models import ConfigValue, Tenant, TenantDataKey

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
# A pass walks once over the values under older keys. Another pass is needed
# only when saves changed values during the previous one.
MAX_PASSES = 20
ROTATE_ACTION = "rotate_data_key"

_values = ConfigValue.__table__


@dataclass(frozen=True)
class ValueFailure:
    """A value that was left under its old data key, with the reason (never the value)."""

    key_name: str
    reason: str


@dataclass
class TenantRotationResult:
    """The outcome of rotating one tenant's data key."""

    slug: str
    new_version: int
    moved: int = 0
    finished: bool = False
    failures: list[ValueFailure] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.finished and not self.failures and self.error is None


@dataclass
class _Batch:
    last_id: int | None = None
    moved: int = 0
    finished: bool = False
    target_missing: bool = False


def rotate_tenant_key(tenant: Tenant, actor: Actor) -> TenantRotationResult:
    """Create a new data key for the tenant, move every value to it, and delete the older keys."""
    tenant_id, slug = tenant.id, tenant.slug
    new_key = _create_new_key(tenant, actor)
    result = TenantRotationResult(slug=slug, new_version=new_key.version)
    new_data_key = datakeys.unwrap_row(new_key)
    failed_ids: set[int] = set()

    for _ in range(MAX_PASSES):
        if not _run_pass(tenant_id, result, new_data_key, failed_ids):
            break
    else:
        result.error = f"values kept changing during {MAX_PASSES} passes; run the rotation again"

    logger.info(
        "Rotated tenant %s to data key v%s: %s values moved, %s failed, older keys deleted: %s",
        slug, result.new_version, result.moved, len(result.failures), result.finished,
    )
    return result


def _create_new_key(tenant: Tenant, actor: Actor) -> TenantDataKey:
    try:
        new_key = datakeys.next_data_key(tenant)
        audit.record(tenant, actor, ROTATE_ACTION)
        db.session.commit()
    except IntegrityError:
        # Another rotation of the same tenant took this version at the same moment.
        db.session.rollback()
        new_key = datakeys.next_data_key(tenant)
        audit.record(tenant, actor, ROTATE_ACTION)
        db.session.commit()
    return new_key


def _run_pass(tenant_id: str, result: TenantRotationResult, new_data_key: bytes, failed_ids: set[int]) -> bool:
    """Move the values under older keys in batches, from the lowest row id up.

    Returns True when another pass is needed, because saves changed values
    under older keys while this pass ran, and False when the rotation finished
    or cannot finish.
    """
    after_id = 0
    while True:
        try:
            batch = _move_batch(tenant_id, result.new_version, new_data_key, after_id, failed_ids, result)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            logger.info("Deleting the older data keys of tenant %s raced with a save; starting another pass", result.slug)
            return True

        result.moved += batch.moved
        if batch.finished:
            result.finished = True
            return False
        if batch.target_missing:
            result.error = f"another rotation replaced data key v{result.new_version} and moves the values instead"
            return False
        if batch.last_id is None:
            # Unless only values that cannot be decrypted are left, a save put
            # a value under an older key during this pass.
            return not failed_ids or _count_older_values(tenant_id, result.new_version, excluding=failed_ids) > 0
        after_id = batch.last_id


def _move_batch(
    tenant_id: str, target: int, new_data_key: bytes, after_id: int, failed_ids: set[int], result: TenantRotationResult,
) -> _Batch:
    """Move one batch of values to data key ``target`` in the caller's transaction.

    When no value is left under an older key, the older keys are deleted in the same transaction.
    """
    if not _lock_keys(tenant_id, target):
        return _Batch(target_missing=True)

    old_keys = _unwrap_older_keys(tenant_id, target)
    rows = _next_values(tenant_id, target, after_id, failed_ids)
    updates = []
    for row in rows:
        plaintext = _decrypt(tenant_id, row, old_keys, result, failed_ids)
        if plaintext is None:
            continue
        updates.append({
            "row_id": row.id,
            "old_row_version": row.row_version,
            "new_value": encrypt_value(new_data_key, tenant_id, row.key, target, plaintext),
            "new_version": target,
        })

    batch = _Batch(last_id=rows[-1].id if rows else None, moved=_store(updates))
    if _count_older_values(tenant_id, target) == 0:
        db.session.execute(delete(TenantDataKey).where(TenantDataKey.tenant_id == tenant_id, TenantDataKey.version < target))
        batch.finished = True
    return batch


def _lock_keys(tenant_id: str, target: int) -> bool:
    """Lock the tenant's older data keys and check that data key ``target`` still exists.

    On PostgreSQL the older keys get FOR UPDATE, which waits for saves that
    encrypt under them, and the target gets FOR KEY SHARE, so that no other
    rotation deletes it before this transaction ends. SQLite ignores both, and
    the database write lock serializes the batch with saves instead.
    """
    datakeys.lock_sqlite_for_write()
    older = select(TenantDataKey.version).where(TenantDataKey.tenant_id == tenant_id, TenantDataKey.version < target)
    db.session.execute(older.order_by(TenantDataKey.version).with_for_update())

    current = select(TenantDataKey.version).where(TenantDataKey.tenant_id == tenant_id, TenantDataKey.version == target)
    return db.session.scalar(current.with_for_update(read=True, key_share=True)) is not None


def _unwrap_older_keys(tenant_id: str, target: int) -> dict[int, bytes | None]:
    """Return each older data key, or None for one that cannot be unwrapped."""
    rows = db.session.execute(
        select(TenantDataKey.version, TenantDataKey.master_key_id, TenantDataKey.wrapped_key)
        .where(TenantDataKey.tenant_id == tenant_id, TenantDataKey.version < target)
    )
    keys: dict[int, bytes | None] = {}
    for version, master_key_id, wrapped_key in rows:
        try:
            keys[version] = datakeys.unwrap(tenant_id, version, master_key_id, wrapped_key)
        except DecryptionError:
            keys[version] = None
    return keys


def _next_values(tenant_id: str, target: int, after_id: int, failed_ids: set[int]) -> list:
    query = (
        select(ConfigValue.id, ConfigValue.key, ConfigValue.value, ConfigValue.data_key_version, ConfigValue.row_version)
        .where(
            ConfigValue.tenant_id == tenant_id,
            ConfigValue.data_key_version < target,
            ConfigValue.id > after_id,
        )
        .order_by(ConfigValue.id)
        .limit(BATCH_SIZE)
        .with_for_update()
    )
    if failed_ids:
        query = query.where(ConfigValue.id.not_in(failed_ids))
    return list(db.session.execute(query))


def _decrypt(tenant_id: str, row, old_keys: dict[int, bytes | None], result: TenantRotationResult, failed_ids: set[int]) -> str | None:
    """Return the plaintext of a value, or record why it cannot be moved and return None."""
    data_key = old_keys.get(row.data_key_version)
    if data_key is None:
        reason = f"its data key v{row.data_key_version} cannot be unwrapped with the configured master keys"
    else:
        try:
            return decrypt_value(data_key, tenant_id, row.key, row.value)
        except DecryptionError:
            reason = "it cannot be decrypted, because the stored ciphertext is damaged or was copied from another row"

    failed_ids.add(row.id)
    result.failures.append(ValueFailure(row.key, reason))
    logger.warning("Tenant %s: left %s under data key v%s: %s", result.slug, row.key, row.data_key_version, reason)
    return None


def _store(updates: list[dict]) -> int:
    """Write the re-encrypted values whose row_version is unchanged. Returns how many rows were written."""
    if not updates:
        return 0

    statement = (
        update(_values)
        .where(_values.c.id == bindparam("row_id"), _values.c.row_version == bindparam("old_row_version"))
        .values(
            value=bindparam("new_value"),
            data_key_version=bindparam("new_version"),
            row_version=_values.c.row_version + 1,
        )
    )
    return db.session.connection().execute(statement, updates).rowcount


def _count_older_values(tenant_id: str, target: int, excluding: set[int] = frozenset()) -> int:
    query = select(func.count()).select_from(ConfigValue).where(
        ConfigValue.tenant_id == tenant_id, ConfigValue.data_key_version < target,
    )
    if excluding:
        query = query.where(ConfigValue.id.not_in(excluding))
    return db.session.scalar(query) or 0
