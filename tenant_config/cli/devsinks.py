"""``dev-sinks``: local stand-ins for SMTP, Slack and Stripe, for development and demos."""

import threading

import click

from ..devsinks import LOOPBACK_HOSTS, DevSinks


@click.command("dev-sinks")
@click.option("--host", default="127.0.0.1", show_default=True, type=click.Choice(LOOPBACK_HOSTS),
              help="Loopback address to listen on.")
@click.option("--smtp-port", default=2525, show_default=True, help="Port of the SMTP sink (AUTH accepted without TLS).")
@click.option("--http-port", default=8090, show_default=True, help="Port of the Slack webhook and Stripe API sink.")
def dev_sinks_command(host: str, smtp_port: int, http_port: int):
    """Run a local SMTP server and Slack and Stripe stand-ins, printing what arrives, until Ctrl-C."""
    def output(line: str) -> None:
        click.echo(line)

    try:
        sinks = DevSinks(host, smtp_port, http_port, output=output).start()
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}: {error.strerror}; pick other ports with --smtp-port and --http-port") from None

    address = f"[{host}]" if ":" in host else host
    click.echo(f"SMTP sink:   {address}:{sinks.smtp_port} (set the tenant's SMTP host to {host}, port {sinks.smtp_port}, security none)")
    click.echo(f"Slack sink:  http://{address}:{sinks.http_port}/services/T000/B000/anything")
    click.echo(f"Stripe sink: http://{address}:{sinks.http_port} (start the app with STRIPE_API_BASE set to this)")
    click.echo("Start the app with OUTBOUND_ALLOW_PRIVATE=1 and "
               f"SLACK_WEBHOOK_HOSTS={address}:{sinks.http_port} to reach these sinks. Press Ctrl-C to stop.")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        click.echo("Stopping the development sinks.")
    finally:
        sinks.stop()
