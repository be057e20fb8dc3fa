import re

import pytest
from sqlalchemy import select

from tenant_config import values
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.crypto import DecryptionError
from tenant_config.extensions import db
from tenant_config.models import AuditEvent, ConfigValue, TenantDataKey
from tenant_config.resolver import resolve
from tests.conftest import MASTER_KEY, Browser

STRIPE_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
WEBHOOK = "https://hooks.slack.com/services/T0ACME/B0ACME/q8WzHk2LmNp4RsTv"
SMTP_PASSWORD = "Zq7-smtp-pass-Kp3"

SMTP_FIELDS = {
    "smtp.host": "smtp.acme.example",
    "smtp.port": "2525",
    "smtp.security": "tls",
    "smtp.username": "mailer",
    "smtp.password": SMTP_PASSWORD,
    "smtp.from_address": "billing@acme.example",
}


def _resolve(app, slug, name):
    with app.app_context():
        return resolve(slug, name)


def _rows(app, slug="acme"):
    with app.app_context():
        from tenant_config.accounts import find_tenant
        tenant = find_tenant(slug)
        return {row.key: (row.value, row.row_version) for row in db.session.scalars(
            select(ConfigValue).where(ConfigValue.tenant_id == tenant.id)
        )}


def _secret_inputs(html: str) -> list[str]:
    return re.findall(r'<input[^>]*type="password"[^>]*>', html)


def test_admin_sets_all_integrations(app, world, make_browser):
    admin = make_browser(world.acme_admin)

    assert admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY}).status_code == 302
    assert admin.save("acme", "slack", {"slack.webhook_url": WEBHOOK}).status_code == 302
    assert admin.save("acme", "smtp", SMTP_FIELDS).status_code == 302

    assert _resolve(app, "acme", "stripe.secret_key").reveal() == STRIPE_KEY
    assert _resolve(app, "acme", "slack.webhook_url").reveal() == WEBHOOK
    assert _resolve(app, "acme", "smtp.password").reveal() == SMTP_PASSWORD
    assert _resolve(app, "acme", "smtp.port") == "2525"
    assert _resolve(app, "acme", "smtp.security") == "tls"

    page = admin.get("/t/acme/settings").text
    assert page.count("badge-set") == 3
    assert 'value="smtp.acme.example"' in page
    assert 'value="2525"' in page


def test_pages_never_contain_secrets(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "slack", {"slack.webhook_url": WEBHOOK})
    after_save = admin.save("acme", "smtp", SMTP_FIELDS)
    after_error = admin.save("acme", "smtp", {**SMTP_FIELDS, "smtp.port": "70000", "smtp.password": "new-" + SMTP_PASSWORD})
    assert after_error.status_code == 400

    pages = {
        "redirect after save": after_save.get_data(as_text=True),
        "settings": admin.get("/t/acme/settings").text,
        "validation error": after_error.text,
        "activity": admin.get("/t/acme/activity").text,
        "member view": make_browser(world.acme_member).get("/t/acme/settings").text,
    }
    for name, html in pages.items():
        for secret in (STRIPE_KEY, WEBHOOK, SMTP_PASSWORD, "new-" + SMTP_PASSWORD):
            assert secret not in html, f"{name} page shows a secret"
            assert secret[-12:] not in html, f"{name} page shows the end of a secret"


