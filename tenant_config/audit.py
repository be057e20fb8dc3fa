"""The audit trail: who changed which key of which tenant, when and from where."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from sqlalchemy import Select, select

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


@dataclass(frozen=True)
class EventPage:
    """One page of a tenant's events, newest first. ``number`` counts from 1."""

    events: list[AuditEvent]
    number: int
    per_page: int
    has_next: bool

    @property
    def first_position(self) -> int:
        return (self.number - 1) * self.per_page + 1


def events_query(tenant: Tenant, key: str | None = None, action: str | None = None) -> Select:
    """Build the query for the tenant's events, newest first, optionally only for one key or one action.

    Each combination of filters is served in order by an index that starts
    with tenant_id (see ``AuditEvent``).
    """
    query = select(AuditEvent).where(AuditEvent.tenant_id == tenant.id)
    if key is not None:
        query = query.where(AuditEvent.key == key)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    return query.order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())


def events_page(
    tenant: Tenant, number: int = 1, per_page: int = 50, key: str | None = None, action: str | None = None,
) -> EventPage:
    """Return one page of the tenant's events, newest first, with the filters of ``events_query``.

    One row more than a page is read to find out whether a next page exists,
    so no count query is needed.
    """
    query = events_query(tenant, key, action).offset((number - 1) * per_page).limit(per_page + 1)
    rows = list(db.session.scalars(query))
    return EventPage(events=rows[:per_page], number=number, per_page=per_page, has_next=len(rows) > per_page)
