"""The pages in headless Chromium, driven by Playwright, against a live server and the loopback stubs.

These tests run on SQLite only, because one live server for the module keeps
them short, and the other test modules cover PostgreSQL. Each test works in a
tenant of its own, so the tests share the server and the browser but no data.
Each page is saved as a screenshot in test-artifacts/screenshots/, named by
page and state.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from werkzeug.serving import make_server

from tenant_config import audit, create_app, values
from tenant_config.accounts import create_tenant, create_user, find_tenant, find_user, grant
from tenant_config.audit import Actor
from tenant_config.extensions import db
from tenant_config.models import ConfigValue, utcnow
from tenant_config.resolver import resolve
from tests.conftest import PASSWORD, ROOT, Database, _migrate, remember_secret
from tests.servers import HttpStub, Reply, SmtpServer, StripeStub

CHROMIUM = Path("/usr/bin/chromium")
# Without the networking flags Chromium calls Google's services at start, which a closed network refuses.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# The outline that static/style.css gives every :focus-visible element.
FOCUS_OUTLINE = ("solid", "3px", "rgb(194, 65, 12)")

if not CHROMIUM.exists():
    _reason = f"{CHROMIUM} is missing. `make test` installs Debian's chromium package when it runs as root."
    if os.environ.get("TEST_REQUIRE_CHROMIUM"):
        pytest.fail(_reason + " TEST_REQUIRE_CHROMIUM is set, so the browser tests must run.", pytrace=False)
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402  (only once Chromium is known to exist)

STRIPE_KEY = remember_secret("sk_test_browserKey7Hq2Lm")
SMTP_PASSWORD = remember_secret("browser-Smtp-Pw-93")
TYPED_PASSWORD = remember_secret("typed-Then-Rejected-41")


@dataclass
class Stubs:
    stripe: StripeStub
    slack: HttpStub
    smtp: SmtpServer

    def webhook(self, slug: str) -> str:
        return remember_secret(f"http://127.0.0.1:{self.slack.port}/services/T{slug}/B{slug}/browserHook{slug}")


@dataclass
class Site:
    """The live server's base URL and the app behind it, for set-up done through the service layer."""

    base: str
    app: object
    stubs: Stubs

    def url(self, path: str) -> str:
        return self.base + path


@dataclass
class TenantUsers:
    slug: str
    name: str
    admin: str
    member: str


@pytest.fixture(scope="module")
def stubs():
    running = Stubs(StripeStub().start(), HttpStub().start(), SmtpServer().start())
    yield running
    running.stripe.stop()
    running.slack.stop()
    running.smtp.stop()


@pytest.fixture(scope="module")
def site(stubs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    database = Database("sqlite", f"sqlite:///{folder / 'tenant_config.db'}", {})
    _migrate(database, folder / "migrate-instance")
    app = create_app(database.config(
        OUTBOUND_ALLOW_PRIVATE=True,
        SLACK_WEBHOOK_HOSTS=(("127.0.0.1", stubs.slack.port),),
        STRIPE_API_BASE=stubs.stripe.base,
        SMTP_ALLOWED_PORTS=(stubs.smtp.port,),
        OUTBOUND_READ_TIMEOUT=2.0,
        OUTBOUND_FAILURE_SECONDS=0.0,
        TEST_SEND_RATE_LIMIT="100 per minute",
    ), environ={}, instance_path=str(folder / "instance"))

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Site(f"http://127.0.0.1:{server.server_port}", app, stubs)

    server.shutdown()
    server.server_close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="session")
def chromium():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


_tenant_numbers = itertools.count(1)


@pytest.fixture
def tenant(site) -> TenantUsers:
    """A new tenant with an admin and a member, whose slug no other test uses."""
    number = next(_tenant_numbers)
    slug = f"browser-{number}"
    users = TenantUsers(slug, f"Browser Tenant {number}", f"admin@{slug}.example", f"member@{slug}.example")
    with site.app.app_context():
        created = create_tenant(slug, users.name)
        grant(create_user(users.admin, PASSWORD), created, "admin")
        grant(create_user(users.member, PASSWORD), created, "member")
    return users


