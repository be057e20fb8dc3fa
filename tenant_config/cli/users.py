"""``users``: create users and grant them roles in tenants."""

import sys

import click
from flask.cli import AppGroup

from .. import accounts
from ..registry import ROLES

users_group = AppGroup("users", help="Create users and grant them roles in tenants.")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_group.command("create")
@click.argument("email")
@click.option("--operator", is_flag=True, help="Make the user an operator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def create_command(email: str, operator: bool, password_stdin: bool):
    """Create a user who logs in with EMAIL. The password is prompted for unless --password-stdin is given."""
    password = _read_password(password_stdin)
    try:
        user = accounts.create_user(email, password, is_operator=operator)
    except accounts.AccountError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Created {'operator' if user.is_operator else 'user'} {user.email}.")


@users_group.command("grant")
@click.argument("email")
@click.argument("slug")
@click.option("--role", type=click.Choice(ROLES), required=True, help="Role in the tenant.")
def grant_command(email: str, slug: str, role: str):
    """Give the user EMAIL a role in the tenant SLUG."""
    user = accounts.find_user(email)
    if user is None:
        raise click.ClickException(f"user {email!r} not found; create it with `users create`")
    tenant = accounts.find_tenant(slug)
    if tenant is None:
        raise click.ClickException(f"tenant {slug!r} not found; see `tenants list`")

    accounts.grant(user, tenant, role)
    click.echo(f"Granted {user.email} the role {role} in {tenant.slug}.")
