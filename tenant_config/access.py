"""Looking up the tenant in a URL for the current user: 404 for outsiders, 403 for members who may not write."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g, request
from flask_login import current_user
from sqlalchemy import and_, bindparam, select

from . import accounts
from .direct_query import DirectQuery
from .identity import SessionUser, TenantRef
from .models import Membership, Tenant, User
from .registry import ADMIN

_user = User.__table__
_tenant = Tenant.__table__
_membership = Membership.__table__
_USER_COLUMNS = (_user.c.id, _user.c.email, _user.c.session_token)

_USER = DirectQuery(select(*_USER_COLUMNS).where(_user.c.id == bindparam("user_id")))

# The user with the tenant that the URL names and the user's role in it, for one query per request
# instead of two. The membership is joined on both ids, so a user who is not a member gets a NULL
# role, and a slug that names no tenant gets a NULL tenant.
_USER_WITH_TENANT = DirectQuery(
    select(*_USER_COLUMNS, _tenant.c.id.label("tenant_id"), _tenant.c.slug, _tenant.c.name, _membership.c.role)
    .select_from(_user)
    .outerjoin(_tenant, _tenant.c.slug == bindparam("slug"))
    .outerjoin(_membership, and_(_membership.c.user_id == _user.c.id, _membership.c.tenant_id == _tenant.c.id))
    .where(_user.c.id == bindparam("user_id"))
)


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant | TenantRef
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def url_slug() -> str | None:
    """Return the ``<slug>`` of the request's URL, or None for a URL without one."""
    return (request.view_args or {}).get("slug")


def load_session_user(user_id: int, slug: str | None) -> SessionUser | None:
    """Load a user and, for ``tenant_for_current_user``, the tenant that ``slug`` names with the user's role in it."""
    if slug is None or not accounts.SLUG_PATTERN.fullmatch(slug):
        row = _USER.first({"user_id": user_id})
        return None if row is None else SessionUser(*row)

    rows = _USER_WITH_TENANT.rows({"user_id": user_id, "slug": slug})
    if not rows:
        return None
    row = rows[0]
    found = (TenantRef(row.tenant_id, row.slug, row.name), row.role) if row.role is not None else None
    g.loaded_tenant = (row.id, slug, found)
    return SessionUser(row.id, row.email, row.session_token)


def tenant_for_current_user(slug: str) -> TenantAccess:
    """Return the tenant and the user's role, or abort with 404.

    A tenant that does not exist and one that the user is not a member of give
    the same 404, so tenant slugs cannot be enumerated. The tenant comes from
    the user's own query when ``load_session_user`` loaded it for this slug.
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
