"""Looking up the tenant in a URL for the current user: 404 for outsiders, 403 for members who may not write."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g, request
from flask_login import current_user
from sqlalchemy import and_, bindparam, select

from . import accounts
from .extensions import db
from .models import Membership, Tenant, User
from .registry import ADMIN

# The user with the tenant that the URL names and the user's role in it, for one query per request
# instead of two. The membership is joined on both ids, so a user who is not a member gets a NULL
# role, and a slug that names no tenant gets a NULL tenant.
_USER_WITH_TENANT = (
    select(User, Tenant, Membership.role)
    .select_from(User)
    .outerjoin(Tenant, Tenant.slug == bindparam("slug"))
    .outerjoin(Membership, and_(Membership.user_id == User.id, Membership.tenant_id == Tenant.id))
    .where(User.id == bindparam("user_id"))
)


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def url_slug() -> str | None:
    """Return the ``<slug>`` of the request's URL, or None for a URL without one."""
    return (request.view_args or {}).get("slug")


def load_user_with_tenant(user_id: int, slug: str) -> User | None:
    """Load a user and, for ``tenant_for_current_user``, the tenant that ``slug`` names with the user's role in it."""
    if not accounts.SLUG_PATTERN.fullmatch(slug):
        return db.session.get(User, user_id)
    row = db.session.execute(_USER_WITH_TENANT, {"user_id": user_id, "slug": slug}).first()
    if row is None:
        return None
    user, tenant, role = row
    g.loaded_tenant = (user.id, slug, (tenant, role) if role is not None else None)
    return user


def tenant_for_current_user(slug: str) -> TenantAccess:
    """Return the tenant and the user's role, or abort with 404.

    A tenant that does not exist and one that the user is not a member of give
    the same 404, so tenant slugs cannot be enumerated. The tenant comes from
    the user's own query when ``load_user_with_tenant`` loaded it for this slug.
    """
    loaded = g.pop("loaded_tenant", None)
    if loaded is not None and loaded[:2] == (current_user.id, slug):
        found = loaded[2]
    else:
        found = accounts.tenant_and_role(current_user, slug)
    if found is None:
        abort(404)
    tenant, role = found
    return TenantAccess(tenant=tenant, role=role)


def require_admin(access: TenantAccess) -> None:
    if not access.is_admin:
        abort(403)


def load_tenant_access() -> None:
    """Resolve ``<slug>`` in the URL before any other check, CSRF included.

    Registered as the app's first ``before_request`` hook, so that a user of
    another tenant gets the same 404 for GET and for POST, with or without a
    CSRF token. Anonymous requests pass through to ``login_required``.
    """
    slug = url_slug()
    if slug is not None and current_user.is_authenticated:
        g.tenant_access = tenant_for_current_user(slug)
