"""Insert thousands of tenants quickly, with real wrapped data keys and encrypted values."""

from __future__ import annotations

import uuid

from sqlalchemy import insert

from tenant_config.crypto import MasterKey, encrypt_value, new_data_key, wrap_data_key
from tenant_config.extensions import db
from tenant_config.models import ConfigValue, Tenant, TenantDataKey, utcnow

SECRET_KEY_NAME = "stripe.secret_key"


def insert_tenants(master: MasterKey, count: int, prefix: str = "bulk") -> dict[str, str]:
    """Insert ``count`` tenants, each with data key v1 under ``master`` and one encrypted Stripe key.

    Runs inside an app context and commits. Returns each tenant's slug with its plaintext Stripe key.
    """
    now = utcnow()
    tenants, data_keys, values, secrets = [], [], [], {}
    for number in range(count):
        tenant_id = str(uuid.uuid4())
        slug = f"{prefix}-{number:05d}"
        secret = f"sk_test_{prefix}{number:05d}{uuid.uuid4().hex[:8]}"
        data_key = new_data_key()

        tenants.append({"id": tenant_id, "slug": slug, "name": slug, "created_at": now})
        data_keys.append({
            "tenant_id": tenant_id, "version": 1, "master_key_id": master.id,
            "wrapped_key": wrap_data_key(master, tenant_id, 1, data_key), "created_at": now,
        })
        values.append({
            "tenant_id": tenant_id, "key": SECRET_KEY_NAME, "data_key_version": 1, "row_version": 1,
            "value": encrypt_value(data_key, tenant_id, SECRET_KEY_NAME, 1, secret),
            "updated_at": now, "updated_by_label": "bulk insert",
        })
        secrets[slug] = secret

    db.session.execute(insert(Tenant), tenants)
    db.session.execute(insert(TenantDataKey), data_keys)
    db.session.execute(insert(ConfigValue), values)
    db.session.commit()
    return secrets
