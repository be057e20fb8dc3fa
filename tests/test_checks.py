"""The "Send test" buttons and the backend jobs, against real servers on loopback."""

import json

import pytest
from sqlalchemy import select

from tenant_config.extensions import db
from tenant_config.models import AuditEvent, ConfigValue, Tenant
from tests.conftest import remember_secret
from tests.servers import HttpStub, Reply, SmtpServer, StripeStub

ACME_STRIPE = remember_secret("sk_test_checksAcme00001")
GLOBEX_STRIPE = remember_secret("sk_live_checksGlobex0002")
ACME_PASSWORD = remember_secret("checks-acme-Pw-11")


@pytest.fixture
def servers():
    stripe_stub, slack_stub, smtp_server = StripeStub().start(), HttpStub().start(), SmtpServer().start()
    yield stripe_stub, slack_stub, smtp_server
    stripe_stub.stop()
    slack_stub.stop()
    smtp_server.stop()


@pytest.fixture
def app_overrides(servers):
    stripe_stub, slack_stub, smtp_server = servers
    return {
        "OUTBOUND_ALLOW_PRIVATE": True,
        "SLACK_WEBHOOK_HOSTS": (("127.0.0.1", slack_stub.port),),
        "STRIPE_API_BASE": stripe_stub.base,
        "SMTP_ALLOWED_PORTS": (smtp_server.port,),
        "OUTBOUND_READ_TIMEOUT": 2.0,
        "OUTBOUND_FAILURE_SECONDS": 0.0,
        "TEST_SEND_RATE_LIMIT": "3 per minute",
    }


def hook(slack_stub, tenant: str) -> str:
    return remember_secret(f"http://127.0.0.1:{slack_stub.port}/services/T{tenant}/B{tenant}/checkHook{tenant}")


@pytest.fixture
def acme_admin(world, make_browser, servers):
    stripe_stub, slack_stub, smtp_server = servers
    admin = make_browser(world.acme_admin)
    assert admin.save("acme", "stripe", {"stripe.secret_key": ACME_STRIPE}).status_code == 302
    assert admin.save("acme", "slack", {"slack.webhook_url": hook(slack_stub, "ACME")}).status_code == 302
    assert admin.save("acme", "smtp", {
        "smtp.host": "127.0.0.1", "smtp.port": str(smtp_server.port), "smtp.security": "none",
        "smtp.username": "acme-mailer", "smtp.password": ACME_PASSWORD, "smtp.from_address": "billing@acme.example",
    }).status_code == 302
    return admin


def test_admin_saves_settings_pointing_at_servers(app, acme_admin):
    page = acme_admin.get("/t/acme/settings").text
    assert page.count("badge-set") == 3
    assert page.count('>Send test</button>') == 3
    assert "disabled" not in page.split('id="group-stripe"')[1].split("</section>")[0]


def test_stripe_test_shows_account_and_mode(app, acme_admin, servers):
    stripe_stub = servers[0]
    response = acme_admin.post_form("/t/acme/settings/stripe/test", {})
    page = acme_admin.get("/t/acme/settings").text

    assert response.status_code == 302
    assert "Stripe test succeeded: reached Stripe account acct_" in page
    assert "in test mode" in page
    assert {request.headers["Authorization"] for request in stripe_stub.requests} == {f"Bearer {ACME_STRIPE}"}
    assert ACME_STRIPE not in page


def test_slack_test_posts_message(app, acme_admin, servers):
    slack_stub = servers[1]
    acme_admin.post_form("/t/acme/settings/slack/test", {})
    page = acme_admin.get("/t/acme/settings").text

    assert "Slack test succeeded" in page
    assert len(slack_stub.requests) == 1
    assert slack_stub.requests[0].path == "/services/TACME/BACME/checkHookACME"
    assert "Test message from Tenant Config for Acme" in json.loads(slack_stub.requests[0].body)["text"]


def test_smtp_test_mails_the_admin(app, world, acme_admin, servers):
    smtp_server = servers[2]
    acme_admin.post_form("/t/acme/settings/smtp/test", {})
    page = acme_admin.get("/t/acme/settings").text

    assert f"SMTP test succeeded: sent a test message to {world.acme_admin}" in page
    assert [(login.username, login.password) for login in smtp_server.logins] == [("acme-mailer", ACME_PASSWORD)]
    assert smtp_server.messages[0][1] == [world.acme_admin]


