"""``tenants``: create and list tenants."""

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from .. import accounts
from ..extensions import db
from ..models import ConfigValue, Membership, Tenant

tenants_group = AppGroup("tenants", help="Create and list tenants.")


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
