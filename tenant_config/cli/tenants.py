"""``tenants``: create, list and delete tenants."""

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from .. import accounts
from ..extensions import db
from ..models import ConfigValue, Membership, Tenant

tenants_group = AppGroup("tenants", help="Create, list and delete tenants.")


@tenants_group.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Display name of the tenant.")
def create_command(slug: str, name: str):
    """Create a tenant with the URL name SLUG, and its data key."""
    try:
        tenant = accounts.create_tenant(slug, name)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created tenant {tenant.slug} ({tenant.name}).")


@tenants_group.command("list")
def list_command():
    """List tenants with their member and value counts."""
    members = select(func.count()).where(Membership.tenant_id == Tenant.id).scalar_subquery()
    stored = select(func.count()).where(ConfigValue.tenant_id == Tenant.id).scalar_subquery()
    rows = db.session.execute(select(Tenant.slug, Tenant.name, members, stored).order_by(Tenant.slug)).all()

    for slug, name, member_count, value_count in rows:
        click.echo(f"{slug:<24} {name:<32} members: {member_count:<4} values: {value_count}")
    click.echo(f"{len(rows)} tenant(s).")


@tenants_group.command("delete")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Delete without asking for confirmation, for scripts.")
def delete_command(slug: str, yes: bool):
    """Delete the tenant SLUG with its data keys, values, memberships and audit events."""
    tenant = accounts.find_tenant(slug)
    if tenant is None:
        raise click.ClickException(f"tenant {slug!r} not found; see `tenants list`")

    if not yes:
        counts = accounts.count_tenant_rows(tenant)
        click.confirm(
            f"Delete tenant {tenant.slug} ({tenant.name}) with its {counts['config_value']} value(s) and "
            f"{counts['tenant_data_key']} data key(s)? This cannot be undone.",
            abort=True,
        )

    deleted = accounts.delete_tenant(tenant)
    click.echo(
        f"Deleted tenant {slug}: {deleted['config_value']} value(s), {deleted['tenant_data_key']} data key(s), "
        f"{deleted['membership']} membership(s), {deleted['audit_event']} audit event(s)."
    )
