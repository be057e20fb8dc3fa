"""Writing and listing a tenant's config values. Encryption happens here, on write."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from . import audit, datakeys
from .audit import Actor
from .crypto import encrypt_value
from .extensions import db
from .models import ConfigValue, Tenant, utcnow
from .registry import KEYS, ConfigKey, get_key

logger = logging.getLogger(__name__)

SET = "set"
REPLACE = "replace"
CLEAR = "clear"


@dataclass
class SettingView:
    """The part of one key that the settings page may show. ``value`` is None for secrets."""

    key: ConfigKey
    row: ConfigValue | None
    value: str | None

    @property
    def is_set(self) -> bool:
        return self.row is not None


def stored_rows(tenant: Tenant) -> dict[str, ConfigValue]:
    rows = db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id))
    return {row.key: row for row in rows}


def describe(tenant: Tenant) -> list[SettingView]:
    """List every registry key for a page, with plain values and no secret."""
    rows = stored_rows(tenant)
    views = []
    for key in KEYS.values():
        row = rows.get(key.name)
        value = None
        if not key.encrypted:
            value = row.value if row else key.default
        views.append(SettingView(key=key, row=row, value=value))
    return views


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
        row.row_version += 1
        action = REPLACE

    row.value = value
    row.data_key_version = data_key_version
    row.updated_at = utcnow()
    row.updated_by_id = actor.user_id
    row.updated_by_label = actor.label
    audit.record(tenant, actor, action, key.name)
    return action


def apply_changes(tenant: Tenant, changes: dict[str, str | None], actor: Actor) -> dict[str, str]:
    """Write validated values (None clears a key) in one transaction.

    Values equal to what is stored are skipped, so an unchanged field leaves no
    audit event. Returns the action taken for each key that changed.
    """
    rows = stored_rows(tenant)
    actions: dict[str, str] = {}
    for name, value in changes.items():
        key = get_key(name)
        row = rows.get(name)
        if value is None:
            if row is not None:
                db.session.delete(row)
                audit.record(tenant, actor, CLEAR, name)
                actions[name] = CLEAR
            continue
        if row is not None and not key.encrypted and row.value == value:
            continue
        actions[name] = _store(tenant, key, row, value, actor)

    # Read the slug before the commit, because the commit expires the tenant and a later read costs a query.
    slug = tenant.slug
    db.session.commit()
    for name, action in actions.items():
        logger.info("Config %s %s for tenant %s by %s", name, action, slug, actor.label)
    return actions


def set_value(tenant: Tenant, name: str, raw: str, actor: Actor) -> str:
    """Validate and store one value. Raises ValidationError or UnknownKeyError."""
    key = get_key(name)
    value = key.clean(raw)
    return apply_changes(tenant, {name: value}, actor).get(name, "unchanged")


def clear_value(tenant: Tenant, name: str, actor: Actor) -> bool:
    """Remove one stored value. Returns False when it was not set."""
    get_key(name)
    return bool(apply_changes(tenant, {name: None}, actor))
