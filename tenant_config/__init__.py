"""Per-tenant encrypted settings for a SaaS platform: the Flask application factory."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .config import ConfigError, load_config
from .logs import configure_logging
from .request import Request
from .outbound.config import warn_about_private_destinations

__all__ = ["create_app", "ConfigError"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(
    test_config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    instance_path: str | None = None,
    check_stored_keys: bool = True,
) -> Flask:
    """Create the app. Raises ConfigError when the keys or other settings are missing or invalid.

    ``environ`` defaults to ``os.environ``; tests pass their own, with ``test_config`` on top.
    With ``check_stored_keys`` the app also raises ConfigError when the database
    has data keys and no configured master key can unwrap any of them. Commands
    that must work in that case, such as ``keys status``, turn it off.
    """
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=str(PROJECT_ROOT / "templates"),
        static_folder=str(PROJECT_ROOT / "static"),
    )
    app.request_class = Request
    configure_logging()

    # Configuration: the environment first, then overrides from tests, then checks.
    app.config.from_mapping(load_config(app.instance_path, os.environ if environ is None else environ, test_config))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    warn_about_private_destinations(app.config)
    if app.config["TRUSTED_PROXY_COUNT"]:
        count = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    _init_extensions(app)
    if check_stored_keys:
        _check_stored_keys(app)
    _register_blueprints(app)

    from .cli import register_commands
    register_commands(app)
    return app


def _init_extensions(app: Flask) -> None:
    from . import read_requests
    from .access import load_tenant_access
    from .crypto import DataKeyCache
    from .extensions import csrf, db, limiter, login_manager, migrate
    from .usage import UsageRecorder
    from .values import DecryptableValues

    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(__file__).parent / "migrations"))

    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see this page."
    # A session used from another address or browser is dropped, not just marked as not fresh.
    login_manager.session_protection = "strong"

    # GET and HEAD requests are marked read-only before any other hook. The tenant check runs before CSRF,
    # so outsiders get 404 for every method.
    read_requests.register(app)
    app.before_request(load_tenant_access)
    csrf.init_app(app)

    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"] or "memory://")
    limiter.init_app(app)
    _check_limits_in_limited_views_only(app)

    app.extensions["tenant_config.data_key_cache"] = DataKeyCache(app.config["DATA_KEY_CACHE_SIZE"])
    app.extensions["tenant_config.usage"] = UsageRecorder()
    app.extensions["tenant_config.decryptable_values"] = DecryptableValues()


def _check_limits_in_limited_views_only(app: Flask) -> None:
    """Remove Flask-Limiter's check before every request while no limit covers every route.

    Each limit of the app decorates a view, and such a view checks its own
    limits when it runs. The check before each request adds default,
    application, blueprint and meta limits, and in-memory fallback limits
    while the storage is down. It took about 6% of a settings page's time.
    It stays when the configuration sets any of those limits.

    NOTE: this relies on how Flask-Limiter 4.1.1, which requirements.txt
    pins, splits the work, and on its private ``_blueprint_limits``,
    ``_meta_limits``, ``_in_memory_fallback`` and ``_check_request_limit``
    members. tests/test_auth.py and tests/test_checks.py show that
    decorated limits still apply, and that a meta limit keeps the check.
    """
    from .extensions import limiter

    manager = limiter.limit_manager
    covers_every_route = (
        manager.default_limits or manager.application_limits or manager._blueprint_limits
        or limiter._meta_limits or limiter._in_memory_fallback
    )
    if not covers_every_route:
        app.before_request_funcs[None].remove(limiter._check_request_limit)


def _check_stored_keys(app: Flask) -> None:
    from .extensions import db
    from .keystatus import check_stored_keys

    try:
        with app.app_context():
            check_stored_keys(app.config["KEYRING"])
    except ConfigError:
        # The caller never gets this app, so close its database connections here.
        with app.app_context():
            db.engine.dispose()
        raise


def _register_blueprints(app: Flask) -> None:
    from . import activity, auth, checks, display, errors, links, settings
    from .headers import add_security_headers

    app.register_blueprint(auth.bp)
    app.register_blueprint(settings.bp)
    app.register_blueprint(checks.bp)
    app.register_blueprint(activity.bp)
    display.register(app)
    links.install(app)
    errors.register(app)
    app.after_request(add_security_headers)


@event.listens_for(Engine, "connect")
def _enable_sqlite_foreign_keys(connection, _record) -> None:
    if isinstance(connection, sqlite3.Connection):
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
