"""The backend API: resolve one tenant's config value at the moment it is needed.

Example, inside an app context (a Flask CLI command or a worker that pushed one)::

    from tenant_config.resolver import resolve

    webhook = resolve("acme", "slack.webhook_url")    # a Secret
    post_json(webhook.reveal(), {"text": "Invoice paid"})

Secrets come back as ``Secret`` objects, whose ``str`` and ``repr`` are
masked. Decrypted values are never cached; only unwrapped data keys are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Row, and_, bindparam, select

from . import datakeys, usage
from .crypto import BulkDecryptor, DecryptionError, decrypt_value_with
from .direct_query import DirectQuery, session_connection
from .identity import TenantRef
from .models import ConfigValue, Tenant, TenantDataKey
from .registry import ConfigKey, UnknownKeyError, get_key
from .secret import Secret

__all__ = [
    "resolve", "resolve_many", "TenantNotFoundError", "KeyNotSetError", "UnknownKeyError", "DecryptionError",
]

# Batch size for ``resolve_many``: slugs per query when tenants are named, rows per fetch otherwise.
BULK_BATCH_SIZE = 500
_FETCH_ROWS = 2000


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


# The statements are built once, because building a select costs more than
# running it on a warm connection. They use the tables, not the ORM entities,
# so that rows come back without the ORM's per-row work. The hot ones are
# DirectQuery objects, which run on the DBAPI cursor and return plain tuples.
_tenant = Tenant.__table__
_value = ConfigValue.__table__
_data_key = TenantDataKey.__table__
_data_key_of_value = and_(
    _data_key.c.tenant_id == _value.c.tenant_id,
    _data_key.c.version == _value.c.data_key_version,
)

# By slug: one row per existing tenant, with NULL value columns when the key is not set.
_BY_SLUG = DirectQuery(
    select(_tenant.c.id, _value.c.value, _data_key.c.version, _data_key.c.master_key_id, _data_key.c.wrapped_key)
    .select_from(_tenant)
    .outerjoin(_value, and_(_value.c.tenant_id == _tenant.c.id, _value.c.key == bindparam("key_name")))
    .outerjoin(_data_key, _data_key_of_value)
    .where(_tenant.c.slug == bindparam("slug"))
)

# By tenant id, for a caller that already has the Tenant: no row when the key is not set.
_BY_TENANT_ID = DirectQuery(
    select(_value.c.tenant_id, _value.c.value, _data_key.c.version, _data_key.c.master_key_id, _data_key.c.wrapped_key)
    .select_from(_value)
    .outerjoin(_data_key, _data_key_of_value)
    .where(_value.c.tenant_id == bindparam("tenant_id"), _value.c.key == bindparam("key_name"))
)

# Every tenant that has a value for the key.
_ALL_WITH_KEY = DirectQuery(
    select(_tenant.c.slug, _tenant.c.id, _value.c.value, _data_key.c.version, _data_key.c.master_key_id, _data_key.c.wrapped_key)
    .select_from(_value)
    .join(_tenant, _tenant.c.id == _value.c.tenant_id)
    .outerjoin(_data_key, _data_key_of_value)
    .where(_value.c.key == bindparam("key_name"))
)

# The named tenants, with NULL value columns for those without the key.
_NAMED_TENANTS = (
    select(_tenant.c.slug, _tenant.c.id, _value.c.value, _data_key.c.version, _data_key.c.master_key_id, _data_key.c.wrapped_key)
    .select_from(_tenant)
    .outerjoin(_value, and_(_value.c.tenant_id == _tenant.c.id, _value.c.key == bindparam("key_name")))
    .outerjoin(_data_key, _data_key_of_value)
    .where(_tenant.c.slug.in_(bindparam("slugs", expanding=True)))
)


def resolve(tenant: Tenant | TenantRef | str, key_name: str, used_by: str | None = None) -> Secret | str:
    """Return a tenant's value for a key: a ``Secret`` for encrypted keys, else a string.

    ``tenant`` is a slug, or a ``Tenant`` or ``TenantRef`` whose id and slug
    are used as they are. A plain key that is not set returns its default. Raises UnknownKeyError,
    TenantNotFoundError, KeyNotSetError, or DecryptionError when the stored
    value cannot be decrypted. Runs one query, after the refresh that an
    expired ``Tenant`` object does by itself when its id is read.

    ``used_by`` names the job that is about to send a secret out, such as
    ``"slack-notify"``. The settings page then shows when and by what the
    secret was last used. ``usage`` writes that at most once a minute per
    process, in a transaction of its own. Leave it out when the value is
    only checked, not used.
    """
    key = get_key(key_name)
    if not isinstance(tenant, str):
        slug = tenant.slug
        found = _BY_TENANT_ID.first({"tenant_id": tenant.id, "key_name": key_name})
    else:
        slug = tenant
        found = _BY_SLUG.first({"slug": tenant, "key_name": key_name})
        if found is None:
            raise TenantNotFoundError(tenant)

    if found is None or found[1] is None:
        if key.default is not None:
            return key.default
        raise KeyNotSetError(slug, key_name)

    tenant_id, stored, version, master_key_id, wrapped_key = found
    if not key.encrypted:
        return stored
    if wrapped_key is None:
        raise DecryptionError(slug, key_name)

    try:
        aead = datakeys.value_aead(tenant_id, version, master_key_id, wrapped_key)
    except DecryptionError:
        raise DecryptionError(slug, key_name) from None
    secret = Secret(decrypt_value_with(aead, tenant_id, key_name, stored, tenant_label=slug), key_name)
    if used_by is not None:
        usage.record_use(tenant_id, key_name, used_by, slug)
    return secret


BulkValue = Secret | str | DecryptionError | KeyNotSetError | TenantNotFoundError


def resolve_many(key_name: str, tenants: Iterable[Tenant | TenantRef | str] | None = None) -> Iterator[tuple[str, BulkValue]]:
    """Resolve one key for many tenants, yielding ``(tenant slug, value)`` pairs as rows arrive.

    With ``tenants=None`` it yields every tenant that has a stored value for
    the key, in no particular order, from one query. With slugs or ``Tenant``
    objects it yields one pair for each, in the order given, with one query
    per ``BULK_BATCH_SIZE`` tenants. Values are what ``resolve`` returns.

    A failure that concerns one tenant does not stop the others: its pair
    contains the exception instead of a value. That is a DecryptionError for a
    value that cannot be decrypted, a KeyNotSetError for a named tenant
    without the key and without a default, or a TenantNotFoundError for an
    unknown slug. An undeclared key raises UnknownKeyError before any query.

    Each row's data key is unwrapped once, outside the per-process cache, so
    that a pass over many tenants does not evict the keys that ``resolve``
    keeps warm. Do not commit the session until the iteration ends, because
    on PostgreSQL the rows come from a server-side cursor of that transaction.
    """
    key = get_key(key_name)
    decryptor = BulkDecryptor(datakeys.keyring(), key.name) if key.encrypted else None
    if tenants is None:
        return _resolve_all(key, decryptor)
    return _resolve_named(key, decryptor, tenants)


def _resolve_all(key: ConfigKey, decryptor: BulkDecryptor | None) -> Iterator[tuple[str, BulkValue]]:
    batches = _ALL_WITH_KEY.stream({"key_name": key.name}, _FETCH_ROWS)
    if decryptor is None:
        for rows in batches:
            for slug, _tenant_id, stored, _version, _master_key_id, _wrapped_key in rows:
                yield slug, stored
        return

    # This loop runs once per tenant, so it unpacks each row in place and calls no helper of its own.
    key_name = key.name
    decrypt = decryptor.decrypt
    for rows in batches:
        for slug, tenant_id, stored, version, master_key_id, wrapped_key in rows:
            if wrapped_key is None:
                yield slug, DecryptionError(slug, key_name)
                continue
            try:
                value = Secret(decrypt(tenant_id, version, master_key_id, wrapped_key, stored, slug), key_name)
            except DecryptionError as error:
                value = error
            yield slug, value


def _resolve_named(
    key: ConfigKey, decryptor: BulkDecryptor | None, tenants: Iterable[Tenant | TenantRef | str],
) -> Iterator[tuple[str, BulkValue]]:
    for slugs in _batches((tenant if isinstance(tenant, str) else tenant.slug for tenant in tenants), BULK_BATCH_SIZE):
        result = session_connection().execute(_NAMED_TENANTS, {"key_name": key.name, "slugs": sorted(set(slugs))})
        rows = {row.slug: row for row in result}
        for slug in slugs:
            row = rows.get(slug)
            if row is None:
                yield slug, TenantNotFoundError(slug)
            elif row.value is None:
                yield slug, key.default if key.default is not None else KeyNotSetError(slug, key.name)
            else:
                yield slug, _bulk_value(key, decryptor, row)


def _bulk_value(key: ConfigKey, decryptor: BulkDecryptor | None, row: Row) -> BulkValue:
    if decryptor is None:
        return row.value
    if row.wrapped_key is None:
        return DecryptionError(row.slug, key.name)
    try:
        return Secret(decryptor.decrypt(row.id, row.version, row.master_key_id, row.wrapped_key, row.value, row.slug), key.name)
    except DecryptionError as error:
        return error


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
