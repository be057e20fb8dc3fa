"""``keys``: master key commands."""

import click
from flask.cli import AppGroup

from ..crypto import generate_master_key

keys_group = AppGroup("keys", help="Manage master encryption keys.")


@keys_group.command("generate")
def generate_command():
    """Print a new random master key (base64 of 32 bytes) for CONFIG_ENCRYPTION_KEY."""
    click.echo(generate_master_key())