def test_failed_test_changes_nothing_and_is_audited(app, acme_admin, servers):
    slack_stub = servers[1]
    slack_stub.default = Reply(404, "no_service")
    before = acme_admin.get("/t/acme/settings").text.count("badge-set")

    acme_admin.post_form("/t/acme/settings/slack/test", {})
    page = acme_admin.get("/t/acme/settings").text

    assert "Slack test failed: Slack rejected the webhook (HTTP 404)" in page
    assert page.count("badge-set") == before
    assert "checkHookACME" not in page
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "test")).one()
        assert event.key == "slack"
        assert event.outcome.startswith("failed: Slack rejected the webhook")
    activity = acme_admin.get("/t/acme/activity").text
    assert "failed: Slack rejected the webhook" in activity


def test_refused_destination_gets_generic_message(app, world, make_browser, servers):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", {"smtp.host": "127.0.0.1", "smtp.port": str(servers[2].port),
                                "smtp.from_address": "billing@acme.example", "smtp.security": "none"})
    app.config["OUTBOUND_ALLOW_PRIVATE"] = False

    admin.post_form("/t/acme/settings/smtp/test", {})
    page = admin.get("/t/acme/settings").text

    assert "SMTP test failed: could not connect to the destination; check the host, port and URL." in page
    assert servers[2].messages == []


def test_test_sends_are_rate_limited(app, acme_admin, servers):
    statuses = [acme_admin.post_form("/t/acme/settings/slack/test", {}).status_code for _ in range(4)]
    assert statuses == [302, 302, 302, 429]
    assert len(servers[1].requests) == 3


def test_new_login_keeps_test_send_limit(app, world, acme_admin, servers):
    for _ in range(3):
        acme_admin.post_form("/t/acme/settings/slack/test", {})
    assert acme_admin.post_form("/logout", {}).status_code == 302
    assert acme_admin.login(world.acme_admin).status_code == 302

    assert acme_admin.post_form("/t/acme/settings/slack/test", {}).status_code == 429
    assert len(servers[1].requests) == 3


def test_member_cannot_send_test(app, world, acme_admin, make_browser, servers):
    member = make_browser(world.acme_member)
    assert member.post_form("/t/acme/settings/slack/test", {}).status_code == 403
    assert servers[1].requests == []
    assert "Send test" not in member.get("/t/acme/settings").text


def test_other_tenant_cannot_send_test(app, world, acme_admin, make_browser, servers):
    outsider = make_browser(world.globex_admin)
    assert outsider.post_form("/t/acme/settings/slack/test", {}).status_code == 404
    assert servers[1].requests == []


def test_test_send_needs_csrf(app, acme_admin, servers):
    assert acme_admin.client.post("/t/acme/settings/slack/test").status_code == 400
    assert servers[1].requests == []


def test_unknown_integration_is_404(app, acme_admin):
    assert acme_admin.post_form("/t/acme/settings/twilio/test", {}).status_code == 404


def test_unconfigured_test_button_is_disabled(app, world, make_browser):
    page = make_browser(world.globex_admin).get("/t/globex/settings").text
    assert page.count("disabled aria-describedby") == 3
    assert "Set Stripe secret key to enable the test." in page


def _configure_globex(app, runner, slack_stub, smtp_server):
    for key, value in [("stripe.secret_key", GLOBEX_STRIPE), ("slack.webhook_url", hook(slack_stub, "GLOBEX"))]:
        result = runner.invoke(args=["config", "set", "--tenant", "globex", key], input=value + "\n")
        assert result.exit_code == 0, result.output


