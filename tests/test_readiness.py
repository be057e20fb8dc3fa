"""The readiness badge of each integration: complete, incomplete or failing, and how the page shows it."""

from datetime import timedelta

import pytest

from tenant_config import audit, checks, readiness, values
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.extensions import db
from tenant_config.models import utcnow
from tests.conftest import remember_secret

STRIPE_KEY = remember_secret("sk_test_readinessKey01")
WEBHOOK = remember_secret("https://hooks.slack.com/services/TREADY/BREADY/readinessHook1")


def store(app, settings: dict[str, str]) -> None:
    with app.app_context():
        for name, value in settings.items():
            values.set_value(find_tenant("acme"), name, value, Actor.cli())


def record_test(app, integration: str, outcome: str, age: timedelta) -> None:
    """Record a test send that happened ``age`` ago, or in the future for a negative age."""
    with app.app_context():
        event = audit.record(find_tenant("acme"), Actor(label="admin@acme.example"), checks.TEST_ACTION, integration, outcome)
        event.created_at = utcnow() - age
        db.session.commit()


def states(app) -> dict[str, readiness.Readiness]:
    with app.app_context():
        tenant = find_tenant("acme")
        views = {view.key.name: view for view in values.describe(tenant)}
        return readiness.of_tenant(tenant, views, checks.last_tests(tenant))


def test_nothing_set_is_incomplete(app, world):
    found = states(app)

    assert {name: state.state for name, state in found.items()} == {
        "stripe": readiness.INCOMPLETE, "slack": readiness.INCOMPLETE, "smtp": readiness.INCOMPLETE,
    }
    assert found["stripe"].missing == ("Stripe secret key",)
    assert found["smtp"].missing == ("SMTP host", "From address")


def test_password_without_username_is_incomplete(app, world):
    store(app, {"smtp.host": "smtp.acme.example", "smtp.from_address": "billing@acme.example", "smtp.password": "pw-1"})
    assert states(app)["smtp"].missing == ("SMTP username",)


def test_required_keys_set_is_complete(app, world):
    store(app, {"stripe.secret_key": STRIPE_KEY})

    stripe = states(app)["stripe"]

    assert stripe.state == readiness.COMPLETE
    assert stripe.missing == ()
    assert stripe.last_test is None


@pytest.mark.parametrize("outcome, state, failure", [
    ("ok", readiness.COMPLETE, None),
    ("failed: Stripe rejected the key (HTTP 401)", readiness.FAILING, "Stripe rejected the key (HTTP 401)"),
])
def test_last_test_decides_state(app, world, outcome, state, failure):
    store(app, {"stripe.secret_key": STRIPE_KEY})
    record_test(app, "stripe", outcome, age=timedelta(seconds=-1))

    stripe = states(app)["stripe"]

    assert stripe.state == state
    assert stripe.failure == failure
    assert stripe.last_test_passed == (failure is None)


def test_change_after_failed_test_clears_failing(app, world):
    record_test(app, "slack", "failed: Slack rejected the webhook (HTTP 404)", age=timedelta(hours=1))
    store(app, {"slack.webhook_url": WEBHOOK})

    slack = states(app)["slack"]

    assert slack.state == readiness.COMPLETE
    assert slack.changed_since_test
    assert slack.failure == "Slack rejected the webhook (HTTP 404)"


def test_newest_test_counts(app, world):
    store(app, {"slack.webhook_url": WEBHOOK})
    record_test(app, "slack", "failed: Slack rejected the webhook (HTTP 404)", age=timedelta(seconds=-1))
    record_test(app, "slack", "ok", age=timedelta(seconds=-2))

    assert states(app)["slack"].state == readiness.COMPLETE


def test_missing_keys_win_over_failed_test(app, world):
    record_test(app, "stripe", "failed: not configured", age=timedelta(seconds=-1))
    assert states(app)["stripe"].state == readiness.INCOMPLETE


def test_page_shows_badges_and_last_test(app, world, make_browser):
    store(app, {"stripe.secret_key": STRIPE_KEY, "slack.webhook_url": WEBHOOK})
    record_test(app, "slack", "failed: Slack rejected the webhook (HTTP 404)", age=timedelta(seconds=-1))
    record_test(app, "stripe", "ok", age=timedelta(seconds=-1))

    admin_page = make_browser(world.acme_admin).get("/t/acme/settings").text
    member_page = make_browser(world.acme_member).get("/t/acme/settings").text

    for page in (admin_page, member_page):
        assert 'id="readiness-stripe">Complete</span>' in page
        assert 'id="readiness-slack">Failing</span>' in page
        assert 'id="readiness-smtp">Incomplete</span>' in page
        assert "The last test failed: Slack rejected the webhook (HTTP 404)." in page
        assert "Missing: SMTP host, From address." in page
        assert '<span class="outcome outcome-passed">passed</span>' in page
        assert "Never tested." in page
    assert "no use recorded yet" in admin_page
    assert "no use recorded yet" not in member_page
