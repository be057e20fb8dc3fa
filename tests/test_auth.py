import pytest

from tests.conftest import MASTER_KEY, PASSWORD, Browser


def test_login_lands_on_only_tenant(app, world, browser):
    response = browser.login(world.acme_admin)
    assert response.status_code == 302
    assert response.location == "/"
    assert browser.get("/").location == "/t/acme/settings"


def test_login_with_several_tenants_shows_chooser(app, world, browser):
    browser.login(world.both_admin)
    page = browser.get("/")
    assert page.status_code == 200
    assert "/t/acme/settings" in page.text
    assert "/t/globex/settings" in page.text


@pytest.mark.parametrize("email, password", [
    ("admin@acme.example", "wrong password"),
    ("nobody@acme.example", PASSWORD),
])
def test_failed_login_does_not_reveal_account(app, world, browser, email, password):
    response = browser.login(email, password)
    assert response.status_code == 400
    assert "The email or password is incorrect." in response.text
    assert browser.get("/t/acme/settings").status_code == 302


def test_login_email_is_case_insensitive(app, world, browser):
    assert browser.login("  Admin@ACME.example ").status_code == 302


@pytest.mark.parametrize("next_path, expected", [
    ("/t/acme/activity", "/t/acme/activity"),
    ("//evil.example/steal", "/"),
    ("https://evil.example/", "/"),
    ("/\\evil.example", "/"),
    ("javascript:alert(1)", "/"),
    ("/t/acme/settings\r\nLocation: https://evil.example", "/"),
])
def test_login_next_accepts_only_local_paths(app, world, browser, next_path, expected):
    token = browser.token()
    response = browser.client.post(
        "/login", query_string={"next": next_path},
        data={"email": world.acme_admin, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.location == expected


def test_logout_requires_post(app, world, browser):
    browser.login(world.acme_admin)
    assert browser.get("/logout").status_code == 405
    assert browser.get("/t/acme/settings").status_code == 200

    assert browser.post_form("/logout", {}).status_code == 302
    assert browser.get("/t/acme/settings").status_code == 302


def test_login_without_csrf_is_rejected(app, world, browser):
    response = browser.client.post("/login", data={"email": world.acme_admin, "password": PASSWORD})
    assert response.status_code == 400
    assert browser.get("/t/acme/settings").status_code == 302


def test_responses_carry_security_headers(app, world, browser):
    browser.login(world.acme_admin)
    response = browser.get("/t/acme/settings")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def _failed_logins(browser, email: str, count: int) -> list[int]:
    return [browser.login(email, "wrong password").status_code for _ in range(count)]


@pytest.fixture
def app_overrides():
    return {"LOGIN_RATE_LIMIT_PER_ACCOUNT": "3 per 15 minutes", "LOGIN_RATE_LIMIT_PER_ADDRESS": "5 per 15 minutes"}


def test_limits_checked_only_in_limited_views(app):
    from tenant_config.extensions import limiter

    assert limiter._check_request_limit not in app.before_request_funcs[None]


@pytest.fixture
def restore_meta_limits():
    """Restore Flask-Limiter's meta limits afterwards, because the shared Limiter keeps the first ones an app sets."""
    from tenant_config.extensions import limiter

    saved = limiter._meta_limits
    yield
    limiter._meta_limits = saved


def test_meta_limit_blocks_every_page(world, make_app, restore_meta_limits):
    app = make_app(MASTER_KEY, RATELIMIT_META="1 per hour", LOGIN_RATE_LIMIT_PER_ADDRESS="1 per 15 minutes")
    admin = Browser(app.test_client())
    assert admin.login(world.acme_admin).status_code == 302

    # Test clients share one address, so the guesser's breach blocks the admin too.
    guesser = Browser(app.test_client())
    assert guesser.login(world.acme_admin, "wrong password").status_code == 400
    assert guesser.login(world.acme_admin, "wrong password").status_code == 429

    assert admin.get("/").status_code == 429
    assert admin.get("/t/acme/settings").status_code == 429


def test_login_limited_per_account(app, world, make_browser):
    attacker = make_browser()
    assert _failed_logins(attacker, world.acme_admin, 4) == [400, 400, 400, 429]

    from_elsewhere = make_browser()
    from_elsewhere.client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert from_elsewhere.login(world.acme_admin).status_code == 429
    assert from_elsewhere.login(world.acme_member).status_code == 302


def test_login_limited_per_address(app, world, make_browser):
    attacker = make_browser()
    statuses = [attacker.login(f"user{index}@acme.example", "wrong").status_code for index in range(6)]
    assert statuses == [400, 400, 400, 400, 400, 429]

    other_address = make_browser()
    other_address.client.environ_base["REMOTE_ADDR"] = "192.0.2.8"
    assert other_address.login(world.acme_admin).status_code == 302


def test_successful_logins_are_not_counted(app, world, make_browser):
    for _ in range(4):
        assert make_browser().login(world.acme_admin).status_code == 302


def _worker(database, path, **config):
    from tenant_config import create_app

    return create_app(database.config(**config), environ={}, instance_path=str(path))


def _dispose(*apps):
    from tenant_config.extensions import db

    for worker in apps:
        with worker.app_context():
            db.session.remove()
            db.engine.dispose()


def test_login_limits_shared_through_redis(database, tmp_path, world):
    import uuid

    from tenant_config.accounts import create_user
    from tests.conftest import Browser

    shared = {
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
        "LOGIN_RATE_LIMIT_PER_ACCOUNT": "2 per 15 minutes",
        "LOGIN_RATE_LIMIT_PER_ADDRESS": "10000 per minute",
    }
    workers = [_worker(database, tmp_path / f"worker{index}", **shared) for index in range(2)]
    # A new account each run, because the counts in Redis outlive the test.
    email = f"redis-{uuid.uuid4().hex[:12]}@acme.example"
    with workers[0].app_context():
        create_user(email, PASSWORD)
    first, second = (Browser(worker.test_client()) for worker in workers)

    assert first.login(email, "wrong").status_code == 400
    assert second.login(email, "wrong").status_code == 400
    assert first.login(email).status_code == 429
    assert second.login(email).status_code == 429
    _dispose(*workers)


def test_session_from_other_browser_is_dropped(app, world, make_browser):
    admin = make_browser(world.acme_admin)
    assert admin.get("/t/acme/settings").status_code == 200

    admin.client.environ_base["HTTP_USER_AGENT"] = "another browser"
    assert admin.get("/t/acme/settings").status_code == 302


@pytest.mark.parametrize("proxies, expected", [(0, "127.0.0.1"), (1, "198.51.100.9")])
def test_proxy_headers_trusted_only_when_configured(database, tmp_path, world, proxies, expected):
    from tests.conftest import Browser

    worker = _worker(database, tmp_path / "proxy", TRUSTED_PROXY_COUNT=proxies)
    admin = Browser(worker.test_client())
    admin.client.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.9"
    assert admin.login(world.acme_admin).status_code == 302
    admin.save("acme", "smtp", {"smtp.host": "smtp.acme.example"})

    page = admin.get("/t/acme/activity").text
    assert f"<td>{expected}</td>" in page
    _dispose(worker)


@pytest.mark.parametrize("session_id", ["²:token", "١٢:token", "x1:token", ":token"])
def test_odd_session_user_id_is_logged_out(app, world, browser, session_id):
    browser.login(world.acme_admin)
    with browser.client.session_transaction() as session:
        session["_user_id"] = session_id

    response = browser.get("/t/acme/settings")

    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
