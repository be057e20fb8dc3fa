"""Outbound calls with each tenant's own credentials, against real servers on loopback."""

import json
import logging

import pytest

from tenant_config import integrations, values
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.outbound import DESTINATION_MESSAGE, DestinationError, OutboundError
from tests.conftest import remember_secret
from tests.servers import HttpStub, Reply, SmtpServer, StripeStub, make_certificates

ACME_STRIPE = remember_secret("sk_test_acmeStripeKey0001")
GLOBEX_STRIPE = remember_secret("sk_live_globexStripeKey0002")
ACME_SMTP_PASSWORD = remember_secret("acme-smtp-Pw-7731")
GLOBEX_SMTP_PASSWORD = remember_secret("globex-smtp-Pw-9902")


@pytest.fixture
def stripe_stub():
    stub = StripeStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def slack_stub():
    stub = HttpStub().start()
    yield stub
    stub.stop()


@pytest.fixture
def smtp_server():
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def app_overrides(stripe_stub, slack_stub, smtp_server):
    return {
        "OUTBOUND_ALLOW_PRIVATE": True,
        "SLACK_WEBHOOK_HOSTS": (("127.0.0.1", slack_stub.port),),
        "STRIPE_API_BASE": stripe_stub.base,
        "SMTP_ALLOWED_PORTS": (smtp_server.port, 2525),
        "OUTBOUND_CONNECT_TIMEOUT": 2.0,
        "OUTBOUND_READ_TIMEOUT": 1.0,
        "OUTBOUND_FAILURE_SECONDS": 0.0,
    }


def webhook(stub: HttpStub, tenant: str) -> str:
    return remember_secret(f"http://127.0.0.1:{stub.port}/services/T{tenant}/B{tenant}/hookSecret{tenant}")


def allow_port(app, server: SmtpServer) -> None:
    app.config["SMTP_ALLOWED_PORTS"] = (*app.config["SMTP_ALLOWED_PORTS"], server.port)


def configure(app, slug: str, settings: dict[str, str]) -> None:
    with app.app_context():
        tenant = find_tenant(slug)
        for name, value in settings.items():
            values.set_value(tenant, name, value, Actor.cli())


def smtp_settings(server: SmtpServer, username: str, password: str, host: str = "127.0.0.1") -> dict[str, str]:
    return {
        "smtp.host": host,
        "smtp.port": str(server.port),
        "smtp.security": "none",
        "smtp.username": username,
        "smtp.password": password,
        "smtp.from_address": f"billing@{username}.example",
    }


def call(app, function, slug: str, *args):
    with app.app_context():
        return function(find_tenant(slug), *args)


def test_stripe_uses_each_tenants_key(app, world, stripe_stub):
    configure(app, "acme", {"stripe.secret_key": ACME_STRIPE})
    configure(app, "globex", {"stripe.secret_key": GLOBEX_STRIPE})

    acme = call(app, integrations.stripe_account, "acme")
    acme_headers = [request.headers["Authorization"] for request in stripe_stub.requests]
    stripe_stub.requests.clear()
    globex = call(app, integrations.stripe_balance, "globex")
    globex_headers = [request.headers["Authorization"] for request in stripe_stub.requests]

    assert acme_headers == [f"Bearer {ACME_STRIPE}", f"Bearer {ACME_STRIPE}"]
    assert globex_headers == [f"Bearer {GLOBEX_STRIPE}"]
    assert acme.mode == "test"
    assert acme.account_id.startswith("acct_")
    assert globex.mode == "live"
    assert globex.describe() == "12.34 USD"


def test_stripe_never_sets_global_key(app, world, stripe_stub):
    import stripe

    configure(app, "acme", {"stripe.secret_key": ACME_STRIPE})
    call(app, integrations.stripe_balance, "acme")
    assert stripe.api_key is None


def test_slack_posts_to_tenants_webhook(app, world, slack_stub):
    configure(app, "acme", {"slack.webhook_url": webhook(slack_stub, "ACME")})
    call(app, integrations.notify_slack, "acme", "Invoice 42 paid")

    assert len(slack_stub.requests) == 1
    request = slack_stub.requests[0]
    assert request.method == "POST"
    assert request.path == "/services/TACME/BACME/hookSecretACME"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.body) == {"text": "Invoice 42 paid"}


