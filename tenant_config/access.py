"""Looking up the tenant in a URL for the current user: 404 for outsiders, 403 for members who may not write."""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, g, request
from flask_login import current_user

from . import accounts
from .models import Tenant
from .registry import ADMIN


@dataclass(frozen=True)
class TenantAccess:
    tenant: Tenant
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def tenant_for_current_user(slug: str) -> TenantAccess:
    """Return the tenant and the user's role, or abort with 404.

    A tenant that does not exist and one that the user is not a member of give
    the same 404, so tenant slugs cannot be enumerated.
    """
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
    slug = (request.view_args or {}).get("slug")
    if slug is not None and current_user.is_authenticated:
        g.tenant_access = tenant_for_current_user(slug)
