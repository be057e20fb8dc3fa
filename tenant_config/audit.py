"""The audit trail: who changed which key of which tenant, when and from where."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from sqlalchemy import select

from .extensions import db
from .models import AuditEvent, Tenant, User


@dataclass(frozen=True)
class Actor:
    """The author of a change: a logged-in user, or an operator running the CLI."""

    label: str
    user_id: int | None = None
    client_address: str | None = None

    @classmethod
    def for_user(cls, user: User, client_address: str | None) -> Actor:
        return cls(label=user.email, user_id=user.id, client_address=client_address)

    @classmethod
    def cli(cls) -> Actor:
        try:
            account = getpass.getuser()
        except (KeyError, OSError):
            account = "unknown"
        return cls(label=f"cli ({account})")


def record(tenant: Tenant, actor: Actor, action: str, key: str | None = None, outcome: str | None = None) -> AuditEvent:
    """Add an audit event to the current transaction. Callers commit it with their change."""
    event = AuditEvent(
        tenant_id=tenant.id,
        actor_id=actor.user_id,
        actor_label=actor.label,
        action=action,
        key=key,
        client_address=actor.client_address,
        outcome=outcome[:200] if outcome else None,
    )
    db.session.add(event)
    return event


def recent_events(tenant: Tenant, limit: int = 200) -> list[AuditEvent]:
    return list(db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.tenant_id == tenant.id)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    ))