def test_smtp_sends_with_tenants_credentials(app, world, smtp_server):
    configure(app, "acme", smtp_settings(smtp_server, "acme", ACME_SMTP_PASSWORD))
    configure(app, "globex", smtp_settings(smtp_server, "globex", GLOBEX_SMTP_PASSWORD))

    call(app, integrations.send_mail, "acme", "customer@example.com", "Your invoice", "Thanks for paying.")
    call(app, integrations.send_mail, "globex", "buyer@example.com", "Receipt", "Paid.")

    assert [(login.username, login.password) for login in smtp_server.logins] == [
        ("acme", ACME_SMTP_PASSWORD), ("globex", GLOBEX_SMTP_PASSWORD),
    ]
    acme_from, acme_to, acme_content = smtp_server.messages[0]
    assert acme_from == "billing@acme.example"
    assert acme_to == ["customer@example.com"]
    assert "Subject: Your invoice" in acme_content
    assert "Thanks for paying." in acme_content
    assert smtp_server.messages[1][0] == "billing@globex.example"


def test_smtp_wrong_password_fails_clearly(app, world):
    server = SmtpServer(password="the-right-one").start()
    allow_port(app, server)
    try:
        configure(app, "acme", smtp_settings(server, "acme", ACME_SMTP_PASSWORD))
        with pytest.raises(OutboundError) as raised:
            call(app, integrations.send_mail, "acme", "a@example.com", "s", "b")
    finally:
        server.stop()

    assert raised.value.integration == "smtp"
    assert raised.value.permanent
    assert raised.value.message == "the mail server rejected the username or password"
    assert ACME_SMTP_PASSWORD not in str(raised.value)
    assert server.messages == []


def test_smtp_starttls_verifies_certificate(app, world, tmp_path):
    ca_file, server_context = make_certificates(tmp_path, "localhost")
    server = SmtpServer(tls_context=server_context, hostname="127.0.0.1").start()
    allow_port(app, server)
    try:
        configure(app, "acme", {**smtp_settings(server, "acme", ACME_SMTP_PASSWORD, host="localhost"),
                                "smtp.security": "starttls"})

        with pytest.raises(OutboundError, match="certificate verification failed"):
            call(app, integrations.send_mail, "acme", "a@example.com", "s", "b")
        assert server.logins == []

        app.config["SMTP_CA_BUNDLE"] = str(ca_file)
        call(app, integrations.send_mail, "acme", "a@example.com", "Over TLS", "b")
    finally:
        server.stop()

    assert [(login.username, login.password) for login in server.logins] == [("acme", ACME_SMTP_PASSWORD)]
    assert "Subject: Over TLS" in server.messages[0][2]


def test_slack_retries_429_then_succeeds(app, world, slack_stub):
    configure(app, "acme", {"slack.webhook_url": webhook(slack_stub, "ACME")})
    slack_stub.script = [Reply(429, "rate_limited", {"Retry-After": "1"}), Reply(200, "ok")]

    call(app, integrations.notify_slack, "acme", "hello")

    assert len(slack_stub.requests) == 2


def test_slack_retries_5xx_a_bounded_number_of_times(app, world, slack_stub):
    configure(app, "acme", {"slack.webhook_url": webhook(slack_stub, "ACME")})
    slack_stub.default = Reply(503, "unavailable")

    with pytest.raises(OutboundError) as raised:
        call(app, integrations.notify_slack, "acme", "hello")

    assert len(slack_stub.requests) == app.config["OUTBOUND_MAX_ATTEMPTS"]
    assert not raised.value.permanent
    assert "HTTP 503" in raised.value.message


def test_slack_404_is_permanent_and_not_retried(app, world, slack_stub):
    configure(app, "acme", {"slack.webhook_url": webhook(slack_stub, "ACME")})
    slack_stub.default = Reply(404, "no_service: the raw upstream body")

    with pytest.raises(OutboundError) as raised:
        call(app, integrations.notify_slack, "acme", "hello")

    assert len(slack_stub.requests) == 1
    assert raised.value.permanent
    assert raised.value.integration == "slack"
    assert "HTTP 404" in raised.value.message
    assert "raw upstream body" not in str(raised.value)
    assert "hookSecret" not in str(raised.value)


def test_slack_redirect_is_not_followed(app, world, slack_stub):
    target = HttpStub().start()
    try:
        configure(app, "acme", {"slack.webhook_url": webhook(slack_stub, "ACME")})
        slack_stub.default = Reply(302, "", {"Location": f"{target.base}/services/TX/BX/elsewhere"})
        with pytest.raises(OutboundError, match="redirect") as raised:
            call(app, integrations.notify_slack, "acme", "hello")
    finally:
        target.stop()

    assert raised.value.permanent
    assert len(slack_stub.requests) == 1
    assert target.requests == []


def test_slack_read_timeout_is_reported(app, world, slack_stub):
    configure(app, "acme", {"slack.webhook_url": webhook(slack_stub, "ACME")})
    slack_stub.default = Reply(200, "ok", delay=2.5)

    with pytest.raises(OutboundError) as raised:
        call(app, integrations.notify_slack, "acme", "hello")

    assert raised.value.message == "timed out waiting for a response"
    assert not raised.value.permanent
    assert len(slack_stub.requests) == 1