def screenshot(page: Page, name: str) -> None:
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page: Page, site: Site, email: str) -> None:
    page.goto(site.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def section(page: Page, group: str):
    return page.locator(f"#group-{group}")


def set_values(site: Site, slug: str, settings: dict[str, str]) -> None:
    """Store values through the service layer, for tests whose subject is not the form."""
    with site.app.app_context():
        tenant = find_tenant(slug)
        for name, value in settings.items():
            values.set_value(tenant, name, value, Actor.cli())


def configure_all(site: Site, slug: str) -> None:
    set_values(site, slug, {
        "stripe.secret_key": STRIPE_KEY,
        "slack.webhook_url": site.stubs.webhook(slug),
        "smtp.host": "127.0.0.1",
        "smtp.port": str(site.stubs.smtp.port),
        "smtp.security": "none",
        "smtp.username": "mailer",
        "smtp.password": SMTP_PASSWORD,
        "smtp.from_address": "billing@example.com",
    })


def assert_no_secret(page: Page, source: str, secrets: list[str]) -> None:
    """Check the DOM, the value of every form control, the visible text and the HTTP response body."""
    dom = page.content()
    control_values = page.eval_on_selector_all("input, textarea, select", "elements => elements.map(e => e.value)")
    text = page.inner_text("body")
    for secret in secrets:
        assert secret not in dom, "the DOM contains a secret"
        assert secret not in source, "the page source contains a secret"
        assert secret not in text, "the visible text contains a secret"
        assert all(secret not in value for value in control_values), "a form control's value contains a secret"


def reload_source(page: Page) -> str:
    response = page.reload()
    assert response is not None
    assert response.status == 200
    return response.text()


def outline_of(page: Page) -> tuple[str, str, str]:
    return tuple(page.evaluate(
        "() => { const style = getComputedStyle(document.activeElement);"
        " return [style.outlineStyle, style.outlineWidth, style.outlineColor]; }"
    ))


def test_login_shows_errors_then_lands(page, site, tenant):
    page.goto(site.url("/login"))
    screenshot(page, "login")

    page.get_by_label("Email").fill(tenant.admin)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Log in").click()
    error = page.locator("#password-error")
    expect(error).to_have_text("The email or password is incorrect.")
    expect(page.get_by_label("Password")).to_have_attribute("aria-describedby", "password-error")
    screenshot(page, "login-error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(site.url(f"/t/{tenant.slug}/settings"))
    expect(page.get_by_role("heading", level=1)).to_have_text(tenant.name)


def test_admin_sets_each_integration(page, site, tenant):
    webhook = site.stubs.webhook(tenant.slug)
    log_in(page, site, tenant.admin)
    for group in ("stripe", "slack", "smtp"):
        expect(section(page, group).locator(".card-head .badge")).to_have_text("Incomplete")
    screenshot(page, "settings-empty")

    page.get_by_label("Stripe secret key").fill(STRIPE_KEY)
    page.get_by_role("button", name="Save Stripe settings").click()
    expect(page.get_by_role("status")).to_have_text("Saved Stripe settings.")

    page.get_by_label("Slack webhook URL").fill(webhook)
    page.get_by_role("button", name="Save Slack settings").click()
    expect(page.get_by_role("status")).to_have_text("Saved Slack settings.")

    page.get_by_label("SMTP host").fill("127.0.0.1")
    page.get_by_label("SMTP port").fill(str(site.stubs.smtp.port))
    page.get_by_label("SMTP security").select_option("none")
    page.get_by_label("SMTP username").fill("mailer")
    page.get_by_label("SMTP password").fill(SMTP_PASSWORD)
    page.get_by_label("From address").fill("billing@example.com")
    page.get_by_role("button", name="Save Email (SMTP) settings").click()
    expect(page.get_by_role("status")).to_have_text("Saved Email (SMTP) settings.")

    source = reload_source(page)
    for group in ("stripe", "slack", "smtp"):
        expect(section(page, group).locator(".card-head .badge")).to_have_text("Complete")
        expect(section(page, group).locator(".last-test")).to_have_text("Never tested.")
    expect(page.locator(".secret-status .badge-set")).to_have_count(3)
    expect(page.locator("input[type=password]")).to_have_count(3)
    for secret_input in page.locator("input[type=password]").all():
        expect(secret_input).to_have_value("")
    expect(page.get_by_label("SMTP host")).to_have_value("127.0.0.1")
    expect(page.get_by_label("SMTP security")).to_have_value("none")
    assert_no_secret(page, source, [STRIPE_KEY, webhook, SMTP_PASSWORD, "browserHook"])
    screenshot(page, "settings-saved")


def test_remove_clears_secret(page, site, tenant):
    set_values(site, tenant.slug, {"stripe.secret_key": STRIPE_KEY})
    log_in(page, site, tenant.admin)
    stripe = section(page, "stripe")
    expect(stripe.locator(".card-head .badge")).to_have_text("Complete")

    stripe.get_by_role("button", name="Remove Stripe secret key").click()

    expect(page.get_by_role("status")).to_have_text("Removed Stripe secret key.")
    expect(stripe.locator(".secret-status .badge")).to_have_text("Not set")
    expect(stripe.locator(".card-head .badge")).to_have_text("Incomplete")
    expect(stripe.locator(".readiness")).to_have_text("Missing: Stripe secret key.")
    expect(stripe.get_by_role("button", name="Send test")).to_be_disabled()
    with site.app.app_context():
        assert values.stored_rows(find_tenant(tenant.slug)) == {}
    screenshot(page, "settings-removed")


def test_invalid_port_keeps_plain_values(page, site, tenant):
    log_in(page, site, tenant.admin)

    page.get_by_label("SMTP host").fill("mail.example.com")
    page.get_by_label("SMTP port").fill("70000")
    page.get_by_label("SMTP username").fill("mailer")
    page.get_by_label("SMTP password").fill(TYPED_PASSWORD)
    page.get_by_label("From address").fill("billing@example.com")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name="Save Email (SMTP) settings").click()
    response = navigation.value

    assert response.status == 400
    port = page.get_by_label("SMTP port")
    error = page.locator("#smtp__port-error")
    expect(error).to_have_text("SMTP port must be between 1 and 65535.")
    expect(port).to_have_attribute("aria-invalid", "true")
    assert "smtp__port-error" in port.get_attribute("aria-describedby").split()
    expect(page.get_by_role("alert")).to_have_text("Email (SMTP) settings were not saved. Correct the fields marked below.")
    expect(page.get_by_label("SMTP host")).to_have_value("mail.example.com")
    expect(page.get_by_label("SMTP username")).to_have_value("mailer")
    expect(page.get_by_label("From address")).to_have_value("billing@example.com")
    expect(port).to_have_value("70000")
    expect(page.get_by_label("SMTP password")).to_have_value("")
    assert_no_secret(page, response.text(), [TYPED_PASSWORD])
    with site.app.app_context():
        assert values.stored_rows(find_tenant(tenant.slug)) == {}
    screenshot(page, "settings-validation-error")


def test_send_test_buttons_reach_stubs(page, site, tenant):
    configure_all(site, tenant.slug)
    slack_before = len(site.stubs.slack.requests)
    log_in(page, site, tenant.admin)

    for group, message in [
        ("stripe", "Stripe test succeeded: reached Stripe account acct_"),
        ("slack", "Slack test succeeded: posted a test message to the Slack channel."),
        ("smtp", f"SMTP test succeeded: sent a test message to {tenant.admin}."),
    ]:
        section(page, group).get_by_role("button", name="Send test").click()
        expect(page.get_by_role("status")).to_contain_text(message)
        expect(section(page, group).locator(".last-test")).to_contain_text("passed")
        expect(section(page, group).locator(".card-head .badge")).to_have_text("Complete")

    assert len(site.stubs.slack.requests) == slack_before + 1
    assert any(recipients == [tenant.admin] for _, recipients, _ in site.stubs.smtp.messages)
    expect(page.locator(".usage")).to_have_text(["used just now by send test"] * 3)
    assert_no_secret(page, reload_source(page), [STRIPE_KEY, SMTP_PASSWORD, "browserHook"])
    screenshot(page, "settings-tests-passed")


def test_failed_test_marks_integration_failing(page, site, tenant):
    configure_all(site, tenant.slug)
    log_in(page, site, tenant.admin)
    slack = section(page, "slack")

    site.stubs.slack.script = [Reply(404, "no_service")]
    slack.get_by_role("button", name="Send test").click()

    rejected = "Slack rejected the webhook (HTTP 404); it may have been revoked, so enter a new webhook URL"
    expect(page.get_by_role("alert")).to_have_text(f"Slack test failed: {rejected}.")
    expect(slack.locator(".card-head .badge")).to_have_text("Failing")
    expect(slack.locator(".readiness")).to_have_text(f"The last test failed: {rejected}.")
    expect(slack.locator(".last-test")).to_contain_text(f"failed, {rejected}")
    expect(page.locator(".overview .badge")).to_have_text(["Complete", "Failing", "Complete"])
    screenshot(page, "settings-test-failing")

    page.get_by_label("Slack webhook URL").fill(site.stubs.webhook(tenant.slug))
    page.get_by_role("button", name="Save Slack settings").click()
    expect(slack.locator(".card-head .badge")).to_have_text("Complete")
    expect(slack.locator(".readiness")).to_have_text("Settings changed after the last test. Send a test to check them.")


def test_last_use_by_job_is_shown(page, site, tenant):
    configure_all(site, tenant.slug)
    result = site.app.test_cli_runner().invoke(args=["jobs", "slack-notify", "--tenant", tenant.slug, "hello"])
    assert result.exit_code == 0, result.output
    with site.app.app_context():
        tenant_id = find_tenant(tenant.slug).id
        db.session.execute(
            update(ConfigValue)
            .where(ConfigValue.tenant_id == tenant_id, ConfigValue.key == "stripe.secret_key")
            .values(last_used_at=utcnow() - timedelta(minutes=5, seconds=10), last_used_by="stripe-balance")
        )
        db.session.commit()

    log_in(page, site, tenant.admin)

    expect(section(page, "slack").locator(".usage")).to_have_text("used just now by slack-notify")
    expect(section(page, "stripe").locator(".usage")).to_have_text("used 5 minutes ago by stripe-balance")
    expect(section(page, "smtp").locator(".usage")).to_have_text("no use recorded yet")


def test_member_sees_read_only_page(page, site, tenant):
    configure_all(site, tenant.slug)
    log_in(page, site, tenant.member)

    expect(page.locator("input:not([type=hidden]), select")).to_have_count(0)
    expect(page.get_by_role("button", name="Send test")).to_have_count(0)
    expect(page.get_by_role("link", name="Activity")).to_have_count(0)
    expect(page.get_by_text("Only the tenant's admins can change these settings.")).to_have_count(3)
    expect(section(page, "stripe").locator("dd .badge")).to_have_text("Set")
    expect(section(page, "smtp").locator("dd").first).to_have_text("127.0.0.1")
    assert_no_secret(page, reload_source(page), [STRIPE_KEY, SMTP_PASSWORD, "browserHook"])
    screenshot(page, "settings-member")

    response = page.goto(site.url(f"/t/{tenant.slug}/activity"))
    assert response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    screenshot(page, "error-403")


def test_keyboard_alone_saves_secret(page, site, tenant):
    log_in(page, site, tenant.admin)
    page.goto(site.url(f"/t/{tenant.slug}/settings"))
    secret_input = page.get_by_label("Stripe secret key")

    for _ in range(30):
        page.keyboard.press("Tab")
        if secret_input.evaluate("element => element === document.activeElement"):
            break
        assert outline_of(page) == FOCUS_OUTLINE, "a focused element has no visible focus outline"
    expect(secret_input).to_be_focused()
    assert secret_input.evaluate("element => element.matches(':focus-visible')")
    assert outline_of(page) == FOCUS_OUTLINE
    screenshot(page, "settings-keyboard-focus")

    page.keyboard.type(STRIPE_KEY)
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_have_text("Saved Stripe settings.")
    expect(section(page, "stripe").locator(".secret-status .badge")).to_have_text("Set")
    page.keyboard.press("Tab")
    assert outline_of(page) == FOCUS_OUTLINE
    with site.app.app_context():
        assert resolve(tenant.slug, "stripe.secret_key").reveal() == STRIPE_KEY


def test_narrow_screen_has_no_sideways_scroll(page, site, tenant):
    configure_all(site, tenant.slug)
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, site, tenant.admin)

    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")

    assert overflow == 0
    screenshot(page, "settings-narrow")


