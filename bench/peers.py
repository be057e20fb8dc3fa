"""The two peer designs that the resolver is compared with, as their users would model them in SQLAlchemy.

- sqlalchemy-utils: a ``StringEncryptedType(Unicode, key, AesGcmEngine)``
  column, which encrypts on write and decrypts every value as rows load.
- Fernet on load: a ``TypeDecorator`` that stores a Fernet token and
  decrypts it as rows load, the way django-fernet-fields stores values. Both
  use one application-wide key, with no per-tenant key and no envelope.

Both tables live in the benchmark's database, beside the product's tables, on
a metadata of their own, so the product's migrations never see them.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy_utils import StringEncryptedType
from sqlalchemy_utils.types.encrypted.encrypted_type import AesGcmEngine

from .seed import INSERT_BATCH, SeededTenant

# One key per process, as an application would read from its settings.
UTILS_KEY = secrets.token_urlsafe(32)
FERNET = MultiFernet([Fernet(Fernet.generate_key())])


class PeerBase(DeclarativeBase):
    pass


class UtilsValue(PeerBase):
    """A tenant's value in a sqlalchemy-utils encrypted column."""

    __tablename__ = "bench_utils_value"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    key: Mapped[str] = mapped_column(sa.String(100))
    value: Mapped[str] = mapped_column(StringEncryptedType(sa.Unicode, UTILS_KEY, AesGcmEngine))


class FernetText(sa.TypeDecorator):
    """Text stored as a Fernet token and decrypted when a row loads, as django-fernet-fields does."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return FERNET.encrypt(value.encode("utf-8")).decode("ascii")

    def process_result_value(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return FERNET.decrypt(value.encode("ascii")).decode("utf-8")


class FernetValue(PeerBase):
    """A tenant's value as a Fernet token."""

    __tablename__ = "bench_fernet_value"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.String(36))
    key: Mapped[str] = mapped_column(sa.String(100))
    value: Mapped[str] = mapped_column(FernetText())


PEER_MODELS = (UtilsValue, FernetValue)


def insert_peer_values(connection: sa.Connection, tenants: Sequence[SeededTenant], key_name: str) -> None:
    """Create both peer tables and store each tenant's value in them, encrypted by the column types themselves."""
    PeerBase.metadata.create_all(connection)
    for model in PEER_MODELS:
        for start in range(0, len(tenants), INSERT_BATCH):
            rows = [
                {"tenant_id": tenant.id, "key": key_name, "value": tenant.plaintext(key_name)}
                for tenant in tenants[start:start + INSERT_BATCH]
            ]
            connection.execute(sa.insert(model), rows)
