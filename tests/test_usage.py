"""Each secret's last use: written by the resolver at most once a minute, never inside the caller's transaction."""

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from tenant_config import values
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.extensions import db
from tenant_config.models import ConfigValue, as_utc
from tenant_config.resolver import resolve
from tests.conftest import remember_secret

STRIPE_KEY = remember_secret("sk_test_usageAcme0001")
GLOBEX_KEY = remember_secret("sk_test_usageGlobex0002")
WEBHOOK = remember_secret("https://hooks.slack.com/services/TUSE/BUSE/usageHookPath1")
START = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


class Clock:
    """A UTC clock that a test moves on by hand."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def configured(app, world):
    with app.app_context():
        actor = Actor.cli()
        values.set_value(find_tenant("acme"), "stripe.secret_key", STRIPE_KEY, actor)
        values.set_value(find_tenant("acme"), "slack.webhook_url", WEBHOOK, actor)
        values.set_value(find_tenant("acme"), "smtp.host", "smtp.acme.example", actor)
        values.set_value(find_tenant("globex"), "stripe.secret_key", GLOBEX_KEY, actor)
    return app


@pytest.fixture
def clock(configured) -> Clock:
    clock = Clock(START)
    configured.extensions["tenant_config.usage"].clock = clock
    return clock


def last_use(slug: str, key: str) -> tuple[datetime | None, str | None]:
    """Read the stored last use in a fresh statement, not from the session's identity map."""
    tenant_id = find_tenant(slug).id
    used_at, used_by = db.session.execute(
        select(ConfigValue.last_used_at, ConfigValue.last_used_by)
        .where(ConfigValue.tenant_id == tenant_id, ConfigValue.key == key)
    ).one()
    return (as_utc(used_at) if used_at else None), used_by


def test_use_is_recorded_with_job_name(configured, clock):
    with configured.app_context():
        secret = resolve("acme", "stripe.secret_key", used_by="stripe-balance")

        assert secret.reveal() == STRIPE_KEY
        assert last_use("acme", "stripe.secret_key") == (START, "stripe-balance")
        assert last_use("globex", "stripe.secret_key") == (None, None)


def test_uses_within_a_minute_write_once(configured, clock):
    with configured.app_context():
        resolve("acme", "stripe.secret_key", used_by="first-job")
        clock.advance(59)
        resolve(find_tenant("acme"), "stripe.secret_key", used_by="second-job")
        assert last_use("acme", "stripe.secret_key") == (START, "first-job")

        clock.advance(2)
        resolve("acme", "stripe.secret_key", used_by="third-job")
        assert last_use("acme", "stripe.secret_key") == (START + timedelta(seconds=61), "third-job")


def test_throttle_is_per_tenant_and_key(configured, clock):
    with configured.app_context():
        resolve("acme", "stripe.secret_key", used_by="stripe-balance")
        resolve("acme", "slack.webhook_url", used_by="slack-notify")
        resolve("globex", "stripe.secret_key", used_by="stripe-balance")

        assert last_use("acme", "stripe.secret_key") == (START, "stripe-balance")
        assert last_use("acme", "slack.webhook_url") == (START, "slack-notify")
        assert last_use("globex", "stripe.secret_key") == (START, "stripe-balance")


def test_clock_going_back_allows_write(configured, clock):
    with configured.app_context():
        resolve("acme", "stripe.secret_key", used_by="before")
        clock.advance(-3600)
        resolve("acme", "stripe.secret_key", used_by="after")
        assert last_use("acme", "stripe.secret_key") == (START - timedelta(hours=1), "after")


def test_checks_are_not_uses(configured, clock, world, make_browser):
    with configured.app_context():
        resolve("acme", "stripe.secret_key")
        resolve("acme", "smtp.host", used_by="send-mail")

    page = make_browser(world.acme_admin).get("/t/acme/settings")

    assert page.status_code == 200
    with configured.app_context():
        assert last_use("acme", "stripe.secret_key") == (None, None)
        assert last_use("acme", "smtp.host") == (None, None)


def test_long_caller_name_is_cut(configured, clock):
    with configured.app_context():
        resolve("acme", "stripe.secret_key", used_by="j" * 100)
        assert last_use("acme", "stripe.secret_key") == (START, "j" * 64)


def test_locked_row_skips_write_keeps_transaction(configured, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="tenant_config.usage")
    with configured.app_context():
        tenant = find_tenant("acme")
        # An uncommitted write: a row lock on PostgreSQL, the database write lock on SQLite.
        db.session.execute(
            update(ConfigValue)
            .where(ConfigValue.tenant_id == tenant.id, ConfigValue.key == "stripe.secret_key")
            .values(updated_by_label="holder")
        )

        secret = resolve(tenant, "stripe.secret_key", used_by="stripe-balance")
        db.session.commit()

        assert secret.reveal() == STRIPE_KEY
        assert last_use("acme", "stripe.secret_key") == (None, None)
        label = db.session.scalar(select(ConfigValue.updated_by_label).where(
            ConfigValue.tenant_id == tenant.id, ConfigValue.key == "stripe.secret_key"))
        assert label == "holder"
    skipped = [record.getMessage() for record in caplog.records if record.name == "tenant_config.usage"]
    assert len(skipped) == 1
    assert skipped[0].startswith("Skipped recording the use of stripe.secret_key for tenant acme: ")


def test_write_after_lock_released(configured, clock):
    with configured.app_context():
        tenant = find_tenant("acme")
        db.session.execute(
            update(ConfigValue)
            .where(ConfigValue.tenant_id == tenant.id, ConfigValue.key == "stripe.secret_key")
            .values(updated_by_label="holder")
        )
        resolve(tenant, "stripe.secret_key", used_by="skipped-job")
        db.session.commit()

        clock.advance(60)
        resolve(tenant, "stripe.secret_key", used_by="later-job")
        assert last_use("acme", "stripe.secret_key") == (START + timedelta(seconds=60), "later-job")
