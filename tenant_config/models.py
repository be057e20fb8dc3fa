"""Database models: tenants, users, memberships, data keys, config values, audit events."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timezone
from typing import Optional

from flask_login import UserMixin
from sqlalchemy import (
    Boolean, CheckConstraint, DateTime, ForeignKey, ForeignKeyConstraint, Index, Integer, String, Text, UniqueConstraint,
    event, inspect,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db
from .registry import ROLES


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """Return ``moment`` as an aware UTC datetime. SQLite returns stored times without a zone, and they are UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


class Tenant(db.Model):
    """A customer of the platform. Its id is part of every ciphertext's associated data."""

    __tablename__ = "tenant"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="tenant", cascade="all, delete-orphan")

    def __repr__(self) -> str:
        return f"Tenant(slug={self.slug!r})"


@event.listens_for(Tenant, "before_update")
def _keep_tenant_id_immutable(mapper, connection, target: Tenant) -> None:
    if inspect(target).attrs.id.history.has_changes():
        raise ValueError("a tenant id cannot change, because every ciphertext is bound to it")


class User(UserMixin, db.Model):
    """A person who logs in. Operators administer tenants through the CLI only."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    # Part of the id stored in the session cookie. Logout replaces it, so a copied cookie stops working.
    session_token: Mapped[Optional[str]] = mapped_column(String(64), default=lambda: secrets.token_urlsafe(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", cascade="all, delete-orphan")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token or ''}"

    def end_sessions(self) -> None:
        """Invalidate every session cookie issued to this user so far."""
        self.session_token = secrets.token_urlsafe(32)

    def __repr__(self) -> str:
        return f"User(email={self.email!r})"


class Membership(db.Model):
    """A user's role in one tenant."""

    __tablename__ = "membership"
    __table_args__ = (
        UniqueConstraint("user_id", "tenant_id"),
        CheckConstraint(f"role IN ({', '.join(repr(role) for role in ROLES)})", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship(back_populates="memberships")


class TenantDataKey(db.Model):
    """A tenant's 256-bit data key, stored only wrapped under a master key."""

    __tablename__ = "tenant_data_key"
    __table_args__ = (UniqueConstraint("tenant_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    master_key_id: Mapped[str] = mapped_column(String(16), index=True)
    wrapped_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    def __repr__(self) -> str:
        return f"TenantDataKey(tenant_id={self.tenant_id!r}, version={self.version}, master_key_id={self.master_key_id!r})"


class ConfigValue(db.Model):
    """One setting of one tenant. Encrypted keys store only ciphertext in ``value``.

    An encrypted value references the data key that encrypted it, so the
    database rejects deleting a data key that a value still uses.
    """

    __tablename__ = "config_value"
    __table_args__ = (
        UniqueConstraint("tenant_id", "key"),
        ForeignKeyConstraint(
            ["tenant_id", "data_key_version"], ["tenant_data_key.tenant_id", "tenant_data_key.version"],
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    value: Mapped[str] = mapped_column(Text)
    data_key_version: Mapped[Optional[int]] = mapped_column(Integer)
    row_version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    updated_by_label: Mapped[str] = mapped_column(String(254))
    # When the backend last resolved this secret, and for which job. See ``usage`` for how often it is written.
    last_used_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    last_used_by: Mapped[Optional[str]] = mapped_column(String(64))

    updated_by: Mapped[Optional[User]] = relationship()

    @property
    def is_encrypted(self) -> bool:
        return self.data_key_version is not None

    def __repr__(self) -> str:
        return f"ConfigValue(tenant_id={self.tenant_id!r}, key={self.key!r}, row_version={self.row_version})"


class AuditEvent(db.Model):
    """A record of one action on a tenant's settings: actor, action, key, time and address, never a value."""

    __tablename__ = "audit_event"
    # The activity page lists one tenant's events newest first, optionally for one key or one action. Each
    # index serves one of those queries in order, id included, so no query sorts rows.
    __table_args__ = (
        Index("ix_audit_event_tenant_time", "tenant_id", "created_at", "id"),
        Index("ix_audit_event_tenant_key_time", "tenant_id", "key", "created_at", "id"),
        Index("ix_audit_event_tenant_action_time", "tenant_id", "action", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[Optional[str]] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(32))
    key: Mapped[Optional[str]] = mapped_column(String(100))
    client_address: Mapped[Optional[str]] = mapped_column(String(64))
    # For test sends: "ok", or "failed: " and the message shown to the admin, which never contains a secret.
    outcome: Mapped[Optional[str]] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"AuditEvent(action={self.action!r}, key={self.key!r}, actor={self.actor_label!r})"
