"""``jobs``: backend jobs that call out with each tenant's own credentials.

With ``--all`` a job goes through every tenant, skips those that have not
configured the integration, and carries on after a failure. Each prints one
line per tenant and a summary, and exits with status 1 if any tenant failed.
"""

import logging
import sys
from collections.abc import Callable

import click
from flask.cli import AppGroup
from sqlalchemy import select

from .. import accounts, integrations
from ..crypto import DecryptionError
from ..extensions import db
from ..models import Tenant
from ..outbound import OutboundError

logger = logging.getLogger(__name__)

jobs_group = AppGroup("jobs", help="Run backend jobs with each tenant's own Stripe, Slack and SMTP credentials.")


def _tenants(slug: str | None, all_tenants: bool) -> list[Tenant]:
    if bool(slug) == all_tenants:
        raise click.UsageError("give exactly one of --tenant SLUG or --all")
    if all_tenants:
        return list(db.session.scalars(select(Tenant).order_by(Tenant.slug)))

    tenant = accounts.find_tenant(slug)
    if tenant is None:
        raise click.ClickException(f"tenant {slug!r} not found; see `tenants list`")
    return [tenant]


def _run(job: str, integration: str, tenants: list[Tenant], skip_unconfigured: bool, call: Callable[[Tenant], str]) -> None:
    succeeded = failed = skipped = 0
    failed_slugs = []
    for tenant in tenants:
        if skip_unconfigured and not integrations.is_configured(tenant, integration):
            click.echo(f"{tenant.slug}: skipped, {integration} is not configured")
            skipped += 1
            continue

        try:
            click.echo(f"{tenant.slug}: ok, {call(tenant)}")
            succeeded += 1
        except OutboundError as error:
            kind = "permanent" if error.permanent else "temporary"
            click.echo(f"{tenant.slug}: failed ({kind}), {error.message}")
            logger.warning("Job %s failed for tenant %s: %s", job, tenant.slug, error)
            failed += 1
            failed_slugs.append(tenant.slug)
        except DecryptionError as error:
            click.echo(f"{tenant.slug}: failed, {error.key_name} cannot be decrypted; an admin must enter it again")
            logger.error("Job %s failed for tenant %s: %s", job, tenant.slug, error)
            failed += 1
            failed_slugs.append(tenant.slug)

    click.echo(f"{job}: {succeeded} succeeded, {failed} failed, {skipped} skipped.")
    if failed:
        sys.exit(1)


tenant_option = click.option("--tenant", "slug", help="Slug of one tenant.")
all_option = click.option("--all", "all_tenants", is_flag=True, help="Every tenant that has configured the integration.")


@jobs_group.command("slack-notify")
@tenant_option
@all_option
@click.argument("text")
def slack_notify_command(slug: str | None, all_tenants: bool, text: str):
    """Post TEXT to each tenant's own Slack webhook."""
    def call(tenant: Tenant) -> str:
        integrations.notify_slack(tenant, text, used_by="slack-notify")
        return "message posted"

    _run("slack-notify", "slack", _tenants(slug, all_tenants), all_tenants, call)


@jobs_group.command("send-mail")
@click.option("--tenant", "slug", required=True, help="Slug of the tenant whose SMTP server sends the mail.")
@click.option("--to", "to", required=True, help="Recipient address.")
@click.option("--subject", required=True, help="Subject line.")
@click.option("--body", required=True, help="Plain-text body.")
def send_mail_command(slug: str, to: str, subject: str, body: str):
    """Send one mail through the tenant's own SMTP server."""
    try:
        recipient = accounts.normalize_email(to)
    except accounts.AccountError:
        raise click.BadParameter(f"{to!r} is not an email address", param_hint="--to") from None

    def call(tenant: Tenant) -> str:
        integrations.send_mail(tenant, recipient, subject, body, used_by="send-mail")
        return f"mail sent to {recipient}"

    _run("send-mail", "smtp", _tenants(slug, False), False, call)


@jobs_group.command("stripe-balance")
@tenant_option
@all_option
def stripe_balance_command(slug: str | None, all_tenants: bool):
    """Print each tenant's available Stripe balance, read with its own key."""
    def call(tenant: Tenant) -> str:
        balance = integrations.stripe_balance(tenant, used_by="stripe-balance")
        return f"{balance.mode} mode, available {balance.describe()}"

    _run("stripe-balance", "stripe", _tenants(slug, all_tenants), all_tenants, call)
