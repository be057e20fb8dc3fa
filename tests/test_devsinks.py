"""The development sinks receive the demo's mail, webhooks and Stripe calls, with credentials masked."""

import pytest

from tenant_config.devsinks import DevSinks
from tests.conftest import remember_secret
from tests.servers import free_port

STRIPE_KEY = remember_secret("sk_test_sinkDemoKey00042")
SMTP_PASSWORD = remember_secret("sink-demo-Pw-42")


@pytest.fixture
def sinks():
    lines: list[str] = []
    running = DevSinks("127.0.0.1", smtp_port=free_port(), http_port=0, output=lines.append).start()
    running.lines = lines
    yield running
    running.stop()


@pytest.fixture
def app_overrides(sinks):
    return {
        "OUTBOUND_ALLOW_PRIVATE": True,
        "SLACK_WEBHOOK_HOSTS": (("127.0.0.1", sinks.http_port),),
        "STRIPE_API_BASE": f"http://127.0.0.1:{sinks.http_port}",
        "SMTP_ALLOWED_PORTS": (sinks.smtp_port,),
        "OUTBOUND_FAILURE_SECONDS": 0.0,
    }


def test_demo_reaches_sinks_end_to_end(app, world, make_browser, sinks):
    webhook = remember_secret(f"http://127.0.0.1:{sinks.http_port}/services/TDEMO/BDEMO/sinkHookSecret")
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "slack", {"slack.webhook_url": webhook})
    admin.save("acme", "smtp", {"smtp.host": "127.0.0.1", "smtp.port": str(sinks.smtp_port), "smtp.security": "none",
                                "smtp.username": "demo", "smtp.password": SMTP_PASSWORD,
                                "smtp.from_address": "billing@acme.example"})

    pages = []
    for integration in ("stripe", "slack", "smtp"):
        admin.post_form(f"/t/acme/settings/{integration}/test", {})
        pages.append(admin.get("/t/acme/settings").text)
    page = "".join(pages)
    output = "\n".join(sinks.lines)

    assert "Stripe test succeeded: reached Stripe account acct_" in page
    assert "Slack test succeeded" in page
    assert "SMTP test succeeded" in page
    assert "[stripe] GET /v1/account with key sk_test_…" in output
    assert "[slack] webhook" in output
    assert "Test message from Tenant Config for Acme" in output
    assert "[smtp] AUTH" in output
    assert "as 'demo'" in output
    assert f"to {world.acme_admin}" in output
    for secret in (STRIPE_KEY, SMTP_PASSWORD, webhook, "sinkHookSecret"):
        assert secret not in output


def test_stripe_sink_tells_tenants_apart(app, world, sinks):
    runner = app.test_cli_runner()
    for slug, key in (("acme", STRIPE_KEY), ("globex", remember_secret("sk_live_sinkOtherKey00043"))):
        runner.invoke(args=["config", "set", "--tenant", slug, "stripe.secret_key"], input=key + "\n")

    result = runner.invoke(args=["jobs", "stripe-balance", "--all"])

    assert result.exit_code == 0, result.output
    assert "acme: ok, test mode" in result.output
    assert "globex: ok, live mode" in result.output
    fingerprints = {line.rsplit("fingerprint ", 1)[1] for line in sinks.lines if "[stripe]" in line}
    assert len(fingerprints) == 2


def test_sinks_listen_on_loopback_only():
    with pytest.raises(ValueError, match="loopback only"):
        DevSinks("0.0.0.0")
