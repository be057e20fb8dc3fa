"""Attacks on tenant isolation, secret handling, input checks, CSRF, login and stored ciphertext.

Every test states what the product must do under one attack. Tests that need
a server error to come back as a page set PROPAGATE_EXCEPTIONS to False,
because TESTING would otherwise raise the exception inside the test client.
"""

import logging
import time

import itsdangerous.timed
import pytest
from sqlalchemy import delete, select

from tenant_config import create_app, values
from tenant_config.accounts import create_user, find_tenant, find_user, grant
from tenant_config.audit import Actor
from tenant_config.crypto import DecryptionError
from tenant_config.extensions import db
from tenant_config.models import AuditEvent, ConfigValue, Membership, TenantDataKey
from tenant_config.resolver import resolve
from tests.conftest import MASTER_KEY, PASSWORD, SECRET_KEY

STRIPE_KEY = "sk_live_Atk9Qw3Er5Ty7Ui1Op"
WEBHOOK = "https://hooks.slack.com/services/T0ATK/B0ATK/Atk4Webhook8Path2"
SMTP_PASSWORD = "Atk-smtp-pass-6Hn2"

# Fragments that identify each secret without the parts that are common to every value of its key.
SECRET_MARKERS = ("Atk9Qw3Er5Ty7Ui1Op", "Atk4Webhook8Path2", "smtp-pass-6Hn2")


def _rows(app, slug="acme"):
    with app.app_context():
        tenant = find_tenant(slug)
        return {row.key: (row.value, row.row_version) for row in db.session.scalars(
            select(ConfigValue).where(ConfigValue.tenant_id == tenant.id)
        )}


def _store_secrets(app):
    with app.app_context():
        actor = Actor.cli()
        values.set_value(find_tenant("acme"), "stripe.secret_key", STRIPE_KEY, actor)
        values.set_value(find_tenant("acme"), "slack.webhook_url", WEBHOOK, actor)
        values.set_value(find_tenant("acme"), "smtp.host", "smtp.acme.example", actor)
        values.set_value(find_tenant("acme"), "smtp.password", SMTP_PASSWORD, actor)
        values.set_value(find_tenant("globex"), "stripe.secret_key", "sk_test_Globex5Key7", actor)


def _assert_no_secret(text: str, where: str):
    for marker in SECRET_MARKERS:
        assert marker not in text, f"{where} contains a secret"


def _post_raw(client, path: str, body: bytes):
    return client.post(path, data=body, content_type="application/x-www-form-urlencoded")


# Tenant isolation

ODD_SLUGS = [
    "GLOBEX",
    "Globex",
    "%67lobex",
    "globex%20",
    "%20globex",
    "globex.",
    "ｇｌｏｂｅｘ",
    "glob%C3%A9x",
    "globex%E2%80%8B",
    "..%2Fglobex",
]


@pytest.mark.parametrize("slug", ODD_SLUGS)
@pytest.mark.parametrize("method, suffix", [
    ("GET", "settings"),
    ("HEAD", "settings"),
    ("OPTIONS", "settings"),
    ("GET", "activity"),
    ("POST", "settings/stripe"),
    ("POST", "settings/keys/stripe.secret_key/remove"),
])
def test_odd_slug_gets_404(app, world, make_browser, slug, method, suffix):
    _store_secrets(app)
    before = _rows(app, "globex")
    outsider = make_browser(world.acme_admin)

    data = {"stripe__secret_key": "sk_test_hijacked1", "csrf_token": outsider.token()} if method == "POST" else None
    response = outsider.client.open(f"/t/{slug}/{suffix}", method=method, data=data)

    assert response.status_code == 404
    assert _rows(app, "globex") == before


@pytest.mark.parametrize("slug", ["ACME", "acme%20", "ａｃｍｅ"])
def test_odd_spelling_of_own_slug_gets_404(app, world, make_browser, slug):
    admin = make_browser(world.acme_admin)
    assert admin.get(f"/t/{slug}/settings").status_code == 404


@pytest.mark.parametrize("method, path", [
    ("GET", "/t/ac%00me/settings"),
    ("GET", "/t/acme%00/activity"),
    ("POST", "/t/acme%00/settings/smtp"),
])
def test_nul_in_slug_gets_404(app, world, make_browser, method, path):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    admin = make_browser(world.acme_admin)

    data = {"smtp__port": "25", "csrf_token": admin.token()} if method == "POST" else None
    response = admin.client.open(path, method=method, data=data)

    assert response.status_code == 404


