"""The backend API: resolve one tenant's config value at the moment it is needed.

Example, inside an app context (a Flask CLI command or a worker that pushed one)::

    from tenant_config.resolver import resolve

    webhook = resolve("acme", "slack.webhook_url")    # a Secret
    post_json(webhook.reveal(), {"text": "Invoice paid"})

Secrets come back as ``Secret`` objects, whose ``str`` and ``repr`` are
masked. Decrypted values are never cached; only unwrapped data keys are.
"""

from __future__ import annotations

from sqlalchemy import and_, select

from . import datakeys
from .crypto import DecryptionError, decrypt_value
from .extensions import db
from .models import ConfigValue, Tenant, TenantDataKey
from .registry import UnknownKeyError, get_key
from .secret import Secret

__all__ = ["resolve", "TenantNotFoundError", "KeyNotSetError", "UnknownKeyError", "DecryptionError"]


class TenantNotFoundError(LookupError):
    def __init__(self, tenant: str):
        self.tenant = tenant
        super().__init__(f"tenant {tenant!r} does not exist")


class KeyNotSetError(LookupError):
    """A key that the tenant has not set and that has no default."""

    def __init__(self, tenant: str, key_name: str):
        self.tenant = tenant
        self.key_name = key_name
        super().__init__(f"{key_name!r} is not set for tenant {tenant!r}")


def _tenant_row(tenant: Tenant | str) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    row = db.session.scalars(select(Tenant).where(Tenant.slug == tenant)).first()
    if row is None:
        raise TenantNotFoundError(tenant)
    return row


def resolve(tenant: Tenant | str, key_name: str) -> Secret | str:
    """Return a tenant's value for a key: a ``Secret`` for encrypted keys, else a string.

    A plain key that is not set returns its default. Raises UnknownKeyError,
    TenantNotFoundError, KeyNotSetError, or DecryptionError when the stored
    value cannot be decrypted.
    """
    key = get_key(key_name)
    tenant_row = _tenant_row(tenant)

    query = (
        select(ConfigValue.value, TenantDataKey.version, TenantDataKey.master_key_id, TenantDataKey.wrapped_key)
        .outerjoin(TenantDataKey, and_(
            TenantDataKey.tenant_id == ConfigValue.tenant_id,
            TenantDataKey.version == ConfigValue.data_key_version,
        ))
        .where(ConfigValue.tenant_id == tenant_row.id, ConfigValue.key == key_name)
    )
    found = db.session.execute(query).first()

    if found is None:
        if key.default is not None:
            return key.default
        raise KeyNotSetError(tenant_row.slug, key_name)

    stored, version, master_key_id, wrapped_key = found
    if not key.encrypted:
        return stored
    if wrapped_key is None:
        raise DecryptionError(tenant_row.slug, key_name)

    try:
        data_key = datakeys.unwrap(tenant_row.id, version, master_key_id, wrapped_key)
    except DecryptionError:
        raise DecryptionError(tenant_row.slug, key_name) from None
    return Secret(decrypt_value(data_key, tenant_row.id, key_name, stored, tenant_label=tenant_row.slug), key_name)
