"""``keys``: master key and tenant data key commands."""

import sys

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from .. import accounts, rotation, tenant_rotation, verification
from ..audit import Actor
from ..crypto import generate_master_key
from ..extensions import db
from ..keystatus import KeyStatus, has_schema, key_status
from ..models import Tenant
from ..tenant_rotation import TenantRotationResult

keys_group = AppGroup("keys", help="Manage master keys and tenant data keys.")


def _require_schema() -> None:
    if not has_schema():
        raise click.ClickException("the database has no tables yet; run `flask --app app db upgrade` first")


@keys_group.command("generate")
def generate_command():
    """Print a new random master key (base64 of 32 bytes) for CONFIG_ENCRYPTION_KEY."""
    click.echo(generate_master_key())


@keys_group.command("status")
def status_command():
    """Show the configured master keys, the data keys under each, and the values under each data key version.

    Exits with status 1 when a stored data key is wrapped under a master key that is not configured.
    """
    _require_schema()
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
        click.echo("Every data key uses the current master key. No data key in this database uses the previous keys any more.")
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
    _require_schema()
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


@keys_group.command("rotate-tenant")
@click.argument("slug", required=False)
@click.option("--all", "all_tenants", is_flag=True, help="Rotate the data key of every tenant.")
def rotate_tenant_command(slug: str | None, all_tenants: bool):
    """Give the tenant SLUG (or every tenant, with --all) a new data key and re-encrypt its values under it.

    Saves made meanwhile are kept. Exits with status 1 when a value could not be moved.
    """
    _require_schema()
    tenants = _tenants_to_rotate(slug, all_tenants)
    actor = Actor.cli()

    results: list[TenantRotationResult] = []
    with click.progressbar(tenants, label="Rotating tenant data keys", hidden=len(tenants) < 2) as bar:
        for tenant in bar:
            results.append(tenant_rotation.rotate_tenant_key(tenant, actor))

    for result in results:
        _echo_tenant_rotation(result, show_success=not all_tenants)
    failed = [result.slug for result in results if not result.ok]
    moved = sum(result.moved for result in results)
    click.echo(f"Rotated: {len(results) - len(failed)} tenant(s), values re-encrypted: {moved}, failed: {len(failed)}.")

    if failed:
        click.echo(f"Tenants not fully rotated: {', '.join(failed)}. Fix the reasons above and run `keys rotate-tenant` again.", err=True)
        sys.exit(1)


def _tenants_to_rotate(slug: str | None, all_tenants: bool) -> list[Tenant]:
    if slug and all_tenants:
        raise click.UsageError("Give either a tenant SLUG or --all, not both.")
    if all_tenants:
        return list(db.session.scalars(select(Tenant).order_by(Tenant.slug)))
    if not slug:
        raise click.UsageError("Give a tenant SLUG, or --all to rotate every tenant.")

    tenant = accounts.find_tenant(slug)
    if tenant is None:
        raise click.ClickException(f"tenant {slug!r} not found; see `tenants list`")
    return [tenant]


def _echo_tenant_rotation(result: TenantRotationResult, show_success: bool) -> None:
    for failure in result.failures:
        click.echo(f"Failed: tenant {result.slug}, {failure.key_name}: {failure.reason}.", err=True)
    if result.error:
        click.echo(f"Failed: tenant {result.slug}: {result.error}.", err=True)

    if not result.ok:
        click.echo(f"{result.slug}: data key v{result.new_version}, {result.moved} value(s) re-encrypted, older data keys kept.")
    elif show_success:
        click.echo(f"{result.slug}: data key v{result.new_version}, {result.moved} value(s) re-encrypted, older data keys deleted.")


@keys_group.command("verify")
def verify_command():
    """Decrypt every stored data key and value in memory, without printing them, and report each failure.

    Exits with status 1 when anything cannot be decrypted.
    """
    _require_schema()
    keyring = current_app.config["KEYRING"]
    total = verification.count_values()
    with click.progressbar(length=total, label="Verifying values") as bar:
        result = verification.verify_all(keyring, on_value=lambda: bar.update(1))

    for failure in result.failures:
        click.echo(f"Failed: tenant {failure.tenant_slug}, {failure.item}: {failure.reason}.", err=True)
    click.echo(f"Verified {result.data_keys} data key(s) and {result.values} value(s): {len(result.failures)} failed.")

    if result.failures:
        click.echo(
            "Enter each failed value again on the settings page or with `config set`. A data key under a master key "
            "that is not configured needs that key in CONFIG_ENCRYPTION_PREVIOUS_KEYS. A damaged data key needs "
            "`keys rotate-tenant SLUG` before its values are entered again.",
            err=True,
        )
        sys.exit(1)
