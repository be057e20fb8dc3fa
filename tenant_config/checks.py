"""The "Send test" buttons: one real call per integration with the tenant's own credentials."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from flask import Blueprint, abort, current_app, flash, g, redirect, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import bindparam, select

from . import audit, integrations
from .access import require_admin
from .audit import Actor
from .crypto import DecryptionError
from .direct_query import DirectQuery, NamedRow
from .extensions import db, limiter
from .forms import PostOnlyForm
from .models import AuditEvent, Tenant
from .outbound import DestinationError, OutboundError, current_policy

logger = logging.getLogger(__name__)

bp = Blueprint("checks", __name__, url_prefix="/t/<slug>")

TEST_ACTION = "test"
# Recorded as the user of each secret that a test send resolves.
USED_BY = "send test"

# The newest test sends first. 50 is far more than one per integration, and bounds a tenant that tests often.
_events = AuditEvent.__table__
_RECENT_TESTS = DirectQuery(
    select(_events.c.key, _events.c.created_at, _events.c.outcome)
    .where(_events.c.tenant_id == bindparam("tenant_id"), _events.c.action == bindparam("action"))
    .order_by(_events.c.created_at.desc(), _events.c.id.desc())
    .limit(50)
)


def _test_stripe(tenant: Tenant) -> str:
    account = integrations.stripe_account(tenant, used_by=USED_BY)
    name = f" ({account.display_name})" if account.display_name else ""
    return f"reached Stripe account {account.account_id}{name} in {account.mode} mode"


def _test_slack(tenant: Tenant) -> str:
    integrations.notify_slack(tenant, f"Test message from Tenant Config for {tenant.name}.", used_by=USED_BY)
    return "posted a test message to the Slack channel"


def _test_smtp(tenant: Tenant) -> str:
    integrations.send_mail(
        tenant,
        to=current_user.email,
        subject="Test message from Tenant Config",
        body=f"This message was sent through the SMTP settings of {tenant.name} to check that they work.",
        used_by=USED_BY,
    )
    return f"sent a test message to {current_user.email}"


RUNNERS: dict[str, Callable[[Tenant], str]] = {"stripe": _test_stripe, "slack": _test_slack, "smtp": _test_smtp}


def _rate_limit() -> str:
    return current_app.config["TEST_SEND_RATE_LIMIT"]


def _rate_limit_key() -> str:
    # The user's id, not the session id, which changes at each login and would reset the limit.
    return f"test-send:{(request.view_args or {}).get('slug')}:{current_user.id}"


def _wait_out_failure(started: float) -> None:
    """Make every destination failure take the same fixed time, so its duration reveals nothing about the target."""
    remaining = current_policy().failure_seconds - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


@bp.post("/settings/<integration>/test")
@login_required
@limiter.limit(_rate_limit, key_func=_rate_limit_key)
def send_test(slug: str, integration: str):
    """Make one real call with the tenant's credentials and show the outcome. Stored values never change."""
    access = g.tenant_access
    require_admin(access)
    if integration not in RUNNERS:
        abort(404)
    if not PostOnlyForm().validate_on_submit():
        abort(400)

    label = integrations.INTEGRATIONS[integration]
    started = time.monotonic()
    try:
        summary = RUNNERS[integration](access.tenant)
        outcome = "ok"
        flash(f"{label} test succeeded: {summary}.", "success")
    except OutboundError as error:
        if isinstance(error, DestinationError):
            logger.warning("%s test for tenant %s: destination failed: %s", label, slug, error.reason)
            _wait_out_failure(started)
        else:
            logger.warning("%s test for tenant %s failed: %s (permanent: %s)", label, slug, error.message, error.permanent)
        outcome = f"failed: {error.message}"
        flash(f"{label} test failed: {error.message}.", "error")
    except DecryptionError as error:
        logger.error("%s test for tenant %s: %s", label, slug, error)
        outcome = "failed: a stored value cannot be decrypted"
        flash(f"{label} test failed: {error.key_name} cannot be decrypted; enter it again.", "error")

    audit.record(access.tenant, Actor.for_user(current_user, request.remote_addr), TEST_ACTION, integration, outcome)
    db.session.commit()
    return redirect(url_for("settings.show", slug=slug, _anchor=f"group-{integration}"))


def last_tests(tenant: Tenant) -> dict[str, NamedRow]:
    """Return the newest test send of each integration, as a row with the ``key``, ``created_at`` and ``outcome`` of its audit event."""
    events = _RECENT_TESTS.rows({"tenant_id": tenant.id, "action": TEST_ACTION})
    latest: dict[str, NamedRow] = {}
    for event in events:
        latest.setdefault(event.key, event)
    return latest
