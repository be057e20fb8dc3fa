"""``keys``: master key and tenant data key commands."""

import sys

import click
from flask import current_app
from flask.cli import AppGroup

from .. import rotation
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


@keys_group.command("rotate")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=rotation.DEFAULT_BATCH_SIZE, show_default=True,
    help="Number of data keys rewrapped in each transaction.",
)
@click.option(
    "--pause", "pause_seconds", type=click.FloatRange(min=0), default=0.0, show_default=True,
    help="Seconds to wait between batches, to limit the load on a busy database.",
)
def rotate_command(batch_size: int, pause_seconds: float):
    """Rewrap every tenant data key under the current master key, without re-encrypting values.

    Safe to interrupt and run again. Exits with status 1 when a data key cannot be rewrapped.
    """
    keyring = current_app.config["KEYRING"]
    total = rotation.count_keys_to_rewrap(keyring)
    click.echo(f"Rewrapping {total} data key(s) under master key {keyring.current.id}.")

    with click.progressbar(length=total, label="Rewrapping data keys") as bar:
        result = rotation.rotate_master_key(keyring, batch_size, pause_seconds, on_batch=bar.update)

    for failure in result.failures:
        click.echo(f"Failed: tenant {failure.tenant_slug}, data key v{failure.version}: {failure.reason}.", err=True)
    click.echo(
        f"Rewrapped: {result.rewrapped}, already current: {result.already_current}, failed: {len(result.failures)}."
    )
    if result.changed_concurrently:
        click.echo(f"{result.changed_concurrently} data key(s) changed during the run. Run `keys status` to check them.")

    if result.failures:
        click.echo(
            f"Tenants not rotated: {', '.join(result.failed_tenants)}. Fix the reasons above, for example by adding "
            "a missing master key to CONFIG_ENCRYPTION_PREVIOUS_KEYS, and run `keys rotate` again.",
            err=True,
        )
        sys.exit(1)
