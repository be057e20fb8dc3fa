"""The templates' url_for, which remembers link paths, against Flask's own url_for."""

import flask


def template_url_for(app):
    return app.jinja_env.globals["url_for"]


def test_link_is_flasks_path_every_time(app):
    with app.test_request_context("/"):
        expected = flask.url_for("settings.remove", slug="acme", key_name="stripe.secret_key")
        first = template_url_for(app)("settings.remove", slug="acme", key_name="stripe.secret_key")
        again = template_url_for(app)("settings.remove", key_name="stripe.secret_key", slug="acme")

    assert expected == "/t/acme/settings/keys/stripe.secret_key/remove"
    assert first == again == expected


def test_links_differ_per_value(app):
    with app.test_request_context("/"):
        links = {template_url_for(app)("settings.show", slug=slug) for slug in ("acme", "globex", "acme")}

    assert links == {"/t/acme/settings", "/t/globex/settings"}


def test_link_follows_the_script_root(app):
    with app.test_request_context("/", base_url="http://localhost/"):
        plain = template_url_for(app)("settings.show", slug="acme")
    with app.test_request_context("/", base_url="http://localhost/tools/"):
        mounted = template_url_for(app)("settings.show", slug="acme")
    with app.test_request_context("/", base_url="http://localhost/"):
        plain_again = template_url_for(app)("settings.show", slug="acme")

    assert plain == plain_again == "/t/acme/settings"
    assert mounted == "/tools/t/acme/settings"


def test_special_links_use_flask(app):
    with app.test_request_context("/", base_url="https://config.example/"):
        anchored = template_url_for(app)("settings.show", slug="acme", _anchor="group-smtp")
        external = template_url_for(app)("settings.show", slug="acme", _external=True)
        paged = template_url_for(app)("activity.index", slug="acme", page=2)
        expected_paged = flask.url_for("activity.index", slug="acme", page=2)

    assert anchored == "/t/acme/settings#group-smtp"
    assert external == "https://config.example/t/acme/settings"
    assert paged == expected_paged == "/t/acme/activity?page=2"
