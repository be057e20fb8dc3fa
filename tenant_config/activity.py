"""The activity page: a tenant's audit events, newest first, in pages, filtered by key and by action."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, g, render_template, request
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from . import audit, integrations, values
from .access import require_admin
from .checks import TEST_ACTION
from .registry import KEYS
from .tenant_rotation import ROTATE_ACTION

bp = Blueprint("activity", __name__, url_prefix="/t/<slug>")

PER_PAGE = 50
# Deeper pages would only make the database skip more rows. Narrow the filters instead.
MAX_PAGE = 10_000
# A rejected filter value is echoed back only up to this many characters.
MAX_ECHOED = 40

# Filter choices for an event's ``key`` column: the registry keys, and the integrations for test sends.
KEY_CHOICES: dict[str, str] = {
    **{name: key.label for name, key in KEYS.items()},
    **{name: f"{label} test" for name, label in integrations.INTEGRATIONS.items()},
}
ACTION_CHOICES: dict[str, str] = {
    values.SET: "Set",
    values.REPLACE: "Replace",
    values.CLEAR: "Clear",
    TEST_ACTION: "Send test",
    ROTATE_ACTION: "Data key rotation",
}


@dataclass
class Filters:
    """The activity filters from the query string. Values that were rejected are None, with a message each."""

    key: str | None = None
    action: str | None = None
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)

    def query(self, page: int | None = None) -> dict[str, str | int]:
        """Return the query string arguments for ``page`` (default: this one) with the same filters."""
        arguments: dict[str, str | int] = {"page": page or self.page}
        if self.key is not None:
            arguments["key"] = self.key
        if self.action is not None:
            arguments["action"] = self.action
        return arguments


def _echo(value: str) -> str:
    return value if len(value) <= MAX_ECHOED else value[:MAX_ECHOED] + "…"


def _read_page(raw: str) -> int | None:
    if not raw.isascii() or not raw.isdigit():
        return None
    number = int(raw)
    return number if 1 <= number <= MAX_PAGE else None


def read_filters(arguments: MultiDict) -> Filters:
    """Validate the filters. An unknown value is ignored and gets a message that names it, so no query string causes an error page."""
    filters = Filters()

    key = arguments.get("key", "")
    if key in KEY_CHOICES:
        filters.key = key
    elif key:
        filters.errors["key"] = f"Unknown setting “{_echo(key)}”. Showing every setting."

    action = arguments.get("action", "")
    if action in ACTION_CHOICES:
        filters.action = action
    elif action:
        filters.errors["action"] = f"Unknown action “{_echo(action)}”. Showing every action."

    raw_page = arguments.get("page", "")
    if raw_page:
        page = _read_page(raw_page)
        if page is None:
            filters.errors["page"] = f"Page must be a whole number from 1 to {MAX_PAGE:,}. Showing page 1."
        else:
            filters.page = page
    return filters


@bp.get("/activity")
@login_required
def index(slug: str):
    """List the tenant's audit events, newest first, one page at a time. Admins only."""
    access = g.tenant_access
    require_admin(access)

    filters = read_filters(request.args)
    page = audit.events_page(access.tenant, filters.page, PER_PAGE, key=filters.key, action=filters.action)
    return render_template(
        "activity/index.html", access=access, tenant=access.tenant, page=page, filters=filters,
        key_choices=KEY_CHOICES, action_choices=ACTION_CHOICES,
    )