@pytest.mark.parametrize("operator", [False, True])
@pytest.mark.parametrize("method, path", [
    ("GET", "/t/acme/settings"),
    ("GET", "/t/acme/activity"),
    ("POST", "/t/acme/settings/smtp"),
    ("POST", "/t/acme/settings/keys/smtp.password/remove"),
])
def test_user_without_membership_gets_404(app, world, make_browser, operator, method, path):
    _store_secrets(app)
    before = _rows(app)
    with app.app_context():
        create_user("loner@example.com", PASSWORD, is_operator=operator)
    loner = make_browser("loner@example.com")

    data = {"smtp__port": "25", "csrf_token": loner.token()} if method == "POST" else None
    response = loner.client.open(path, method=method, data=data)

    assert response.status_code == 404
    assert _rows(app) == before


def test_memberless_chooser_is_empty(app, world, make_browser):
    with app.app_context():
        create_user("loner@example.com", PASSWORD, is_operator=True)
    page = make_browser("loner@example.com").get("/")

    assert page.status_code == 200
    assert "/t/acme" not in page.text
    assert "/t/globex" not in page.text


def test_removed_membership_ends_access(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    assert admin.get("/t/acme/settings").status_code == 200
    with app.app_context():
        db.session.execute(delete(Membership).where(Membership.user_id == find_user(world.acme_admin).id))
        db.session.commit()

    assert admin.get("/t/acme/settings").status_code == 404
    assert admin.post_form("/t/acme/settings/smtp", {"smtp__port": "25"}).status_code == 404
    assert "smtp.port" not in _rows(app)


def test_demoted_admin_cannot_write(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    with app.app_context():
        grant(find_user(world.acme_admin), find_tenant("acme"), "member")

    assert admin.post_form("/t/acme/settings/smtp", {"smtp__port": "25"}).status_code == 403
    assert admin.get("/t/acme/activity").status_code == 403
    assert "smtp.port" not in _rows(app)


# Secret leakage

def _raise_with_secret(*args, **kwargs):
    raise RuntimeError(f"storage failed for {SMTP_PASSWORD}")


def test_error_pages_show_no_secret(app, world, make_browser, monkeypatch):
    _store_secrets(app)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    admin = make_browser(world.acme_admin)
    member = make_browser(world.acme_member)
    outsider = make_browser(world.globex_admin)

    pages = {
        "400 validation": admin.save("acme", "smtp", {"smtp.password": "new-" + SMTP_PASSWORD, "smtp.port": "0"}),
        "400 csrf": admin.client.post("/t/acme/settings/stripe", data={"stripe__secret_key": STRIPE_KEY}),
        "403": member.post_form("/t/acme/settings/stripe", {"stripe__secret_key": STRIPE_KEY}),
        "404": outsider.post_form("/t/acme/settings/stripe", {"stripe__secret_key": STRIPE_KEY}),
        "405": admin.client.put("/t/acme/settings", data={"stripe__secret_key": STRIPE_KEY}),
    }
    monkeypatch.setattr(values, "apply_changes", _raise_with_secret)
    pages["500"] = admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})

    for name, response in pages.items():
        assert response.status_code == int(name[:3]), name
        _assert_no_secret(response.get_data(as_text=True), f"the {name} page")


def test_flash_and_pages_show_no_secret(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "slack", {"slack.webhook_url": WEBHOOK})
    admin.save("acme", "smtp", {"smtp.password": SMTP_PASSWORD})

    pages = {
        "settings with flash": admin.get("/t/acme/settings").text,
        "activity": admin.get("/t/acme/activity").text,
        "member settings": make_browser(world.acme_member).get("/t/acme/settings").text,
        "chooser": make_browser(world.both_admin).get("/").text,
    }
    for name, html in pages.items():
        _assert_no_secret(html, f"the {name} page")


