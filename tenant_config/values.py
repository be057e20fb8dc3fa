"""Writing and listing a tenant's config values. Encryption happens here, on write."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock

from flask import current_app
from sqlalchemy import and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import flag_modified

from . import audit, datakeys
from .audit import Actor
from .crypto import DecryptionError, decrypt_value_with, encrypt_value
from .direct_query import DirectQuery, NamedRow
from .extensions import db
from .models import ConfigValue, Tenant, TenantDataKey, utcnow
from .registry import KEYS, ConfigKey, get_key

logger = logging.getLogger(__name__)

SET = "set"
REPLACE = "replace"
CLEAR = "clear"

MAX_WRITE_ATTEMPTS = 3


# The columns of a stored value that the pages show, with the data key that its row names.
_value = ConfigValue.__table__
_data_key = TenantDataKey.__table__
_STORED_VALUES = DirectQuery(
    select(
        _value.c.key, _value.c.value, _value.c.data_key_version, _value.c.row_version, _value.c.updated_at,
        _value.c.updated_by_label, _value.c.last_used_at, _value.c.last_used_by,
        _data_key.c.master_key_id, _data_key.c.wrapped_key,
    )
    .select_from(_value)
    .outerjoin(_data_key, and_(
        _data_key.c.tenant_id == _value.c.tenant_id, _data_key.c.version == _value.c.data_key_version,
    ))
    .where(_value.c.tenant_id == bindparam("tenant_id"))
)


@dataclass
class SettingView:
    """The part of one key that the settings page may show. ``value`` is None for secrets.

    ``row`` is the stored row as read for the page, with the value columns
    of ``ConfigValue`` and its data key's ``master_key_id`` and
    ``wrapped_key`` as attributes, or None when the key is not set. ``decryptable`` is
    False for a stored secret that fails to decrypt, which the page shows so
    that an admin can enter it again.
    """

    key: ConfigKey
    row: NamedRow | None
    value: str | None
    decryptable: bool = True

    @property
    def is_set(self) -> bool:
        return self.row is not None


def stored_rows(tenant: Tenant) -> dict[str, ConfigValue]:
    rows = db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id))
    return {row.key: row for row in rows}


def describe(tenant: Tenant) -> list[SettingView]:
    """List every registry key for a page, with plain values and no secret, from one query.

    Each stored secret is decrypted in memory and dropped, only to find out
    whether it still decrypts, once per process for each stored blob. The
    query runs on the DBAPI cursor, not through the ORM, because a page
    reads these rows and never changes them.
    """
    rows = {row.key: row for row in _STORED_VALUES.rows({"tenant_id": tenant.id})}
    views = []
    for key in KEYS.values():
        row = rows.get(key.name)
        if not key.encrypted:
            views.append(SettingView(key=key, row=row, value=row.value if row else key.default))
        elif row is None:
            views.append(SettingView(key=key, row=None, value=None))
        else:
            views.append(SettingView(key=key, row=row, value=None, decryptable=_decrypts(tenant, row)))
    return views


class DecryptableValues:
    """A bounded, thread-safe record of stored values that decrypted in this process, one per app.

    An entry names the exact stored blob, its wrapped data key and that
    key's master key id, so a changed, damaged or rewrapped value is checked
    again. With the same keyring, the
    same bytes always decrypt the same way, so the settings page need not
    decrypt each secret on every view.
    """

    def __init__(self, max_entries: int = 4096):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str, str, int, str, str], None] = OrderedDict()
        self._lock = Lock()

    def __contains__(self, entry: tuple[str, str, str, int, str, str]) -> bool:
        with self._lock:
            if entry not in self._entries:
                return False
            self._entries.move_to_end(entry)
            return True

    def add(self, entry: tuple[str, str, str, int, str, str]) -> None:
        with self._lock:
            self._entries[entry] = None
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def __repr__(self) -> str:
        return f"DecryptableValues(entries={len(self._entries)}, max_entries={self.max_entries})"


def _decrypts(tenant: Tenant, row: NamedRow) -> bool:
    """Decrypt a stored secret in memory, with the data key its row names, and drop the plaintext."""
    if row.wrapped_key is None:
        _log_undecryptable_once(tenant, row)
        return False

    decryptable = current_app.extensions["tenant_config.decryptable_values"]
    entry = (tenant.id, row.key, row.value, row.data_key_version, row.master_key_id, row.wrapped_key)
    if entry in decryptable:
        return True

    try:
        aead = datakeys.value_aead(tenant.id, row.data_key_version, row.master_key_id, row.wrapped_key)
        decrypt_value_with(aead, tenant.id, row.key, row.value, tenant_label=tenant.slug)
    except DecryptionError:
        _log_undecryptable_once(tenant, row)
        return False
    decryptable.add(entry)
    return True


# (tenant id, key, row version) of values already logged as undecryptable, so
# that each broken value is logged once per process and not on every page view.
_logged_undecryptable: set[tuple[str, str, int]] = set()


def _log_undecryptable_once(tenant: Tenant, row: NamedRow) -> None:
    marker = (tenant.id, row.key, row.row_version)
    if marker in _logged_undecryptable:
        return
    _logged_undecryptable.add(marker)
    logger.warning(
        "Stored value %s of tenant %s (row version %s) cannot be decrypted. Run `keys verify` for the reason.",
        row.key, tenant.slug, row.row_version,
    )


def _store(tenant: Tenant, key: ConfigKey, row: ConfigValue | None, value: str, actor: Actor) -> str:
    data_key_version = None
    if key.encrypted:
        data_key_row = datakeys.current_data_key(tenant)
        data_key = datakeys.unwrap_row(data_key_row)
        value = encrypt_value(data_key, tenant.id, key.name, data_key_row.version, value)
        data_key_version = data_key_row.version

    if row is None:
        row = ConfigValue(tenant_id=tenant.id, key=key.name, row_version=1)
        db.session.add(row)
        action = SET
    else:
        # Incremented in SQL, so that a tenant key rotation's compare-and-swap
        # on row_version detects every concurrent save.
        row.row_version = ConfigValue.row_version + 1
        action = REPLACE

    # Always write the version with the value, even when it looks unchanged. A
    # tenant key rotation may have moved the row since it was read, and writing
    # the column makes the foreign key check that the data key still exists.
    row.value = value
    row.data_key_version = data_key_version
    flag_modified(row, "data_key_version")
    row.updated_at = utcnow()
    row.updated_by_id = actor.user_id
    row.updated_by_label = actor.label
    audit.record(tenant, actor, action, key.name)
    return action


def _effective(rows: dict[str, ConfigValue], name: str) -> str | None:
    row = rows.get(name)
    return row.value if row is not None else KEYS[name].default


def invalidated_secrets(rows: dict[str, ConfigValue], changes: dict[str, str | None]) -> list[str]:
    """List the stored secrets that ``changes`` would move to another destination without a new value.

    A secret is bound to keys such as the SMTP host: a password saved for one
    server must never be sent to a server that someone chose later.
    """
    invalidated = []
    for key in KEYS.values():
        if not key.bound_to or key.name not in rows or changes.get(key.name) is not None:
            continue
        for name in key.bound_to:
            if name not in changes:
                continue
            new_value = changes[name] if changes[name] is not None else KEYS[name].default
            if new_value != _effective(rows, name):
                invalidated.append(key.name)
                break
    return invalidated


class ConflictError(Exception):
    """A save from a page that is out of date: the key changed after the page was rendered."""

    def __init__(self, key_name: str, row: ConfigValue | None):
        self.key_name = key_name
        self.changed_by = row.updated_by_label if row is not None else None
        self.changed_at = row.updated_at if row is not None else None
        super().__init__(f"{key_name} changed after the form was rendered")


def _check_version(name: str, row: ConfigValue | None, expected_versions: dict[str, int] | None) -> None:
    """Raise ConflictError when the row is not at the version the form was rendered with (0: not set)."""
    if expected_versions is None or name not in expected_versions:
        return
    current = row.row_version if row is not None else 0
    if current != expected_versions[name]:
        raise ConflictError(name, row)


def apply_changes(
    tenant: Tenant, changes: dict[str, str | None], actor: Actor, expected_versions: dict[str, int] | None = None,
) -> dict[str, str]:
    """Write validated values (None clears a key) in one transaction.

    Values equal to what is stored are skipped, so an unchanged field leaves no
    audit event. A stored secret whose destination changes is cleared in the
    same transaction. Returns the action taken for each key that changed.

    With ``expected_versions`` (row versions the form was rendered with, 0
    for a key that was not set), a write to a key that changed since raises
    ConflictError and nothing is saved. A write that collides with a
    concurrent one is retried on fresh rows, up to MAX_WRITE_ATTEMPTS times,
    and the version check then detects the other write. Such collisions are
    two first saves of one key, or a tenant key rotation that deleted the
    data key just read.
    """
    # Read the slug before the commit, because the commit expires the tenant and a later read costs a query.
    slug = tenant.slug
    for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
        try:
            actions = _write_changes(tenant, changes, actor, expected_versions)
            db.session.commit()
            break
        except ConflictError:
            db.session.rollback()
            raise
        except IntegrityError:
            db.session.rollback()
            if attempt == MAX_WRITE_ATTEMPTS:
                raise
            logger.info("Config save for tenant %s conflicted with a concurrent write, attempt %s; retrying", slug, attempt)

    for name, action in actions.items():
        logger.info("Config %s %s for tenant %s by %s", name, action, slug, actor.label)
    return actions


def _locked_rows(tenant: Tenant) -> dict[str, ConfigValue]:
    """Read the tenant's rows and lock them until commit: row locks on PostgreSQL, the write lock on SQLite.

    The data key is locked first and the rows in id order, the same order as
    a tenant key rotation takes them, so that the two never deadlock.
    """
    datakeys.current_data_key(tenant)
    query = (
        select(ConfigValue).where(ConfigValue.tenant_id == tenant.id).order_by(ConfigValue.id)
        .with_for_update().execution_options(populate_existing=True)
    )
    return {row.key: row for row in db.session.scalars(query)}


def _leaves_unchanged(key: ConfigKey, row: ConfigValue | None, value: str | None) -> bool:
    if value is None:
        return row is None
    # A secret is always written, because its ciphertext cannot be compared with the new plaintext.
    return row is not None and not key.encrypted and row.value == value


def _write_changes(
    tenant: Tenant, changes: dict[str, str | None], actor: Actor, expected_versions: dict[str, int] | None,
) -> dict[str, str]:
    rows = _locked_rows(tenant)
    changes = {**changes, **{name: None for name in invalidated_secrets(rows, changes)}}
    actions: dict[str, str] = {}
    for name, value in changes.items():
        key = get_key(name)
        row = rows.get(name)
        if _leaves_unchanged(key, row, value):
            continue
        _check_version(name, row, expected_versions)

        if value is None:
            db.session.delete(row)
            audit.record(tenant, actor, CLEAR, name)
            actions[name] = CLEAR
        else:
            actions[name] = _store(tenant, key, row, value, actor)

    db.session.flush()
    return actions


def set_value(tenant: Tenant, name: str, raw: str, actor: Actor) -> dict[str, str]:
    """Validate and store one value. Returns the actions taken, which may clear a bound secret.

    Raises ValidationError or UnknownKeyError.
    """
    key = get_key(name)
    value = key.clean(raw)
    return apply_changes(tenant, {name: value}, actor)


def clear_value(tenant: Tenant, name: str, actor: Actor) -> bool:
    """Remove one stored value. Returns False when it was not set."""
    get_key(name)
    return bool(apply_changes(tenant, {name: None}, actor))
