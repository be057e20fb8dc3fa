"""``keys``: master key and tenant data key commands."""

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from ..crypto import generate_master_key
from ..keystatus import KeyStatus, key_status

keys_group = AppGroup("keys", help="Manage master keys and tenant data keys.")


@keys_group.command("generate")
def generate_command():
    """Print a new random master key (base64 of 32 bytes) for CONFIG_ENCRYPTION_KEY."""
    click.echo(generate_master_key())


@keys_group.command("status")
def status_command():
    """Show the configured master keys, the data keys under each, and the values under each data key version.

    Exits with status 1 when a stored data key is wrapped under a master key that is not configured.
    """
    status = key_status(current_app.config["KEYRING"])
    _echo_status(status)

    missing = status.unconfigured_ids
    if missing:
        affected = sum(status.data_keys_by_master_id[key_id] for key_id in missing)
        click.echo(
            f"{affected} data key(s) are wrapped under master key ids that are not configured: {', '.join(missing)}. "
            "Their tenants' secrets cannot be decrypted. Add those keys to CONFIG_ENCRYPTION_PREVIOUS_KEYS.",
            err=True,
        )
        sys.exit(1)

    if status.data_keys_not_current:
        click.echo(f"{status.data_keys_not_current} data key(s) use a previous master key. Run `keys rotate`.")
    elif status.previous_ids:
        click.echo("Every data key uses the current master key. This database no longer needs the previous keys.")
    else:
        click.echo("Every data key uses the current master key.")


def _echo_status(status: KeyStatus) -> None:
    click.echo("Configured master keys:")
    click.echo(f"  {status.current_id}  current (CONFIG_ENCRYPTION_KEY)")
    for key_id in status.previous_ids:
        click.echo(f"  {key_id}  previous (CONFIG_ENCRYPTION_PREVIOUS_KEYS)")

    click.echo("Tenant data keys by master key:")
    roles = {status.current_id: "current", **{key_id: "previous" for key_id in status.previous_ids}}
    for key_id in [status.current_id, *status.previous_ids, *status.unconfigured_ids]:
        count = status.data_keys_by_master_id.get(key_id, 0)
        click.echo(f"  {key_id}  {count:>8}  {roles.get(key_id, 'NOT CONFIGURED')}")

    click.echo("Encrypted values by data key version:")
    for version, count in status.values_by_version.items():
        click.echo(f"  {'v' + str(version):<16}  {count:>8}")
    if not status.values_by_version:
        click.echo("  (none)")
    click.echo(f"Plain values: {status.plain_values}")
