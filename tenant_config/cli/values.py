"""``config``: list, set and unset a tenant's values from the command line."""

import sys

import click
from flask.cli import AppGroup

from .. import accounts, values
from ..audit import Actor
from ..models import Tenant
from ..registry import KEYS, UnknownKeyError, ValidationError, get_key
from ..secret import MASK

config_group = AppGroup("config", help="List, set and unset tenant config values.")

tenant_option = click.option("--tenant", "slug", required=True, help="Slug of the tenant.")


def _tenant(slug: str) -> Tenant:
    tenant = accounts.find_tenant(slug)
    if tenant is None:
        raise click.ClickException(f"tenant {slug!r} not found; see `tenants list`")
    return tenant


def _key_name(name: str) -> str:
    try:
        return get_key(name).name
    except UnknownKeyError as error:
        raise click.ClickException(str(error)) from None


def _read_value(name: str) -> str:
    key = KEYS[name]
    if sys.stdin.isatty():
        return click.prompt(key.label, hide_input=key.encrypted)

    # Read a little more than the maximum, so an over-long value is reported instead of cut.
    data = sys.stdin.buffer.read(key.max_length * 4 + 16)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{name}: the input is not valid UTF-8; pass the value as UTF-8 text") from None


@config_group.command("list")
@tenant_option
def list_command(slug: str):
    """List the tenant's values. Secrets show only whether they are set and still decrypt."""
    tenant = _tenant(slug)
    for view in values.describe(tenant):
        if view.key.encrypted and view.is_set and not view.decryptable:
            shown = "(cannot be decrypted, set it again)"
        elif view.key.encrypted:
            shown = MASK if view.is_set else "(not set)"
        elif view.is_set:
            shown = view.value
        else:
            shown = f"{view.value} (default)" if view.value is not None else "(not set)"
        changed = f"  changed {view.row.updated_at:%Y-%m-%d %H:%M} by {view.row.updated_by_label}" if view.row else ""
        click.echo(f"{view.key.name:<20} {shown}{changed}")
    click.echo(f"{sum(view.is_set for view in values.describe(tenant))} of {len(KEYS)} keys set for {tenant.slug}.")


@config_group.command("set")
@tenant_option
@click.argument("key_name", metavar="KEY")
def set_command(slug: str, key_name: str):
    """Set KEY for the tenant, reading the value from standard input."""
    tenant = _tenant(slug)
    name = _key_name(key_name)
    raw = _read_value(name)
    try:
        actions = values.set_value(tenant, name, raw, Actor.cli())
    except ValidationError as error:
        raise click.ClickException(f"{name}: {error}") from None

    click.echo(f"{name} for {tenant.slug}: {actions.pop(name, 'unchanged')}.")
    for other in actions:
        click.echo(f"{other} for {tenant.slug}: cleared, because it was saved for the previous {name}.")


@config_group.command("unset")
@tenant_option
@click.argument("key_name", metavar="KEY")
def unset_command(slug: str, key_name: str):
    """Remove the tenant's stored value of KEY."""
    tenant = _tenant(slug)
    name = _key_name(key_name)
    removed = values.clear_value(tenant, name, Actor.cli())
    click.echo(f"{name} for {tenant.slug}: {'removed' if removed else 'was not set'}.")
