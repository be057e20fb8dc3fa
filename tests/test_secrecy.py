"""One whole flow at DEBUG: no secret and no webhook URL in any log line, response body or audit row."""

import logging

import pytest
from sqlalchemy import select

from tenant_config.extensions import db
from tenant_config.models import AuditEvent
from tests.conftest import remember_secret
from tests.servers import HttpStub, Reply, SmtpServer, StripeStub

STRIPE_KEY = remember_secret("sk_live_secrecyFlowKey0007")
SMTP_PASSWORD = remember_secret("secrecy-flow-Pw-7")
GLOBEX_PASSWORD = remember_secret("secrecy-globex-Pw-8")


@pytest.fixture
def servers():
    running = StripeStub().start(), HttpStub().start(), SmtpServer(password=SMTP_PASSWORD).start()
    yield running
    for server in running:
        server.stop()


@pytest.fixture
def app_overrides(servers):
    stripe_stub, slack_stub, smtp_server = servers
    return {
        "OUTBOUND_ALLOW_PRIVATE": True,
        "SLACK_WEBHOOK_HOSTS": (("127.0.0.1", slack_stub.port),),
        "STRIPE_API_BASE": stripe_stub.base,
        "SMTP_ALLOWED_PORTS": (smtp_server.port,),
        "OUTBOUND_FAILURE_SECONDS": 0.0,
        "PROPAGATE_EXCEPTIONS": False,
    }


def _collect(bodies: list[str], response):
    bodies.append(response.get_data(as_text=True))
    return response


def test_whole_flow_leaks_no_secret(app, world, make_browser, servers, caplog):
    caplog.set_level(logging.DEBUG)
    stripe_stub, slack_stub, smtp_server = servers
    webhook = remember_secret(f"http://127.0.0.1:{slack_stub.port}/services/TFLOW/BFLOW/flowHookSecret")

    @app.route("/crash")
    def crash():
        raise RuntimeError(f"unexpected failure while calling {webhook} with {STRIPE_KEY}")

    bodies: list[str] = []
    admin = make_browser(world.acme_admin)
    _collect(bodies, admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY}))
    _collect(bodies, admin.save("acme", "slack", {"slack.webhook_url": webhook}))
    _collect(bodies, admin.save("acme", "smtp", {
        "smtp.host": "127.0.0.1", "smtp.port": str(smtp_server.port), "smtp.security": "none",
        "smtp.username": "flow", "smtp.password": SMTP_PASSWORD, "smtp.from_address": "billing@acme.example",
    }))
    _collect(bodies, admin.save("acme", "smtp", {"smtp.password": "pässword-" + SMTP_PASSWORD}))

    slack_stub.script = [Reply(404, f"no_service {webhook}"), Reply(200, "ok")]
    for integration in ("slack", "slack", "stripe", "smtp"):
        _collect(bodies, admin.post_form(f"/t/acme/settings/{integration}/test", {}))
        _collect(bodies, admin.get("/t/acme/settings"))
    _collect(bodies, admin.get("/t/acme/activity"))

    crashed = _collect(bodies, admin.get("/crash"))
    assert crashed.status_code == 500
    assert "Something went wrong on our side" in crashed.text

    runner = app.test_cli_runner()
    outputs = [
        runner.invoke(args=["config", "set", "--tenant", "globex", "smtp.password"], input=GLOBEX_PASSWORD).output,
        runner.invoke(args=["config", "set", "--tenant", "globex", "stripe.secret_key"], input="pk_live_nope1").output,
        runner.invoke(args=["config", "list", "--tenant", "acme"]).output,
        runner.invoke(args=["jobs", "slack-notify", "--all", "hello"]).output,
        runner.invoke(args=["jobs", "stripe-balance", "--all"]).output,
        runner.invoke(args=["jobs", "send-mail", "--tenant", "acme", "--to", "x@example.com",
                            "--subject", "s", "--body", "b"]).output,
    ]
    with app.app_context():
        audit_rows = [repr(tuple(row)) for row in db.session.execute(select(AuditEvent.__table__))]

    assert "Slack test failed" in "".join(bodies)
    assert "Stripe test succeeded" in "".join(bodies)
    assert "RuntimeError: unexpected failure while calling http://127.0.0.1" in caplog.text
    assert len(smtp_server.messages) >= 2
    places = {"logs": caplog.text, "responses": "\n".join(bodies), "cli": "\n".join(outputs), "audit": "\n".join(audit_rows)}
    for place, text in places.items():
        for secret in (STRIPE_KEY, SMTP_PASSWORD, GLOBEX_PASSWORD, webhook, "flowHookSecret"):
            assert secret not in text, f"{place} contain a secret"


def test_debug_mode_off_by_default(tmp_path):
    from tenant_config import create_app
    from tests.conftest import MASTER_KEY, SECRET_KEY

    app = create_app(environ={"CONFIG_ENCRYPTION_KEY": MASTER_KEY, "SECRET_KEY": SECRET_KEY},
                     instance_path=str(tmp_path))
    assert app.debug is False
    assert app.config["PROPAGATE_EXCEPTIONS"] is None