def test_activity_pages_and_filters(page, site, tenant):
    set_values(site, tenant.slug, {"smtp.host": "mail-0.example.com"})
    for number in range(1, 55):
        set_values(site, tenant.slug, {"smtp.host": f"mail-{number}.example.com"})
    set_values(site, tenant.slug, {"stripe.secret_key": STRIPE_KEY})
    with site.app.app_context():
        audit.record(find_tenant(tenant.slug), Actor(label=tenant.admin), "test", "slack", "ok")
        db.session.commit()
    log_in(page, site, tenant.admin)

    page.get_by_role("link", name="Activity").click()
    rows = page.locator("table.activity tbody tr")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Slack test")
    screenshot(page, "activity")

    page.get_by_role("link", name="Older events →").click()
    expect(rows).to_have_count(7)
    expect(page.get_by_text("Page 2")).to_be_visible()
    expect(page.get_by_role("link", name="Older events →")).to_have_count(0)
    screenshot(page, "activity-page-2")

    page.get_by_label("Action").select_option("set")
    page.get_by_label("Setting").select_option("smtp.host")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("SMTP host")
    assert re.search(r"[?&]action=set(&|$)", page.url)
    screenshot(page, "activity-filtered")

    page.get_by_label("Action").select_option("replace")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(50)
    page.get_by_role("link", name="Older events →").click()
    expect(rows).to_have_count(4)
    assert "key=smtp.host" in page.url
    assert "action=replace" in page.url
    page.get_by_role("link", name="← Newer events").click()
    expect(rows).to_have_count(50)
    expect(page.get_by_label("Setting")).to_have_value("smtp.host")

    response = page.goto(site.url(f"/t/{tenant.slug}/activity?action=drop&key=stripe.api_key&page=x"))
    assert response.status == 200
    expect(page.locator("#filter-action-error")).to_have_text("Unknown action “drop”. Showing every action.")
    expect(page.locator("#filter-key-error")).to_have_text("Unknown setting “stripe.api_key”. Showing every setting.")
    expect(page.get_by_label("Action")).to_have_attribute("aria-describedby", "filter-action-error")
    expect(page.get_by_role("alert")).to_have_text("Page must be a whole number from 1 to 10,000. Showing page 1.")
    expect(rows).to_have_count(50)
    assert_no_secret(page, response.text(), [STRIPE_KEY])
    screenshot(page, "activity-bad-filter")


def test_chooser_and_not_found_pages(page, site, tenant):
    other = f"{tenant.slug}-second"
    with site.app.app_context():
        grant(find_user(tenant.admin), create_tenant(other, "Second Browser Tenant"), "member")
    log_in(page, site, tenant.admin)

    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a tenant")
    expect(page.locator(".tenant-list li")).to_have_count(2)
    screenshot(page, "choose-tenant")

    response = page.goto(site.url("/t/no-such-tenant/settings"))
    assert response.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    screenshot(page, "error-404")