def test_unreachable_destination_gets_generic_error(app, world, slack_stub):
    closed_port = slack_stub.port
    slack_stub.stop()
    configure(app, "acme", {"slack.webhook_url": f"http://127.0.0.1:{closed_port}/services/T1/B1/x"})

    with pytest.raises(DestinationError) as raised:
        call(app, integrations.notify_slack, "acme", "hello")

    assert raised.value.message == DESTINATION_MESSAGE
    assert str(closed_port) not in raised.value.message


def test_unconfigured_integration_is_reported(app, world):
    with pytest.raises(OutboundError, match="not configured: stripe.secret_key not set"):
        call(app, integrations.stripe_balance, "acme")
    with pytest.raises(OutboundError, match="smtp.host, smtp.from_address"):
        call(app, integrations.send_mail, "acme", "a@example.com", "s", "b")


def test_changed_host_never_gets_old_password(app, world, smtp_server):
    configure(app, "acme", smtp_settings(smtp_server, "acme", ACME_SMTP_PASSWORD, host="smtp.acme.example"))
    configure(app, "acme", {"smtp.host": "127.0.0.1"})

    with pytest.raises(OutboundError, match="requires authentication"):
        call(app, integrations.send_mail, "acme", "a@example.com", "s", "b")

    assert smtp_server.logins == []
    assert smtp_server.messages == []


def test_outbound_logs_hold_no_secret(app, world, slack_stub, smtp_server, stripe_stub, caplog):
    caplog.set_level(logging.DEBUG)
    hook = webhook(slack_stub, "LOGS")
    configure(app, "acme", {"slack.webhook_url": hook, "stripe.secret_key": ACME_STRIPE,
                            **smtp_settings(smtp_server, "acme", ACME_SMTP_PASSWORD)})
    slack_stub.script = [Reply(429, "", {"Retry-After": "0"}), Reply(500, "")]
    slack_stub.default = Reply(404, "")

    for function, args in [(integrations.notify_slack, ("x",)), (integrations.stripe_balance, ()),
                           (integrations.send_mail, ("a@example.com", "s", "b"))]:
        try:
            call(app, function, "acme", *args)
        except OutboundError:
            pass

    assert "Slack returned HTTP 429" in caplog.text
    for secret in (hook, "hookSecretLOGS", ACME_STRIPE, ACME_SMTP_PASSWORD):
        assert secret not in caplog.text


STRICT = {"OUTBOUND_ALLOW_PRIVATE": False}


@pytest.mark.parametrize("host", ["169.254.169.254", "10.0.0.5", "127.0.0.1", "[::ffff:127.0.0.1]", "2130706433"])
def test_private_smtp_host_refused_at_call_time(app, world, smtp_server, host):
    # Written directly, as a value stored before the rules existed would be.
    with app.app_context():
        values.apply_changes(find_tenant("acme"), {
            "smtp.host": host, "smtp.port": str(smtp_server.port), "smtp.security": "none",
            "smtp.username": "acme", "smtp.password": ACME_SMTP_PASSWORD, "smtp.from_address": "a@acme.example",
        }, Actor.cli())
    app.config.update(STRICT)

    with pytest.raises(DestinationError) as raised:
        call(app, integrations.send_mail, "acme", "a@example.com", "s", "b")

    assert raised.value.message == DESTINATION_MESSAGE
    assert smtp_server.logins == []
    assert smtp_server.messages == []


@pytest.mark.parametrize("url", [
    "http://hooks.slack.com/services/T1/B1/x",
    "https://hooks.example.com/services/T1/B1/x",
    "https://169.254.169.254/services/T1/B1/x",
])
def test_bad_slack_url_refused_at_call_time(app, world, slack_stub, url):
    with app.app_context():
        values.apply_changes(find_tenant("acme"), {"slack.webhook_url": url}, Actor.cli())
    app.config.update(STRICT)

    with pytest.raises(DestinationError) as raised:
        call(app, integrations.notify_slack, "acme", "hello")

    assert raised.value.message == DESTINATION_MESSAGE
    assert slack_stub.requests == []


def test_loopback_slack_refused_without_allow_private(app, world, slack_stub):
    configure(app, "acme", {"slack.webhook_url": webhook(slack_stub, "ACME")})
    app.config.update(STRICT)
    app.config["SLACK_WEBHOOK_HOSTS"] = (("127.0.0.1", slack_stub.port),)

    with pytest.raises(DestinationError):
        call(app, integrations.notify_slack, "acme", "hello")
    assert slack_stub.requests == []
