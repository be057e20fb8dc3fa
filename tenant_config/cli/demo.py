"""``demo``: two demo tenants with an admin and a member each."""

import click
from flask.cli import with_appcontext

from .. import accounts

DEMO_TENANTS = (("acme", "Acme Corporation"), ("globex", "Globex Corporation"))
DEMO_PASSWORD = "demo-password"


def create_demo_data() -> list[str]:
    """Create the demo tenants and users that are missing. Returns the emails created."""
    created = []
    for slug, name in DEMO_TENANTS:
        tenant = accounts.find_tenant(slug) or accounts.create_tenant(slug, name)
        for role in ("admin", "member"):
            email = f"{role}@{slug}.example"
            user = accounts.find_user(email)
            if user is None:
                user = accounts.create_user(email, DEMO_PASSWORD)
                created.append(email)
            if accounts.membership_of(user, tenant) is None:
                accounts.grant(user, tenant, role)
    return created


@click.command("demo")
@with_appcontext
def demo_command():
    """Create the demo tenants acme and globex, each with an admin and a member, if missing."""
    created = create_demo_data()
    click.echo("Demo logins (password: %s):" % DEMO_PASSWORD)
    for slug, _ in DEMO_TENANTS:
        click.echo(f"  admin@{slug}.example (admin of {slug}), member@{slug}.example (member of {slug})")
    click.echo(f"Created {len(created)} demo user(s); open http://127.0.0.1:5000/login")
