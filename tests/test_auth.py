import pytest

from tests.conftest import PASSWORD


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