def test_debug_logs_hold_no_secret(app, world, make_browser, caplog):
    caplog.set_level(logging.DEBUG)
    admin = make_browser(world.acme_admin)

    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "slack", {"slack.webhook_url": WEBHOOK})
    admin.save("acme", "smtp", {"smtp.password": SMTP_PASSWORD, "smtp.port": "70000"})
    admin.save("acme", "smtp", {"smtp.password": SMTP_PASSWORD})
    admin.client.post("/t/acme/settings/smtp", data={"smtp__password": SMTP_PASSWORD})
    make_browser(world.globex_admin).post_form("/t/acme/settings/smtp", {"smtp__password": SMTP_PASSWORD})
    with app.app_context():
        resolve("acme", "smtp.password")

    assert "Config smtp.password set for tenant acme" in caplog.text
    _assert_no_secret(caplog.text, "the log")


def test_audit_rows_hold_no_secret(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "smtp", {"smtp.password": SMTP_PASSWORD})
    admin.post_form("/t/acme/settings/keys/stripe.secret_key/remove", {})

    with app.app_context():
        events = db.session.scalars(select(AuditEvent)).all()
        text = " ".join(f"{event.actor_label} {event.action} {event.key} {event.client_address}" for event in events)
    assert len(events) == 3
    _assert_no_secret(text, "the audit table")


def test_reprs_hold_no_secret(app, world):
    _store_secrets(app)
    with app.app_context():
        texts = [repr(row) for row in db.session.scalars(select(ConfigValue))]
        texts += [repr(row) for row in db.session.scalars(select(TenantDataKey))]
        texts += [repr(resolve("acme", name)) for name in ("stripe.secret_key", "slack.webhook_url", "smtp.password")]
        texts += [str(resolve("acme", "smtp.password")), f"{resolve('acme', 'smtp.password'):>40}"]
        texts += [repr(app.config["KEYRING"]), repr(app.extensions["tenant_config.data_key_cache"])]
        texts += [repr(values.describe(find_tenant("acme"))), repr(app.extensions["tenant_config.decryptable_values"])]
        wrapped = db.session.scalars(select(TenantDataKey.wrapped_key)).all()
        ciphertexts = db.session.scalars(select(ConfigValue.value).where(ConfigValue.data_key_version.is_not(None))).all()

    text = "\n".join(texts)
    _assert_no_secret(text, "a repr")
    for blob in wrapped + ciphertexts:
        assert blob not in text


def test_cli_output_holds_no_secret(app, world):
    _store_secrets(app)
    runner = app.test_cli_runner()

    listing = runner.invoke(args=["config", "list", "--tenant", "acme"])
    rejected = runner.invoke(args=["config", "set", "--tenant", "acme", "stripe.secret_key"], input="sk_live_Atk9Qw3Er5Ty7Ui1Op!\n")

    assert listing.exit_code == 0
    assert rejected.exit_code == 1
    _assert_no_secret(listing.output, "config list")
    _assert_no_secret(rejected.output, "a config set error")


# Input

@pytest.mark.parametrize("field, value, message", [
    ("smtp.password", "pass\x00word-1", "must not contain a NUL character"),
    ("smtp.password", "pass\r\nword-1", "single line"),
    ("smtp.username", "mailer\nBcc: x@evil.example", "single line"),
    ("smtp.password", "pass\u200bword-1", "U+200B"),
    ("smtp.password", "pass\u202eword-1", "U+202E"),
    ("smtp.host", "smtp.\u202eelpmaxe.com", "U+202E"),
    ("smtp.port", "５８７", "must be a whole number"),
    ("smtp.port", "٥٨٧", "must be a whole number"),
    ("smtp.port", "-1", "must be a whole number"),
    ("smtp.port", "0", "between 1 and 65535"),
    ("smtp.host", "smtp.ex\u0430mple.com", "SMTP host must be a host name"),
    ("smtp.from_address", "billing@acme.example\r\nBcc: x@evil.example", "single line"),
    ("smtp.security", "starttls\u200b", "U+200B"),
    ("smtp.security", "STARTTLS", "must be one of"),
    ("smtp.password", "x" * 100_000, "at most 256 characters"),
    ("smtp.host", "a" * 100_000, "at most 253 characters"),
    ("stripe.secret_key", "sk_live_" + "а" * 20, "followed by letters and digits only"),
    ("slack.webhook_url", "https://hooks.slack.com.evil.example/services/T0/B0/x", "https URL on hooks.slack.com"),
    ("slack.webhook_url", "https://hooks.slack.com@evil.example/services/T0/B0/x", "must not contain a user name"),
    ("slack.webhook_url", "https://evil.example\\@hooks.slack.com/services/T0/B0/x", "must not contain a user name"),
    ("slack.webhook_url", "https://hooks.slack.com:8443/services/T0/B0/x", "on port 443"),
    ("slack.webhook_url", "https://һooks.slack.com/services/T0/B0/x", "https URL on hooks.slack.com"),
    ("slack.webhook_url", "http://hooks.slack.com/services/T0/B0/x", "https URL on hooks.slack.com"),
])
def test_bad_input_gets_field_message(app, world, make_browser, field, value, message):
    _store_secrets(app)
    before = _rows(app)
    admin = make_browser(world.acme_admin)
    group = field.split(".")[0]

    fields = {field: value}
    if group == "smtp" and field != "smtp.port":
        fields["smtp.port"] = "2525"  # a valid field next to the bad one, which must not be saved either

    response = admin.save("acme", group, fields)

    assert response.status_code == 400
    assert message in response.text
    assert _rows(app) == before


