"""The backend service: outbound calls made with one tenant's own credentials.

Each function resolves the tenant's values at the moment of the call and
passes them straight to the client. Nothing here caches a decrypted value,
and no platform-wide credential exists to fall back on. ``used_by`` names the
caller, such as a job, on the settings page's "last used" line of each secret.
"""

from __future__ import annotations

from sqlalchemy import select

from .extensions import db
from .models import ConfigValue, Tenant
from .outbound import NotConfiguredError, current_policy
from .outbound import slack, smtp, stripe_api
from .resolver import resolve

INTEGRATIONS = {"stripe": "Stripe", "slack": "Slack", "smtp": "SMTP"}

# The caller recorded for a secret's use when a caller does not name itself.
DEFAULT_USED_BY = "backend"

# Keys without which an integration cannot make a call. SMTP credentials are
# optional because some relays accept mail without AUTH.
REQUIRED_KEYS = {
    "stripe": ("stripe.secret_key",),
    "slack": ("slack.webhook_url",),
    "smtp": ("smtp.host", "smtp.from_address"),
}


def stored_keys(tenant: Tenant) -> set[str]:
    return set(db.session.scalars(select(ConfigValue.key).where(ConfigValue.tenant_id == tenant.id)))


def missing_keys(tenant: Tenant, integration: str, stored: set[str] | None = None) -> list[str]:
    """List the required keys of an integration that the tenant has not set."""
    stored = stored_keys(tenant) if stored is None else stored
    missing = [name for name in REQUIRED_KEYS[integration] if name not in stored]
    if integration == "smtp" and "smtp.password" in stored and "smtp.username" not in stored:
        missing.append("smtp.username")
    return missing


def is_configured(tenant: Tenant, integration: str) -> bool:
    return not missing_keys(tenant, integration)


def _require(tenant: Tenant, integration: str) -> None:
    missing = missing_keys(tenant, integration)
    if missing:
        raise NotConfiguredError(integration, missing)


def notify_slack(tenant: Tenant, text: str, *, used_by: str = DEFAULT_USED_BY) -> None:
    """Post ``text`` to the tenant's own Slack webhook. Raises OutboundError."""
    _require(tenant, "slack")
    webhook = resolve(tenant, "slack.webhook_url", used_by=used_by)
    slack.post_message(webhook.reveal(), text, current_policy(), tenant=tenant.slug)


def smtp_settings(tenant: Tenant, *, used_by: str = DEFAULT_USED_BY) -> smtp.SmtpSettings:
    """Resolve the tenant's SMTP settings, with the password still wrapped."""
    _require(tenant, "smtp")
    stored = stored_keys(tenant)
    return smtp.SmtpSettings(
        host=resolve(tenant, "smtp.host"),
        port=int(resolve(tenant, "smtp.port")),
        security=resolve(tenant, "smtp.security"),
        from_address=resolve(tenant, "smtp.from_address"),
        username=resolve(tenant, "smtp.username") if "smtp.username" in stored else None,
        password=resolve(tenant, "smtp.password", used_by=used_by) if "smtp.password" in stored else None,
    )


def send_mail(tenant: Tenant, to: str, subject: str, body: str, *, used_by: str = DEFAULT_USED_BY) -> None:
    """Send one message through the tenant's own SMTP server. Raises OutboundError."""
    smtp.send_mail(smtp_settings(tenant, used_by=used_by), to, subject, body, current_policy(), tenant=tenant.slug)


def stripe_account(tenant: Tenant, *, used_by: str = DEFAULT_USED_BY) -> stripe_api.AccountSummary:
    """Retrieve the Stripe account that the tenant's key belongs to. Raises OutboundError."""
    _require(tenant, "stripe")
    return stripe_api.fetch_account(resolve(tenant, "stripe.secret_key", used_by=used_by), current_policy())


def stripe_balance(tenant: Tenant, *, used_by: str = DEFAULT_USED_BY) -> stripe_api.Balance:
    """Retrieve the tenant's Stripe balance with its own key. Raises OutboundError."""
    _require(tenant, "stripe")
    return stripe_api.fetch_balance(resolve(tenant, "stripe.secret_key", used_by=used_by), current_policy())
