"""Two admins, one value: stale forms are refused, and concurrent first saves create one row."""

import html
import re
import threading

import pytest
import requests
from sqlalchemy import select
from werkzeug.serving import make_server

from tenant_config.accounts import find_tenant
from tenant_config.extensions import db
from tenant_config.models import ConfigValue
from tenant_config.resolver import resolve
from tests.conftest import PASSWORD, csrf_from

VERSIONS = re.compile(r'name="row_versions" value="([^"]*)"')


def _form_versions(page: str, index: int = 0) -> str:
    return html.unescape(VERSIONS.findall(page)[index])


def _smtp_versions(page: str) -> str:
    return next(value for value in map(html.unescape, VERSIONS.findall(page)) if "smtp.host" in value)


def test_stale_form_is_refused(app, world, make_browser):
    first = make_browser(world.acme_admin)
    second = make_browser(world.both_admin)
    first.save("acme", "smtp", {"smtp.host": "smtp.one.example"})

    stale = _smtp_versions(first.get("/t/acme/settings").text)
    assert second.save("acme", "smtp", {"smtp.host": "smtp.two.example"}).status_code == 302

    response = first.post_form("/t/acme/settings/smtp", {"smtp__host": "smtp.three.example", "row_versions": stale})

    assert response.status_code == 409
    assert f"SMTP host was changed by {world.both_admin} at " in response.text
    assert "Reload to see the current value." in response.text
    with app.app_context():
        assert resolve("acme", "smtp.host") == "smtp.two.example"


def test_stale_form_for_other_key_saves(app, world, make_browser):
    first = make_browser(world.acme_admin)
    second = make_browser(world.both_admin)
    first.save("acme", "smtp", {"smtp.host": "smtp.one.example"})

    stale = _smtp_versions(first.get("/t/acme/settings").text)
    second.save("acme", "smtp", {"smtp.host": "smtp.two.example"})
    response = first.post_form("/t/acme/settings/smtp", {"smtp__security": "tls", "row_versions": stale})

    assert response.status_code == 302
    with app.app_context():
        assert resolve("acme", "smtp.host") == "smtp.two.example"
        assert resolve("acme", "smtp.security") == "tls"


def test_removed_value_conflicts(app, world, make_browser):
    first = make_browser(world.acme_admin)
    first.save("acme", "stripe", {"stripe.secret_key": "sk_test_conflict01"})
    stale = _form_versions(first.get("/t/acme/settings").text)
    make_browser(world.both_admin).post_form("/t/acme/settings/keys/stripe.secret_key/remove", {})

    response = first.post_form("/t/acme/settings/stripe", {"stripe__secret_key": "sk_test_conflict02",
                                                           "row_versions": stale})

    assert response.status_code == 409
    assert "Stripe secret key was removed after you loaded this page." in response.text


def test_validation_error_keeps_loaded_versions(app, world, make_browser):
    first = make_browser(world.acme_admin)
    first.save("acme", "smtp", {"smtp.host": "smtp.one.example"})
    stale = _smtp_versions(first.get("/t/acme/settings").text)
    make_browser(world.both_admin).save("acme", "smtp", {"smtp.host": "smtp.two.example"})

    invalid = first.post_form("/t/acme/settings/smtp", {"smtp__host": "smtp.three.example", "smtp__port": "0",
                                                        "row_versions": stale})
    assert invalid.status_code == 400
    kept = _smtp_versions(invalid.text)

    retried = first.post_form("/t/acme/settings/smtp", {"smtp__host": "smtp.three.example", "row_versions": kept})
    assert retried.status_code == 409


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '{"smtp.host": "3"}'])
def test_malformed_versions_are_rejected(app, world, make_browser, raw):
    admin = make_browser(world.acme_admin)
    response = admin.post_form("/t/acme/settings/smtp", {"smtp__host": "smtp.x.example", "row_versions": raw})
    assert response.status_code == 400


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def _logged_in_session(base: str, email: str) -> requests.Session:
    session = requests.Session()
    token = csrf_from(session.get(f"{base}/login", timeout=10).text)
    response = session.post(f"{base}/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                            allow_redirects=False, timeout=10)
    assert response.status_code == 302
    return session


def test_concurrent_first_saves_create_one_row(app, world, live_server):
    writers = 8
    emails = [world.acme_admin, world.both_admin] * (writers // 2)
    sessions = [_logged_in_session(live_server, email) for email in emails]
    pages = [session.get(f"{live_server}/t/acme/settings", timeout=10).text for session in sessions]
    start = threading.Barrier(writers)
    statuses: list[int] = []
    bodies: list[str] = []

    def save(index: int) -> None:
        data = {"csrf_token": csrf_from(pages[index]), "row_versions": _form_versions(pages[index]),
                "stripe__secret_key": f"sk_test_racer{index:02d}"}
        start.wait()
        response = sessions[index].post(f"{live_server}/t/acme/settings/stripe", data=data,
                                        allow_redirects=False, timeout=30)
        statuses.append(response.status_code)
        bodies.append(response.text)

    threads = [threading.Thread(target=save, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [302] + [409] * (writers - 1)
    assert sum("Stripe secret key was changed by" in body for body in bodies) == writers - 1
    with app.app_context():
        tenant = find_tenant("acme")
        rows = db.session.scalars(select(ConfigValue).where(ConfigValue.tenant_id == tenant.id)).all()
        assert [(row.key, row.row_version) for row in rows] == [("stripe.secret_key", 1)]
        assert re.fullmatch(r"sk_test_racer\d\d", resolve("acme", "stripe.secret_key").reveal())