@pytest.mark.parametrize("value", [
    "https://[hooks.slack.com/services/T0ATK/B0ATK/Atk4Webhook8Path2",
    "https://hooks.slack.com／services／T0ATK／B0ATK／Atk4Webhook8Path2",
])
def test_malformed_webhook_url_gets_400(app, world, make_browser, value):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    admin = make_browser(world.acme_admin)

    response = admin.save("acme", "slack", {"slack.webhook_url": value})

    assert response.status_code == 400
    assert "Slack webhook URL must" in response.text
    assert "slack.webhook_url" not in _rows(app)


def test_malformed_webhook_url_not_logged(app, world, make_browser, caplog):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    caplog.set_level(logging.DEBUG)
    admin = make_browser(world.acme_admin)

    admin.save("acme", "slack", {"slack.webhook_url": "https://hooks.slack.com／services／T0ATK／B0ATK／Atk4Webhook8Path2"})

    _assert_no_secret(caplog.text, "the log")


def test_cli_set_malformed_webhook_url(app, world):
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["config", "set", "--tenant", "acme", "slack.webhook_url"],
        input="https://hooks.slack.com／services／T0ATK／B0ATK／Atk4Webhook8Path2\n",
    )

    assert result.exit_code == 1
    assert "Slack webhook URL must" in result.output
    _assert_no_secret(repr(result.exception), "the config set exception")


def test_cli_set_non_utf8_input(app, world):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.password"], input=b"p\xe4ssword-Atk1\n")

    assert result.exit_code == 1
    assert "smtp.password" in result.output
    assert "smtp.password" not in _rows(app)


