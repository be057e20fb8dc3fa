"""Key status: the master key ids that stored data keys need, compared with the configured keyring."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, inspect, select

from .config import ConfigError
from .crypto import Keyring
from .extensions import db
from .models import ConfigValue, TenantDataKey

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyStatus:
    """Counts of stored data keys per master key id, and of values per data key version."""

    current_id: str
    previous_ids: list[str]
    data_keys_by_master_id: dict[str, int]
    values_by_version: dict[int, int]
    plain_values: int

    @property
    def unconfigured_ids(self) -> list[str]:
        """Master key ids that wrap stored data keys but are not in the keyring."""
        configured = {self.current_id, *self.previous_ids}
        return sorted(key_id for key_id in self.data_keys_by_master_id if key_id not in configured)

    @property
    def data_keys_not_current(self) -> int:
        return sum(count for key_id, count in self.data_keys_by_master_id.items() if key_id != self.current_id)


def has_schema() -> bool:
    """Return whether the database has the tables that the migrations create."""
    return inspect(db.engine).has_table(TenantDataKey.__tablename__)


def key_status(keyring: Keyring) -> KeyStatus:
    """Count the stored data keys under each master key id and the values under each data key version."""
    values = db.session.execute(
        select(ConfigValue.data_key_version, func.count()).group_by(ConfigValue.data_key_version)
    ).all()

    by_version = {version: count for version, count in values if version is not None}
    plain = sum(count for version, count in values if version is None)
    return KeyStatus(
        current_id=keyring.current.id,
        previous_ids=keyring.previous_ids,
        data_keys_by_master_id=_data_keys_by_master_id(),
        values_by_version=dict(sorted(by_version.items())),
        plain_values=plain,
    )


def _data_keys_by_master_id() -> dict[str, int]:
    rows = db.session.execute(select(TenantDataKey.master_key_id, func.count()).group_by(TenantDataKey.master_key_id))
    return dict(sorted(rows.all()))


def check_stored_keys(keyring: Keyring) -> None:
    """Raise ConfigError when the database has data keys and no configured master key unwraps any of them.

    A database without tables or without data keys passes. When only some data
    keys are wrapped under unconfigured master keys, the app can still serve
    the other tenants, so this logs a warning instead.
    """
    if not has_schema():
        return

    # Only the data keys are counted here, so that start-up time does not grow with the number of values.
    stored = _data_keys_by_master_id()
    missing = sorted(set(stored) - set(keyring.ids))
    if not missing:
        return

    if len(missing) == len(stored):
        raise ConfigError(_wrong_key_message(keyring, stored))

    affected = sum(stored[key_id] for key_id in missing)
    logger.warning(
        "%s tenant data keys are wrapped under master key ids %s, which are not configured, so their tenants' secrets "
        "cannot be decrypted. Add those keys to CONFIG_ENCRYPTION_PREVIOUS_KEYS.", affected, ", ".join(missing),
    )


def _wrong_key_message(keyring: Keyring, stored_counts: dict[str, int]) -> str:
    stored = ", ".join(f"{key_id} ({count} data keys)" for key_id, count in stored_counts.items())
    previous = ", ".join(keyring.previous_ids) or "none"
    return (
        "no configured master key can unwrap the tenant data keys in this database. "
        f"The stored data keys are wrapped under master key ids: {stored}. "
        f"The configured master key ids are {keyring.current.id} (CONFIG_ENCRYPTION_KEY) "
        f"and {previous} (CONFIG_ENCRYPTION_PREVIOUS_KEYS). "
        "This happens when a backup is restored with another key or a key is mistyped. "
        "Set CONFIG_ENCRYPTION_KEY to the key that this database was written with, or add that key to "
        "CONFIG_ENCRYPTION_PREVIOUS_KEYS. `flask --app app keys status` shows the ids and works with any key."
    )
