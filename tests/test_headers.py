"""The security headers that every response gets."""

from flask import Response

from tenant_config.headers import CONTENT_SECURITY_POLICY, add_security_headers


def test_missing_headers_added_once(app):
    with app.test_request_context("/t/acme/settings"):
        response = add_security_headers(Response("page"))

    assert response.headers.getlist("Content-Security-Policy") == [CONTENT_SECURITY_POLICY]
    assert response.headers.getlist("X-Content-Type-Options") == ["nosniff"]
    assert response.headers.getlist("Referrer-Policy") == ["same-origin"]
    assert response.headers.getlist("X-Frame-Options") == ["DENY"]
    assert response.headers.getlist("Cache-Control") == ["no-store"]


def test_view_header_is_kept(app):
    own = Response("page")
    own.headers["x-frame-options"] = "SAMEORIGIN"

    with app.test_request_context("/t/acme/settings"):
        response = add_security_headers(own)

    assert response.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert response.headers.getlist("Referrer-Policy") == ["same-origin"]


def test_static_files_may_be_cached(app):
    with app.test_request_context("/static/style.css"):
        response = add_security_headers(Response("body {}"))

    assert "Cache-Control" not in response.headers
    assert response.headers["X-Content-Type-Options"] == "nosniff"