def test_non_utf8_form_value_is_rejected(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    body = b"smtp__password=p%E4ssword-Atk1&csrf_token=" + admin.token().encode()

    response = _post_raw(admin.client, "/t/acme/settings/smtp", body)

    assert response.status_code == 400
    assert "smtp.password" not in _rows(app)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029"])
def test_line_separator_in_webhook_is_rejected(app, world, make_browser, separator):
    admin = make_browser(world.acme_admin)
    response = admin.save("acme", "slack", {"slack.webhook_url": f"{WEBHOOK}?x={separator}"})

    assert response.status_code == 400
    assert "slack.webhook_url" not in _rows(app)


def test_other_group_fields_are_ignored(app, world, make_browser):
    _store_secrets(app)
    before = _rows(app)
    admin = make_browser(world.acme_admin)

    response = admin.save("acme", "slack", {
        "stripe.secret_key": "sk_test_Injected1", "smtp.password": "", "smtp.host": "", "smtp.port": "1",
    })

    assert response.status_code == 302
    assert _rows(app) == before


def test_unknown_and_many_fields_are_ignored(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    fields = {f"field{index}": "x" for index in range(5000)}
    response = admin.post_form("/t/acme/settings/smtp", {
        **fields, "smtp__port": "2525", "tenant_id": "globex", "slug": "globex", "smtp__port__extra": "1",
    })

    assert response.status_code == 302
    assert _rows(app)["smtp.port"] == ("2525", 1)
    assert "smtp.port" not in _rows(app, "globex")


def test_duplicated_secret_field_rejects_mask(app, world, make_browser):
    _store_secrets(app)
    before = _rows(app)
    admin = make_browser(world.acme_admin)
    body = b"smtp__password=********&smtp__password=new-Atk-pass-1&csrf_token=" + admin.token().encode()

    response = _post_raw(admin.client, "/t/acme/settings/smtp", body)

    assert response.status_code == 400
    assert _rows(app) == before


def test_malformed_form_bodies_change_nothing(app, world, make_browser):
    _store_secrets(app)
    before = _rows(app)
    admin = make_browser(world.acme_admin)
    token = admin.token().encode()

    bodies = [
        b"smtp__port=%ZZ&csrf_token=" + token,
        b"smtp__port&csrf_token=" + token,
        b"=25&&&csrf_token=" + token,
        b"\xff\xfe\x00\x01",
    ]
    for body in bodies:
        assert _post_raw(admin.client, "/t/acme/settings/smtp", body).status_code in (302, 400), body
    broken_multipart = admin.client.post(
        "/t/acme/settings/smtp", data=b"--x\r\nbroken", content_type="multipart/form-data; boundary=x",
    )

    assert broken_multipart.status_code == 400
    assert _rows(app)["smtp.password"] == before["smtp.password"]
    assert _rows(app)["stripe.secret_key"] == before["stripe.secret_key"]


def test_oversized_body_is_rejected(app, world, browser):
    body = b"email=" + b"a" * (16 * 1024 * 1024) + b"&password=x"
    response = _post_raw(browser.client, "/login", body)
    assert response.status_code == 413


def test_plain_values_are_escaped(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", {"smtp.username": '"><script>alert(1)</script>'})

    for html in (admin.get("/t/acme/settings").text, make_browser(world.acme_member).get("/t/acme/settings").text):
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;" in html


# Masked values and empty secret inputs

@pytest.mark.parametrize("field, masked", [
    ("smtp.password", "********"),
    ("smtp.password", "  ********  "),
    ("smtp.password", "'********'"),
    ("smtp.password", "***"),
    ("smtp.password", "****1234"),
    ("smtp.password", "pass****"),
    ("smtp.password", "＊＊＊＊＊＊＊＊"),
    ("stripe.secret_key", "sk_live_********"),
    ("stripe.secret_key", "********"),
    ("stripe.secret_key", "sk_live_••••••••Op"),
    ("slack.webhook_url", "********"),
    ("slack.webhook_url", "https://hooks.slack.com/services/T0ATK/B0ATK/********"),
])
def test_masked_value_is_never_saved(app, world, make_browser, field, masked):
    _store_secrets(app)
    before = _rows(app)
    admin = make_browser(world.acme_admin)

    response = admin.save("acme", field.split(".")[0], {field: masked})

    assert response.status_code == 400
    assert _rows(app) == before


def test_cli_rejects_masked_value_from_listing(app, world):
    _store_secrets(app)
    before = _rows(app)
    runner = app.test_cli_runner()

    listing = runner.invoke(args=["config", "list", "--tenant", "acme"]).output
    masked = next(line.split()[1] for line in listing.splitlines() if line.startswith("smtp.password"))
    result = runner.invoke(args=["config", "set", "--tenant", "acme", "smtp.password"], input=masked + "\n")

    assert result.exit_code == 1
    assert "masked value" in result.output
    assert _rows(app) == before


@pytest.mark.parametrize("empty", ["", "   ", "\t", "\u00a0"])
def test_empty_secret_keeps_stored_value(app, world, make_browser, empty):
    _store_secrets(app)
    before = _rows(app)
    admin = make_browser(world.acme_admin)

    response = admin.save("acme", "smtp", {"smtp.password": empty, "smtp.host": "smtp.acme.example"})

    assert response.status_code == 302
    assert _rows(app) == before
    with app.app_context():
        assert resolve("acme", "smtp.password").reveal() == SMTP_PASSWORD


# CSRF

def _expire_tokens(monkeypatch, seconds: int):
    now = time.time()
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: now + seconds)


@pytest.mark.parametrize("path, data", [
    ("/t/acme/settings/smtp", {"smtp__port": "25"}),
    ("/t/acme/settings/keys/smtp.password/remove", {}),
    ("/logout", {}),
])
@pytest.mark.parametrize("case", ["missing", "empty", "truncated", "other session", "expired", "from form field"])
def test_bad_csrf_token_changes_nothing(app, world, make_browser, monkeypatch, path, data, case):
    _store_secrets(app)
    before = _rows(app)
    admin = make_browser(world.acme_admin)
    token = admin.token()

    tokens = {
        "missing": None,
        "empty": "",
        "truncated": token[:-4],
        "other session": make_browser(world.globex_admin).token(),
        "expired": token,
        "from form field": "csrf_token",
    }
    if case == "expired":
        _expire_tokens(monkeypatch, app.config["WTF_CSRF_TIME_LIMIT"] + 60)
    form = dict(data) if tokens[case] is None else {**data, "csrf_token": tokens[case]}
    response = admin.client.post(path, data=form)

    assert response.status_code == 400
    assert _rows(app) == before
    assert admin.get("/t/acme/settings").status_code == 200


@pytest.mark.parametrize("case", ["missing", "truncated", "expired"])
def test_login_needs_valid_csrf(app, world, browser, monkeypatch, case):
    token = browser.token()
    tokens = {"missing": "", "truncated": token[:-4], "expired": token}
    if case == "expired":
        _expire_tokens(monkeypatch, app.config["WTF_CSRF_TIME_LIMIT"] + 60)

    response = browser.client.post("/login", data={"email": world.acme_admin, "password": PASSWORD, "csrf_token": tokens[case]})

    assert response.status_code == 400
    assert browser.get("/t/acme/settings").status_code == 302


def test_csrf_token_rotates_at_login(app, world, browser):
    token_before_login = browser.token()
    browser.client.post("/login", data={"email": world.acme_admin, "password": PASSWORD, "csrf_token": token_before_login})

    response = browser.client.post("/t/acme/settings/smtp", data={"smtp__port": "25", "csrf_token": token_before_login})

    assert response.status_code == 400
    assert "smtp.port" not in _rows(app)


# Login and session

@pytest.mark.parametrize("next_path", [
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/%09/evil.example",
    " //evil.example",
    "https:evil.example",
    "https:/evil.example",
    "HTTPS://evil.example",
    "evil.example",
    "data:text/html,<script>alert(1)</script>",
    "javascript://%0aalert(1)",
    "/t/acme/settings\nSet-Cookie: x=1",
])
def test_login_next_never_leaves_site(app, world, browser, next_path):
    token = browser.token()
    response = browser.client.post(
        "/login", query_string={"next": next_path},
        data={"email": world.acme_admin, "password": PASSWORD, "csrf_token": token},
    )

    assert response.status_code == 302
    assert response.location.startswith("/")
    assert not response.location.startswith("//")
    assert "\\" not in response.location


@pytest.mark.parametrize("email, password", [
    ("admin@acme.example", "wrong password"),
    ("nobody@acme.example", "wrong password"),
    ("nobody@acme.example", PASSWORD),
    ("ADMIN@ACME.EXAMPLE", "wrong password"),
])
def test_failed_logins_look_alike(app, world, browser, email, password):
    response = browser.login(email, password)
    body = response.text.replace(email, "EMAIL")

    assert response.status_code == 400
    assert "The email or password is incorrect." in body
    assert len(body) == len(browser.login("someone@else.example", "wrong password").text.replace("someone@else.example", "EMAIL"))


def test_nul_in_login_email_gets_400(app, world, browser):
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = browser.login("admin\x00@acme.example")
    assert response.status_code == 400


def test_unknown_email_checks_configured_hash(app):
    from tenant_config.accounts import dummy_hash

    method = app.config["PASSWORD_HASH_METHOD"]
    assert dummy_hash(method).startswith(method + "$")


def test_session_cookie_dies_at_logout(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    stolen = admin.client.get_cookie("session").value
    admin.post_form("/logout", {})

    replay = app.test_client()
    replay.set_cookie("session", stolen)

    assert admin.get("/t/acme/settings").status_code == 302
    assert replay.get("/t/acme/settings").status_code == 302


def test_session_cookie_flags(app, world, browser):
    response = browser.login(world.acme_admin)
    cookie = next(header for header in response.headers.getlist("Set-Cookie") if header.startswith("session="))

    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_production_session_cookie_is_secure(tmp_path):
    # Built from the environment alone, because test fixtures may turn the flag off to log in over plain HTTP.
    environ = {"CONFIG_ENCRYPTION_KEY": MASTER_KEY, "SECRET_KEY": SECRET_KEY, "DATABASE_URL": "sqlite://"}
    production = create_app(environ=environ, instance_path=str(tmp_path))
    assert production.config["SESSION_COOKIE_SECURE"] is True


def test_logged_in_session_gets_new_cookie(app, world, browser):
    browser.token()
    anonymous = browser.client.get_cookie("session").value
    browser.login(world.acme_admin)
    assert browser.client.get_cookie("session").value != anonymous


# Stored ciphertext

def _acme_row(key: str) -> ConfigValue:
    return db.session.scalars(
        select(ConfigValue).where(ConfigValue.tenant_id == find_tenant("acme").id, ConfigValue.key == key)
    ).one()


def _acme_data_key() -> TenantDataKey:
    return db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == find_tenant("acme").id)).one()


def _globex_data_key() -> TenantDataKey:
    return db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == find_tenant("globex").id)).one()