def test_secret_inputs_render_without_value(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    error_page = admin.save("acme", "stripe", {"stripe.secret_key": "pk_live_abc"}).text

    for html in (admin.get("/t/acme/settings").text, error_page):
        inputs = _secret_inputs(html)
        assert len(inputs) >= 1
        for tag in inputs:
            assert "value=" not in tag
            assert 'autocomplete="new-password"' in tag


def test_empty_secret_keeps_stored_value(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", SMTP_FIELDS)
    before = _rows(app)["smtp.password"]

    response = admin.save("acme", "smtp", {**SMTP_FIELDS, "smtp.password": "", "smtp.security": "starttls"})

    assert response.status_code == 302
    assert _rows(app)["smtp.password"] == before
    assert _resolve(app, "acme", "smtp.password").reveal() == SMTP_PASSWORD
    assert _resolve(app, "acme", "smtp.security") == "starttls"


@pytest.mark.parametrize("field, value", [
    ("smtp.host", "smtp.attacker.example"),
    ("smtp.port", "587"),
    ("smtp.username", "someone-else"),
])
def test_bound_password_needs_reentry(app, world, make_browser, field, value):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", SMTP_FIELDS)
    before = _rows(app)

    response = admin.save("acme", "smtp", {**SMTP_FIELDS, "smtp.password": "", field: value})

    assert response.status_code == 400
    assert "Enter the SMTP password again, or remove it first" in response.text
    assert _rows(app) == before

    again = admin.save("acme", "smtp", {**SMTP_FIELDS, "smtp.password": "new-password-99", field: value})
    assert again.status_code == 302
    assert _resolve(app, "acme", field) == value
    assert _resolve(app, "acme", "smtp.password").reveal() == "new-password-99"


def test_removed_password_allows_host_change(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", SMTP_FIELDS)
    admin.post_form("/t/acme/settings/keys/smtp.password/remove", {})

    response = admin.save("acme", "smtp", {**SMTP_FIELDS, "smtp.password": "", "smtp.host": "smtp.new.example"})

    assert response.status_code == 302
    assert _resolve(app, "acme", "smtp.host") == "smtp.new.example"
    assert "smtp.password" not in _rows(app)


def test_typing_secret_replaces_it(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "stripe", {"stripe.secret_key": "rk_live_replacement1"})

    assert _resolve(app, "acme", "stripe.secret_key").reveal() == "rk_live_replacement1"
    assert _rows(app)["stripe.secret_key"][1] == 2


def test_remove_clears_secret(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "slack", {"slack.webhook_url": WEBHOOK})
    response = admin.post_form("/t/acme/settings/keys/slack.webhook_url/remove", {})

    assert response.status_code == 302
    assert "slack.webhook_url" not in _rows(app)
    assert "Not set" in admin.get("/t/acme/settings").text


@pytest.mark.parametrize("masked", ["********", "••••••••", "sk_live_****1234", "●●●●●●"])
def test_masked_secret_is_rejected(app, world, make_browser, masked):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    response = admin.save("acme", "stripe", {"stripe.secret_key": masked})

    assert response.status_code == 400
    assert "looks like a masked value" in response.text
    assert _resolve(app, "acme", "stripe.secret_key").reveal() == STRIPE_KEY


def test_publishable_key_is_rejected(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    response = admin.save("acme", "stripe", {"stripe.secret_key": "pk_live_51HabcdefGhijkl"})

    assert response.status_code == 400
    assert "publishable key" in response.text
    assert "secret key" in response.text
    assert "stripe.secret_key" not in _rows(app)


def test_invalid_field_changes_nothing(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", SMTP_FIELDS)
    before = _rows(app)

    response = admin.save("acme", "smtp", {
        **SMTP_FIELDS, "smtp.host": "new.acme.example", "smtp.password": "another-password", "smtp.from_address": "nope",
    })

    assert response.status_code == 400
    assert "From address must be an email address" in response.text
    assert 'aria-describedby="smtp__from_address-help smtp__from_address-error"' in response.text
    assert 'value="new.acme.example"' in response.text
    assert _rows(app) == before


def test_save_changes_only_touched_fields(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", SMTP_FIELDS)
    before = _rows(app)

    admin.save("acme", "smtp", {"smtp.security": "starttls"})
    after = _rows(app)

    assert after["smtp.security"] == ("starttls", before["smtp.security"][1] + 1)
    for name in ("smtp.host", "smtp.port", "smtp.username", "smtp.password", "smtp.from_address"):
        assert after[name] == before[name], name


def test_member_sees_read_only_page(app, world, make_browser):
    make_browser(world.acme_admin).save("acme", "smtp", SMTP_FIELDS)
    member = make_browser(world.acme_member)

    page = member.get("/t/acme/settings")
    assert page.status_code == 200
    assert "smtp.acme.example" in page.text
    assert "<form method=\"post\" action=\"/t/acme/settings/" not in page.text
    assert _secret_inputs(page.text) == []
    assert "Only the tenant's admins can change these settings." in page.text


@pytest.mark.parametrize("path", [
    "/t/acme/settings/stripe",
    "/t/acme/settings/smtp",
    "/t/acme/settings/keys/smtp.password/remove",
])
def test_member_cannot_write(app, world, make_browser, path):
    make_browser(world.acme_admin).save("acme", "smtp", SMTP_FIELDS)
    before = _rows(app)
    member = make_browser(world.acme_member)

    response = member.post_form(path, {"stripe__secret_key": STRIPE_KEY, "smtp__port": "25"})

    assert response.status_code == 403
    assert _rows(app) == before


def test_member_cannot_see_activity(app, world, make_browser):
    assert make_browser(world.acme_member).get("/t/acme/activity").status_code == 403


TENANT_URLS = [
    ("GET", "/t/globex/settings"),
    ("GET", "/t/globex/activity"),
    ("POST", "/t/globex/settings/stripe"),
    ("POST", "/t/globex/settings/smtp"),
    ("POST", "/t/globex/settings/nosuchgroup"),
    ("POST", "/t/globex/settings/keys/stripe.secret_key/remove"),
    ("GET", "/t/nosuchtenant/settings"),
    ("POST", "/t/nosuchtenant/settings/stripe"),
]


@pytest.mark.parametrize("method, path", TENANT_URLS)
@pytest.mark.parametrize("with_token", [True, False])
def test_other_tenant_gets_404(app, world, make_browser, method, path, with_token):
    make_browser(world.globex_admin).save("globex", "stripe", {"stripe.secret_key": STRIPE_KEY})
    before = _rows(app, "globex")
    outsider = make_browser(world.acme_admin)

    data = {"stripe__secret_key": "sk_test_hijacked1", "csrf_token": outsider.token() if with_token else ""}
    response = outsider.client.open(path, method=method, data=data if method == "POST" else None)

    assert response.status_code == 404
    assert "Globex" not in response.text
    assert _rows(app, "globex") == before


def test_post_without_csrf_is_rejected(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    response = admin.client.post("/t/acme/settings/stripe", data={"stripe__secret_key": STRIPE_KEY})

    assert response.status_code == 400
    assert "form has expired" in response.text
    assert "stripe.secret_key" not in _rows(app)


def test_post_with_forged_csrf_is_rejected(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    other = make_browser(world.globex_admin)
    response = admin.client.post(
        "/t/acme/settings/stripe", data={"stripe__secret_key": STRIPE_KEY, "csrf_token": other.token()}
    )

    assert response.status_code == 400
    assert "stripe.secret_key" not in _rows(app)


def test_anonymous_is_sent_to_login(app, world, browser):
    response = browser.get("/t/acme/settings")
    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


def test_activity_lists_changes_newest_first(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "stripe", {"stripe.secret_key": "sk_test_second1"})
    admin.post_form("/t/acme/settings/keys/stripe.secret_key/remove", {})

    page = admin.get("/t/acme/activity").text
    actions = re.findall(r"<td>(set|replace|clear)</td>", page)
    assert actions == ["clear", "replace", "set"]
    assert page.count(world.acme_admin) >= 3
    assert "127.0.0.1" in page

    with app.app_context():
        events = db.session.scalars(select(AuditEvent)).all()
        assert {event.key for event in events} == {"stripe.secret_key"}
        assert all(event.client_address == "127.0.0.1" for event in events)


def test_unchanged_save_records_nothing(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", {"smtp.host": "smtp.acme.example"})
    admin.save("acme", "smtp", {"smtp.host": "smtp.acme.example"})

    with app.app_context():
        events = db.session.scalars(select(AuditEvent)).all()
    assert [event.action for event in events] == ["set"]


def _damage(app, slug: str, name: str) -> str:
    """Flip one character in the middle of a stored ciphertext and return the damaged text."""
    with app.app_context():
        from tenant_config.accounts import find_tenant
        tenant = find_tenant(slug)
        row = db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id, ConfigValue.key == name)).one()
        middle = len(row.value) // 2
        row.value = row.value[:middle] + ("A" if row.value[middle] != "A" else "B") + row.value[middle + 1:]
        db.session.commit()
        return row.value


def test_undecryptable_secret_degrades_page(app, world, make_browser, caplog):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    admin.save("acme", "slack", {"slack.webhook_url": WEBHOOK})
    admin.save("acme", "smtp", SMTP_FIELDS)
    make_browser(world.globex_admin).save("globex", "stripe", {"stripe.secret_key": "sk_test_globexUnharmed1"})
    _damage(app, "acme", "stripe.secret_key")

    page = admin.get("/t/acme/settings")
    member_page = make_browser(world.acme_member).get("/t/acme/settings")

    assert page.status_code == 200
    assert page.text.count("Cannot be decrypted") == 1
    assert "Enter it again to replace the stored value." in page.text
    assert page.text.count("badge-set") == 2
    assert member_page.status_code == 200
    assert "Cannot be decrypted" in member_page.text
    assert "An admin must enter it again." in member_page.text
    assert "Cannot be decrypted" not in make_browser(world.globex_admin).get("/t/globex/settings").text
    assert "stripe.secret_key of tenant acme" in caplog.text

    with app.app_context():
        with pytest.raises(DecryptionError, match="'stripe.secret_key' for tenant 'acme'"):
            resolve("acme", "stripe.secret_key")
    assert _resolve(app, "acme", "slack.webhook_url").reveal() == WEBHOOK
    assert _resolve(app, "acme", "smtp.password").reveal() == SMTP_PASSWORD
    assert _resolve(app, "globex", "stripe.secret_key").reveal() == "sk_test_globexUnharmed1"


def test_damage_after_view_shows_next_view(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    assert "Cannot be decrypted" not in admin.get("/t/acme/settings").text

    _damage(app, "acme", "stripe.secret_key")

    assert admin.get("/t/acme/settings").text.count("Cannot be decrypted") == 1


def test_changed_master_key_id_shows_on_next_view(world, make_app):
    # Room for one data key, so that viewing globex evicts acme's key as other tenants' traffic would.
    app = make_app(MASTER_KEY, DATA_KEY_CACHE_SIZE=1)
    with app.app_context():
        values.set_value(find_tenant("acme"), "stripe.secret_key", STRIPE_KEY, Actor.cli())
        values.set_value(find_tenant("globex"), "stripe.secret_key", "sk_test_globexUnharmed1", Actor.cli())
    admin = Browser(app.test_client())
    admin.login(world.both_admin)
    assert "Cannot be decrypted" not in admin.get("/t/acme/settings").text

    with app.app_context():
        data_key = db.session.scalars(select(TenantDataKey).where(TenantDataKey.tenant_id == find_tenant("acme").id)).one()
        data_key.master_key_id = "0" * 16
        db.session.commit()
    admin.get("/t/globex/settings")

    assert admin.get("/t/acme/settings").text.count("Cannot be decrypted") == 1


def test_saving_repairs_undecryptable_secret(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    admin.save("acme", "smtp", SMTP_FIELDS)
    damaged = _damage(app, "acme", "smtp.password")

    kept = admin.save("acme", "smtp", {**SMTP_FIELDS, "smtp.password": "", "smtp.security": "starttls"})
    assert kept.status_code == 302
    assert _rows(app)["smtp.password"][0] == damaged

    repaired = admin.save("acme", "smtp", {"smtp.password": "pw-entered-again-1"})
    assert repaired.status_code == 302
    assert _resolve(app, "acme", "smtp.password").reveal() == "pw-entered-again-1"
    assert "Cannot be decrypted" not in admin.get("/t/acme/settings").text


def test_cli_lists_undecryptable_secret(app, world, make_browser):
    make_browser(world.acme_admin).save("acme", "stripe", {"stripe.secret_key": STRIPE_KEY})
    _damage(app, "acme", "stripe.secret_key")

    listing = app.test_cli_runner().invoke(args=["config", "list", "--tenant", "acme"])

    assert listing.exit_code == 0
    assert "stripe.secret_key    (cannot be decrypted, set it again)" in listing.output
