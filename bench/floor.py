"""The floor for parts 1 and 2: Python's ``sqlite3`` selects the stored value, and ``cryptography`` decrypts it once.

The floor reads the product's own rows, but has every tenant's plaintext
data key in memory already, so it skips the unwrapping, the ORM session and
every check that the product makes. It is the cost that any design storing
this ciphertext in SQLite pays: one SELECT and one decrypt.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenant_config.crypto import value_associated_data

from .seed import SeededTenant

_HEADER_BYTES = 5
_NONCE_END = _HEADER_BYTES + 12


def _decrypt(data_key: bytes, tenant_id: str, key_name: str, blob: str) -> str:
    raw = base64.urlsafe_b64decode(blob)
    header = raw[:_HEADER_BYTES]
    version = int.from_bytes(raw[1:_HEADER_BYTES], "big")
    context = header + value_associated_data(tenant_id, key_name, version)
    return AESGCM(data_key).decrypt(raw[_HEADER_BYTES:_NONCE_END], raw[_NONCE_END:], context).decode("utf-8")


class SqliteFloor:
    """A plain ``sqlite3`` connection to the benchmark's SQLite file, with the data keys at hand."""

    def __init__(self, path: str, tenants: Sequence[SeededTenant]):
        self.connection = sqlite3.connect(path)
        self.tenants = tenants
        self.data_keys = {tenant.id: tenant.data_key for tenant in tenants}

    def resolve(self, index: int, key_name: str) -> str:
        """Select one tenant's value and decrypt it."""
        tenant = self.tenants[index]
        (blob,) = self.connection.execute(
            "SELECT value FROM config_value WHERE tenant_id = ? AND key = ?", (tenant.id, key_name)
        ).fetchone()
        return _decrypt(tenant.data_key, tenant.id, key_name, blob)

    def resolve_all(self, key_name: str) -> int:
        """Select and decrypt every tenant's value of one key. Returns how many it decrypted."""
        data_keys = self.data_keys
        count = 0
        for tenant_id, blob in self.connection.execute("SELECT tenant_id, value FROM config_value WHERE key = ?", (key_name,)):
            _decrypt(data_keys[tenant_id], tenant_id, key_name, blob)
            count += 1
        return count

    def close(self) -> None:
        self.connection.close()