def _globex_stripe_value() -> str:
    return db.session.scalars(
        select(ConfigValue.value).where(ConfigValue.tenant_id == find_tenant("globex").id, ConfigValue.key == "stripe.secret_key")
    ).one()


TAMPERING = {
    "value truncated": lambda: setattr(_acme_row("stripe.secret_key"), "value", _acme_row("stripe.secret_key").value[:30]),
    "value emptied": lambda: setattr(_acme_row("stripe.secret_key"), "value", ""),
    "value not base64": lambda: setattr(_acme_row("stripe.secret_key"), "value", "!!!!" * 20),
    "value not ASCII": lambda: setattr(_acme_row("stripe.secret_key"), "value", "é" * 80),
    "value from other tenant": lambda: setattr(_acme_row("stripe.secret_key"), "value", _globex_stripe_value()),
    "value from other key": lambda: setattr(_acme_row("stripe.secret_key"), "value", _acme_row("smtp.password").value),
    "data key version null": lambda: setattr(_acme_row("stripe.secret_key"), "data_key_version", None),
    "wrapped key truncated": lambda: setattr(_acme_data_key(), "wrapped_key", _acme_data_key().wrapped_key[:40]),
    "wrapped key not ASCII": lambda: setattr(_acme_data_key(), "wrapped_key", "é" * 60),
    "wrapped key from other tenant": lambda: setattr(_acme_data_key(), "wrapped_key", _globex_data_key().wrapped_key),
    "unknown master key id": lambda: setattr(_acme_data_key(), "master_key_id", "0" * 16),
    "master key id reversed": lambda: setattr(_acme_data_key(), "master_key_id", _acme_data_key().master_key_id[::-1]),
}


