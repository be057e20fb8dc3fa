"""Tenants, users and memberships: creating them, deleting tenants, and checking passwords."""

from __future__ import annotations

import logging
import re
import secrets
from functools import cache

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import bindparam, delete, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from . import datakeys
from .extensions import db
from .models import AuditEvent, ConfigValue, Membership, Tenant, TenantDataKey, User
from .registry import ROLES

logger = logging.getLogger(__name__)

SLUG_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
MIN_PASSWORD_LENGTH = 10



class AccountError(ValueError):
    """Invalid input for a tenant, user or membership."""


def normalize_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        raise AccountError(f"invalid email address {email.strip()!r}: expected an address such as admin@example.com") from None


@cache
def dummy_hash(method: str) -> str:
    """Return a hash of a random password, made with the configured method.

    It is checked when an email is unknown, so that a failed login costs the
    same whether or not the account exists.
    """
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def find_tenant(slug: str) -> Tenant | None:
    # A value that cannot be a slug, a NUL byte included, is never looked up.
    if not SLUG_PATTERN.fullmatch(slug):
        return None
    return db.session.scalars(select(Tenant).where(Tenant.slug == slug)).first()


def find_user(email: str) -> User | None:
    address = email.strip().lower()
    if not address or "\x00" in address or len(address) > 254:
        return None
    return db.session.scalars(select(User).where(User.email == address)).first()


def create_tenant(slug: str, name: str) -> Tenant:
    """Create a tenant together with its first data key."""
    if not SLUG_PATTERN.fullmatch(slug):
        raise AccountError(
            f"invalid slug {slug!r}: use 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen"
        )
    if not name.strip():
        raise AccountError("the tenant name must not be empty")
    if find_tenant(slug) is not None:
        raise AccountError(f"tenant {slug!r} already exists")

    tenant = Tenant(slug=slug, name=name.strip())
    db.session.add(tenant)
    db.session.flush()
    datakeys.create_data_key(tenant)
    db.session.commit()
    logger.info("Created tenant %s", slug)
    return tenant


# Tables with a tenant_id, in the order in which a tenant's rows are deleted:
# values before the data keys that they reference.
TENANT_TABLES = (ConfigValue, TenantDataKey, Membership, AuditEvent)


def count_tenant_rows(tenant: Tenant) -> dict[str, int]:
    """Count the tenant's rows in each table that ``delete_tenant`` empties, by table name."""
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant.id)) or 0
        for model in TENANT_TABLES
    }


def delete_tenant(tenant: Tenant) -> dict[str, int]:
    """Delete the tenant with its values, data keys, memberships and audit events, in one transaction.

    Returns the number of rows deleted from each table, by table name.
    """
    tenant_id, slug = tenant.id, tenant.slug
    deleted = {}
    for model in TENANT_TABLES:
        deleted[model.__tablename__] = db.session.execute(delete(model).where(model.tenant_id == tenant_id)).rowcount
    db.session.execute(delete(Tenant).where(Tenant.id == tenant_id))
    db.session.commit()

    logger.info("Deleted tenant %s with %s", slug, ", ".join(f"{count} {table} rows" for table, count in deleted.items()))
    return deleted


def create_user(email: str, password: str, is_operator: bool = False) -> User:
    address = normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if find_user(address) is not None:
        raise AccountError(f"user {address!r} already exists")

    password_hash = generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])
    user = User(email=address, password_hash=password_hash, is_operator=is_operator)
    db.session.add(user)
    db.session.commit()
    logger.info("Created user %s (operator: %s)", address, is_operator)
    return user


def grant(user: User, tenant: Tenant, role: str) -> Membership:
    """Give a user a role in a tenant, replacing any role they had there."""
    if role not in ROLES:
        raise AccountError(f"invalid role {role!r}: expected one of {', '.join(ROLES)}")

    membership = membership_of(user, tenant)
    if membership is None:
        membership = Membership(user_id=user.id, tenant_id=tenant.id, role=role)
        db.session.add(membership)
    else:
        membership.role = role
    db.session.commit()
    logger.info("Granted %s the role %s in tenant %s", user.email, role, tenant.slug)
    return membership


def membership_of(user: User, tenant: Tenant) -> Membership | None:
    return db.session.scalars(
        select(Membership).where(Membership.user_id == user.id, Membership.tenant_id == tenant.id)
    ).first()


# Built once, because building this select took as long as running it on SQLite.
_TENANT_AND_ROLE = (
    select(Tenant, Membership.role).join(Membership, Membership.tenant_id == Tenant.id)
    .where(Tenant.slug == bindparam("slug"), Membership.user_id == bindparam("user_id"))
)


def tenant_and_role(user: User, slug: str) -> tuple[Tenant, str] | None:
    """Return the tenant with this slug and the user's role in it, or None when either is missing, in one query."""
    if not SLUG_PATTERN.fullmatch(slug):
        return None
    row = db.session.execute(_TENANT_AND_ROLE, {"slug": slug, "user_id": user.id}).first()
    return None if row is None else (row[0], row[1])


def tenants_of(user: User) -> list[tuple[Tenant, str]]:
    rows = db.session.execute(
        select(Tenant, Membership.role).join(Membership, Membership.tenant_id == Tenant.id)
        .where(Membership.user_id == user.id).order_by(Tenant.slug)
    )
    return [(tenant, role) for tenant, role in rows]


def authenticate(email: str, password: str) -> User | None:
    """Return the user whose email and password match, or None."""
    user = find_user(email)
    if user is None:
        check_password_hash(dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user
