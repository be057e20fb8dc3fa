"""Tenant data keys: creating them, and unwrapping them through a per-process cache."""

from __future__ import annotations

import logging

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from .crypto import DataKeyCache, Keyring, new_data_key, unwrap_data_key, wrap_data_key
from .extensions import db
from .models import Tenant, TenantDataKey

logger = logging.getLogger(__name__)


def keyring() -> Keyring:
    return current_app.config["KEYRING"]


def data_key_cache() -> DataKeyCache:
    return current_app.extensions["tenant_config.data_key_cache"]


def create_data_key(tenant: Tenant, version: int = 1) -> TenantDataKey:
    """Add a new random data key for the tenant, wrapped under the current master key."""
    master = keyring().current
    row = TenantDataKey(
        tenant_id=tenant.id,
        version=version,
        master_key_id=master.id,
        wrapped_key=wrap_data_key(master, tenant.id, version, new_data_key()),
    )
    db.session.add(row)
    logger.info("Created data key v%s for tenant %s under master key %s", version, tenant.slug, master.id)
    return row


def next_data_key(tenant: Tenant) -> TenantDataKey:
    """Add the tenant's next data key version, wrapped under the current master key."""
    newest = db.session.scalar(select(func.max(TenantDataKey.version)).where(TenantDataKey.tenant_id == tenant.id))
    return create_data_key(tenant, (newest or 0) + 1)


def current_data_key(tenant: Tenant) -> TenantDataKey:
    """Return the tenant's newest data key, creating version 1 if it has none yet.

    The row stays locked until the transaction ends, so that a tenant key
    rotation cannot delete it while a value is being encrypted under it. That
    is FOR KEY SHARE on PostgreSQL, and the database write lock on SQLite.
    """
    lock_sqlite_for_write()

    # A rotation that deleted the row while this query waited for the lock
    # leaves it out of the result, and the second query then finds the new key.
    row = _newest_data_key(tenant) or _newest_data_key(tenant)
    if row is not None:
        return row

    # A concurrent request may create the first key at the same moment, and the
    # unique (tenant_id, version) constraint lets only one of them win.
    try:
        with db.session.begin_nested():
            return create_data_key(tenant)
    except IntegrityError:
        return db.session.scalars(
            select(TenantDataKey).where(TenantDataKey.tenant_id == tenant.id, TenantDataKey.version == 1)
        ).one()


def lock_sqlite_for_write() -> None:
    """Take SQLite's database write lock now, because SQLite has no row locks.

    pysqlite opens a transaction before the first write statement, so this
    no-op update holds the lock until commit or rollback. Readers are not
    blocked. Other databases use row locks instead, and this does nothing there.
    """
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(text("UPDATE tenant_data_key SET version = version WHERE 0 = 1"))


def _newest_data_key(tenant: Tenant) -> TenantDataKey | None:
    return db.session.scalars(
        select(TenantDataKey)
        .where(TenantDataKey.tenant_id == tenant.id)
        .order_by(TenantDataKey.version.desc())
        .limit(1)
        .with_for_update(read=True, key_share=True)
    ).first()


def unwrap(row_tenant_id: str, version: int, master_key_id: str, wrapped_key: str) -> bytes:
    """Return the plaintext data key, from the cache when this process has unwrapped it before."""
    cache = data_key_cache()
    data_key = cache.get(row_tenant_id, version, wrapped_key)
    if data_key is None:
        data_key = unwrap_data_key(keyring(), row_tenant_id, version, master_key_id, wrapped_key)
        cache.put(row_tenant_id, version, wrapped_key, data_key)
    return data_key


def value_aead(row_tenant_id: str, version: int, master_key_id: str, wrapped_key: str) -> AESGCM:
    """Return an AES-GCM instance of the plaintext data key, kept with the key in the per-process cache."""
    cache = data_key_cache()
    aead = cache.get_aead(row_tenant_id, version, wrapped_key)
    if aead is None:
        data_key = unwrap_data_key(keyring(), row_tenant_id, version, master_key_id, wrapped_key)
        aead = cache.put(row_tenant_id, version, wrapped_key, data_key)
    return aead


def unwrap_failure_reason(keyring: Keyring, master_key_id: str) -> str:
    """Describe why a data key wrapped under ``master_key_id`` failed to unwrap, for an operator."""
    if keyring.get(master_key_id) is None:
        return f"it is wrapped under master key {master_key_id}, which is not configured"
    return f"it cannot be unwrapped with master key {master_key_id}, so the stored wrapped key is damaged or was moved"


def unwrap_row(row: TenantDataKey) -> bytes:
    return unwrap(row.tenant_id, row.version, row.master_key_id, row.wrapped_key)


def count_data_keys() -> int:
    return db.session.scalar(select(func.count()).select_from(TenantDataKey)) or 0