def test_jobs_all_uses_each_tenants_credentials(app, acme_admin, servers):
    stripe_stub, slack_stub, smtp_server = servers
    runner = app.test_cli_runner()
    _configure_globex(app, runner, slack_stub, smtp_server)
    runner.invoke(args=["tenants", "create", "initech", "--name", "Initech"])

    slack = runner.invoke(args=["jobs", "slack-notify", "--all", "Nightly report ready"])
    stripe = runner.invoke(args=["jobs", "stripe-balance", "--all"])

    assert slack.exit_code == 0, slack.output
    assert slack.output.splitlines() == [
        "acme: ok, message posted",
        "globex: ok, message posted",
        "initech: skipped, slack is not configured",
        "slack-notify: 2 succeeded, 0 failed, 1 skipped.",
    ]
    assert sorted(request.path for request in slack_stub.requests) == [
        "/services/TACME/BACME/checkHookACME", "/services/TGLOBEX/BGLOBEX/checkHookGLOBEX",
    ]
    assert stripe.exit_code == 0, stripe.output
    assert "acme: ok, test mode, available 12.34 USD" in stripe.output
    assert "globex: ok, live mode, available 12.34 USD" in stripe.output
    assert [request.headers["Authorization"] for request in stripe_stub.requests] == [
        f"Bearer {ACME_STRIPE}", f"Bearer {GLOBEX_STRIPE}",
    ]
    for output in (slack.output, stripe.output):
        assert ACME_STRIPE not in output
        assert "checkHook" not in output


def test_jobs_carry_on_after_failure(app, acme_admin, servers):
    stripe_stub, slack_stub, smtp_server = servers
    runner = app.test_cli_runner()
    _configure_globex(app, runner, slack_stub, smtp_server)
    slack_stub.script = [Reply(404, "no_service")]

    result = runner.invoke(args=["jobs", "slack-notify", "--all", "hello"])

    assert result.exit_code == 1
    assert "acme: failed (permanent), Slack rejected the webhook (HTTP 404)" in result.output
    assert "globex: ok, message posted" in result.output
    assert "slack-notify: 1 succeeded, 1 failed, 0 skipped." in result.output


def test_job_for_unconfigured_tenant_fails(app, world):
    result = app.test_cli_runner().invoke(args=["jobs", "stripe-balance", "--tenant", "globex"])
    assert result.exit_code == 1
    assert "globex: failed (permanent), not configured: stripe.secret_key not set" in result.output


def test_send_mail_job(app, acme_admin, servers):
    smtp_server = servers[2]
    result = app.test_cli_runner().invoke(args=[
        "jobs", "send-mail", "--tenant", "acme", "--to", "customer@example.com",
        "--subject", "Invoice", "--body", "Thanks",
    ])

    assert result.exit_code == 0, result.output
    assert "acme: ok, mail sent to customer@example.com" in result.output
    assert smtp_server.logins[0].password == ACME_PASSWORD
    assert "Subject: Invoice" in smtp_server.messages[0][2]
    assert ACME_PASSWORD not in result.output


@pytest.mark.parametrize("args, message", [
    (["jobs", "slack-notify", "hello"], "exactly one of --tenant SLUG or --all"),
    (["jobs", "slack-notify", "--tenant", "acme", "--all", "hello"], "exactly one of --tenant SLUG or --all"),
    (["jobs", "stripe-balance", "--tenant", "nosuch"], "tenant 'nosuch' not found"),
    (["jobs", "send-mail", "--tenant", "acme", "--to", "nobody", "--subject", "s", "--body", "b"], "is not an email address"),
])
def test_job_arguments_are_checked(app, world, args, message):
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code != 0
    assert message in result.output


def _last_used_by(app, key: str) -> str | None:
    with app.app_context():
        return db.session.scalar(select(ConfigValue.last_used_by).join(Tenant).where(
            Tenant.slug == "acme", ConfigValue.key == key))


def test_jobs_and_tests_record_last_use(app, acme_admin, servers):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["jobs", "slack-notify", "--tenant", "acme", "hello"]).exit_code == 0
    assert runner.invoke(args=["jobs", "send-mail", "--tenant", "acme", "--to", "customer@example.com",
                               "--subject", "s", "--body", "b"]).exit_code == 0
    assert acme_admin.post_form("/t/acme/settings/stripe/test", {}).status_code == 302

    assert _last_used_by(app, "slack.webhook_url") == "slack-notify"
    assert _last_used_by(app, "smtp.password") == "send-mail"
    assert _last_used_by(app, "stripe.secret_key") == "send test"
    assert _last_used_by(app, "smtp.host") is None
