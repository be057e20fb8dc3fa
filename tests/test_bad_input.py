"""Bad input through the settings page and through ``config set``: a clear error on its field, no 5xx, no change."""

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from tenant_config.accounts import find_tenant
from tenant_config.extensions import db
from tenant_config.models import ConfigValue
from tenant_config.registry import KEYS
from tenant_config.resolver import resolve

GROUP_OF = {name: key.group for name, key in KEYS.items()}
BASELINE = {
    "stripe.secret_key": "sk_test_baseline0001",
    "slack.webhook_url": "https://hooks.slack.com/services/TBASE/BBASE/baselinePath1",
    "smtp.host": "smtp.acme.example",
    "smtp.port": "587",
    "smtp.username": "mailer",
    "smtp.password": "baseline-pass-1",
    "smtp.from_address": "billing@acme.example",
}

# (key, submitted value, expected message)
REJECTED = [
    ("smtp.host", "smtp\x00.acme.example", "NUL character"),
    ("smtp.password", "pass\x00word", "NUL character"),
    ("smtp.host", "smtp.acme.example\r\nX: y", "single line"),
    ("smtp.username", "mailer\nRCPT TO:<x@evil.example>", "single line"),
    ("smtp.from_address", "billing@acme.example\r\nBcc: x@evil.example", "single line"),
    ("smtp.password", "pass\rword", "single line"),
    ("stripe.secret_key", "sk_test_abc\u200bdef", "U+200B"),
    ("stripe.secret_key", "sk_test_abc\u00a0def", "U+00A0"),
    ("smtp.username", "müller", "ASCII characters only"),
    ("smtp.password", "pässword", "ASCII characters only"),
    ("smtp.password", "p" * 257, "at most 256 characters"),
    ("stripe.secret_key", "sk_test_" + "a" * 300, "at most 255 characters"),
    ("slack.webhook_url", "https://hooks.slack.com/services/T/B/" + "x" * 600, "at most 500 characters"),
    ("smtp.port", "0", "between 1 and 65535"),
    ("smtp.port", "70000", "between 1 and 65535"),
    ("smtp.port", "25a", "whole number"),
    ("smtp.from_address", "billing.acme.example", "must be an email address"),
    ("slack.webhook_url", "https://user:pw@hooks.slack.com/services/T1/B1/x", "must not contain a user name"),
    ("slack.webhook_url", "https://hooks.slack.com/services/T1/B1/x#part", "fragment"),
    ("slack.webhook_url", "https://hooks.slack.com:444/services/T1/B1/x", "on port 443"),
]

ACCEPTED = [
    ("stripe.secret_key", "sk_test_pasted42\n", "sk_test_pasted42"),
    ("stripe.secret_key", "   sk_live_pasted43   ", "sk_live_pasted43"),
    ("slack.webhook_url", " https://hooks.slack.com/services/T2/B2/pasted44\r\n",
     "https://hooks.slack.com/services/T2/B2/pasted44"),
    ("smtp.password", "p" * 256, "p" * 256),
    ("stripe.secret_key", "sk_test_" + "a" * 247, "sk_test_" + "a" * 247),
]


@pytest.fixture
def stored(app, world):
    runner = app.test_cli_runner()
    for name, value in BASELINE.items():
        result = runner.invoke(args=["config", "set", "--tenant", "acme", name], input=value)
        assert result.exit_code == 0, result.output
    return app


def _snapshot(app):
    with app.app_context():
        tenant = find_tenant("acme")
        rows = db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id))
        return {row.key: (row.value, row.row_version) for row in rows}


def _resolved(app, name):
    with app.app_context():
        value = resolve("acme", name)
    return value.reveal() if KEYS[name].encrypted else value


@pytest.mark.parametrize("name, value, message", REJECTED)
def test_ui_rejects_bad_value(stored, world, make_browser, name, value, message):
    before = _snapshot(stored)
    admin = make_browser(world.acme_admin)

    response = admin.save("acme", GROUP_OF[name], {name: value})

    assert response.status_code == 400
    assert message in response.text
    assert f'id="{name.replace(".", "__")}-error"' in response.text
    assert _snapshot(stored) == before


@pytest.mark.parametrize("name, value, message", REJECTED)
def test_cli_rejects_bad_value(stored, name, value, message):
    before = _snapshot(stored)
    result = stored.test_cli_runner().invoke(args=["config", "set", "--tenant", "acme", name], input=value)

    assert result.exit_code == 1
    assert message in result.output
    assert f"Error: {name}:" in result.output
    assert _snapshot(stored) == before


@pytest.mark.parametrize("name, value, expected", ACCEPTED)
def test_ui_accepts_and_strips(stored, world, make_browser, name, value, expected):
    admin = make_browser(world.acme_admin)
    response = admin.save("acme", GROUP_OF[name], {name: value})
    assert response.status_code == 302
    assert _resolved(stored, name) == expected


@pytest.mark.parametrize("name, value, expected", ACCEPTED)
def test_cli_accepts_and_strips(stored, name, value, expected):
    result = stored.test_cli_runner().invoke(args=["config", "set", "--tenant", "acme", name], input=value)
    assert result.exit_code == 0, result.output
    assert _resolved(stored, name) == expected


def test_missing_fields_keep_values(stored, world, make_browser):
    before = _snapshot(stored)
    admin = make_browser(world.acme_admin)

    response = admin.post_form("/t/acme/settings/smtp", {"smtp__from_address": "ops@acme.example"})

    assert response.status_code == 302
    after = _snapshot(stored)
    assert _resolved(stored, "smtp.from_address") == "ops@acme.example"
    for name in ("smtp.host", "smtp.port", "smtp.username", "smtp.password"):
        assert after[name] == before[name], name


def test_duplicated_field_is_rejected(stored, world, make_browser):
    before = _snapshot(stored)
    admin = make_browser(world.acme_admin)
    body = MultiDict([("smtp__host", "smtp.one.example"), ("smtp__host", "smtp.two.example"),
                      ("csrf_token", admin.token())])

    response = admin.client.post("/t/acme/settings/smtp", data=body)

    assert response.status_code == 400
    assert "SMTP host was submitted more than once" in response.text
    assert _snapshot(stored) == before


def test_unknown_fields_are_ignored(stored, world, make_browser):
    before = _snapshot(stored)
    admin = make_browser(world.acme_admin)

    response = admin.post_form("/t/acme/settings/smtp", {"smtp__unknown": "x", "stripe__secret_key": "sk_test_other99"})

    assert response.status_code == 302
    assert _snapshot(stored) == before


def test_longest_value_fits_its_column(stored, world, make_browser):
    slack_prefix = "https://hooks.slack.com/services/T1/B1/"
    values = {
        "stripe.secret_key": "sk_live_" + "Z" * (KEYS["stripe.secret_key"].max_length - 8),
        "slack.webhook_url": slack_prefix + "Y" * (KEYS["slack.webhook_url"].max_length - len(slack_prefix)),
        "smtp.password": "P" * KEYS["smtp.password"].max_length,
    }
    admin = make_browser(world.acme_admin)
    for name, value in values.items():
        assert len(value) == KEYS[name].max_length
        assert admin.save("acme", GROUP_OF[name], {name: value}).status_code == 302
        assert _resolved(stored, name) == value
