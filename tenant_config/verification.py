"""Verification: decrypt every stored data key and value in memory, and report each failure.

Plaintexts are dropped as soon as they are decrypted. Reasons name the tenant,
the key and the kind of failure, never a value or key material.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select

from .crypto import DecryptionError, Keyring, blob_data_key_version, decrypt_value, unwrap_data_key
from .datakeys import unwrap_failure_reason
from .extensions import db
from .models import ConfigValue, Tenant, TenantDataKey
from .registry import KEYS

logger = logging.getLogger(__name__)

STREAM_BATCH = 1000


@dataclass(frozen=True)
class VerifyFailure:
    """One data key or value that cannot be decrypted. ``item`` is a config key name or "data key vN"."""

    tenant_slug: str
    item: str
    reason: str


@dataclass
class VerifyResult:
    """Counts of one ``verify_all`` run, and its failures."""

    data_keys: int = 0
    values: int = 0
    failures: list[VerifyFailure] = field(default_factory=list)


def count_values() -> int:
    return db.session.scalar(select(func.count()).select_from(ConfigValue)) or 0


def verify_all(keyring: Keyring, on_value: Callable[[], None] | None = None) -> VerifyResult:
    """Unwrap every data key and decrypt every encrypted value. ``on_value`` is called after each stored value."""
    result = VerifyResult()
    broken_keys = _verify_data_keys(keyring, result)
    _verify_values(keyring, broken_keys, result, on_value)

    logger.info(
        "Verified %s data keys and %s values: %s failed", result.data_keys, result.values, len(result.failures),
    )
    return result


def _verify_data_keys(keyring: Keyring, result: VerifyResult) -> set[tuple[str, int]]:
    """Unwrap each data key, record failures, and return the (tenant id, version) of those that failed."""
    query = (
        select(TenantDataKey.tenant_id, Tenant.slug, TenantDataKey.version, TenantDataKey.master_key_id, TenantDataKey.wrapped_key)
        .join(Tenant, Tenant.id == TenantDataKey.tenant_id)
        .order_by(Tenant.slug, TenantDataKey.version)
        .execution_options(yield_per=STREAM_BATCH)
    )
    broken = set()
    for tenant_id, slug, version, master_key_id, wrapped_key in db.session.execute(query):
        result.data_keys += 1
        try:
            unwrap_data_key(keyring, tenant_id, version, master_key_id, wrapped_key)
        except DecryptionError:
            broken.add((tenant_id, version))
            result.failures.append(VerifyFailure(slug, f"data key v{version}", unwrap_failure_reason(keyring, master_key_id)))
    return broken


def _verify_values(
    keyring: Keyring, broken_keys: set[tuple[str, int]], result: VerifyResult, on_value: Callable[[], None] | None,
) -> None:
    query = (
        select(
            ConfigValue.tenant_id, Tenant.slug, ConfigValue.key, ConfigValue.value, ConfigValue.data_key_version,
            TenantDataKey.master_key_id, TenantDataKey.wrapped_key,
        )
        .join(Tenant, Tenant.id == ConfigValue.tenant_id)
        .outerjoin(TenantDataKey, and_(
            TenantDataKey.tenant_id == ConfigValue.tenant_id, TenantDataKey.version == ConfigValue.data_key_version,
        ))
        .order_by(Tenant.slug, ConfigValue.key)
        .execution_options(yield_per=STREAM_BATCH)
    )

    # Unwrapped keys are kept only while the rows of one tenant stream past.
    tenant_keys: dict[tuple[str, int], bytes] = {}
    for row in db.session.execute(query):
        if tenant_keys and next(iter(tenant_keys))[0] != row.tenant_id:
            tenant_keys.clear()

        reason = _value_failure_reason(keyring, row, broken_keys, tenant_keys)
        if reason is not None:
            result.failures.append(VerifyFailure(row.slug, row.key, reason))
        result.values += 1
        if on_value is not None:
            on_value()


def _value_failure_reason(keyring: Keyring, row, broken_keys: set[tuple[str, int]], tenant_keys: dict) -> str | None:
    """Decrypt one stored value and return None, or the reason why it cannot be decrypted."""
    version = row.data_key_version
    if version is None:
        registered = KEYS.get(row.key)
        return "it is stored in plain text, but the key is declared encrypted" if registered and registered.encrypted else None
    if row.wrapped_key is None:
        return f"its data key v{version} is missing"
    if (row.tenant_id, version) in broken_keys:
        return f"its data key v{version} cannot be unwrapped"

    named_version = blob_data_key_version(row.value)
    if named_version is None:
        return "the stored ciphertext is malformed"
    if named_version != version:
        return f"the ciphertext names data key v{named_version}, but the row names v{version}"

    data_key = tenant_keys.get((row.tenant_id, version))
    if data_key is None:
        data_key = unwrap_data_key(keyring, row.tenant_id, version, row.master_key_id, row.wrapped_key)
        tenant_keys[(row.tenant_id, version)] = data_key
    try:
        decrypt_value(data_key, row.tenant_id, row.key, row.value)
    except DecryptionError:
        return "the ciphertext does not authenticate, so it is damaged or was copied from another tenant or key"
    return None
