"""Filling a benchmark database in bulk, with the product's own crypto functions and no CLI round trips."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from tenant_config.crypto import MasterKey, encrypt_value, new_data_key, wrap_data_key
from tenant_config.models import ConfigValue, Membership, Tenant, TenantDataKey, User, utcnow

INSERT_BATCH = 5000
SEED_LABEL = "bench seed"


@dataclass(frozen=True)
class SeededTenant:
    """A tenant that the seed created, with its plaintext data key for the baselines that skip unwrapping."""

    index: int
    id: str
    slug: str
    data_key: bytes

    def plaintext(self, key_name: str) -> str:
        return plaintext(self.index, key_name)


def tenant_id(index: int, prefix: str) -> str:
    """Return a stable UUID-shaped id, so that every run seeds the same ids."""
    digest = hashlib.sha256(f"{prefix}{index}".encode()).hexdigest()
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def plaintext(index: int, key_name: str) -> str:
    """Return the value stored for one tenant and key: a Stripe-like secret of 32 characters."""
    digest = hashlib.sha256(f"{key_name}/{index}".encode()).hexdigest()
    return f"sk_test_{digest[:24]}"


def rotation_key_names(count: int) -> list[str]:
    """Return ``count`` distinct key names. Rotation reads no registry, so they need no declaration."""
    return [f"bench.secret_{number:02d}" for number in range(count)]


def _batches(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def insert_tenants(
    connection: sa.Connection,
    master: MasterKey,
    count: int,
    key_names: Sequence[str],
    slug_prefix: str = "bench-",
) -> list[SeededTenant]:
    """Insert ``count`` tenants, each with data key version 1 and one encrypted value for every key name.

    Values are encrypted with ``encrypt_value`` and data keys wrapped with
    ``wrap_data_key``, so the rows are exactly what the product writes.
    """
    now = utcnow()
    seeded: list[SeededTenant] = []
    for batch in _batches(count, INSERT_BATCH):
        tenants, data_keys, values = [], [], []
        for index in batch:
            identifier = tenant_id(index, slug_prefix)
            slug = f"{slug_prefix}{index:06d}"
            data_key = new_data_key()
            seeded.append(SeededTenant(index, identifier, slug, data_key))

            tenants.append({"id": identifier, "slug": slug, "name": f"Bench tenant {index}", "created_at": now})
            data_keys.append({
                "tenant_id": identifier,
                "version": 1,
                "master_key_id": master.id,
                "wrapped_key": wrap_data_key(master, identifier, 1, data_key),
                "created_at": now,
            })
            for key_name in key_names:
                values.append({
                    "tenant_id": identifier,
                    "key": key_name,
                    "value": encrypt_value(data_key, identifier, key_name, 1, plaintext(index, key_name)),
                    "data_key_version": 1,
                    "row_version": 1,
                    "updated_at": now,
                    "updated_by_id": None,
                    "updated_by_label": SEED_LABEL,
                })

        connection.execute(sa.insert(Tenant.__table__), tenants)
        connection.execute(sa.insert(TenantDataKey.__table__), data_keys)
        if values:
            connection.execute(sa.insert(ConfigValue.__table__), values)
    return seeded


def insert_admins(connection: sa.Connection, tenants: Sequence[SeededTenant], password_hash: str) -> list[str]:
    """Insert one admin user for each tenant, all with the same password hash. Returns their emails in order."""
    now = utcnow()
    emails = [f"admin@{tenant.slug}.example" for tenant in tenants]
    connection.execute(
        sa.insert(User.__table__),
        [{"email": email, "password_hash": password_hash, "is_operator": False, "created_at": now} for email in emails],
    )
    ids = dict(connection.execute(sa.select(User.__table__.c.email, User.__table__.c.id).where(User.__table__.c.email.in_(emails))).all())
    connection.execute(
        sa.insert(Membership.__table__),
        [{"user_id": ids[email], "tenant_id": tenant.id, "role": "admin"} for email, tenant in zip(emails, tenants)],
    )
    return emails