def _renumber_data_key():
    _acme_data_key().version = 2
    _acme_row("stripe.secret_key").data_key_version = 2


@pytest.mark.parametrize("case", list(TAMPERING))
def test_tampered_storage_raises_decryption_error(app, world, case):
    _store_secrets(app)
    with app.app_context():
        TAMPERING[case]()
        db.session.commit()
        app.extensions["tenant_config.data_key_cache"].clear()

        with pytest.raises(DecryptionError) as raised:
            resolve("acme", "stripe.secret_key")

    assert type(raised.value) is DecryptionError
    assert "stripe.secret_key" in str(raised.value)
    _assert_no_secret(str(raised.value), "the exception message")


def _point_at_missing_data_key():
    _acme_row("stripe.secret_key").data_key_version = 2


@pytest.mark.parametrize("tamper", [_point_at_missing_data_key, _renumber_data_key])
def test_database_rejects_missing_data_key(app, world, tamper):
    from sqlalchemy.exc import IntegrityError

    _store_secrets(app)
    with app.app_context():
        with pytest.raises(IntegrityError):
            tamper()
            db.session.commit()
        db.session.rollback()
        assert resolve("acme", "stripe.secret_key").reveal() == STRIPE_KEY


def test_tampered_secret_keeps_page_working(app, world, make_browser):
    _store_secrets(app)
    with app.app_context():
        _acme_row("stripe.secret_key").value = "garbage"
        db.session.commit()
    admin = make_browser(world.acme_admin)

    assert admin.get("/t/acme/settings").status_code == 200
    assert admin.save("acme", "stripe", {"stripe.secret_key": "sk_test_Fresh1"}).status_code == 302
    with app.app_context():
        assert resolve("acme", "stripe.secret_key").reveal() == "sk_test_Fresh1"
