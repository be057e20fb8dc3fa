"""Login, logout and the tenant chooser."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user

from . import access, accounts
from .extensions import db, limiter, login_manager
from .forms import LoginForm, PostOnlyForm
from .identity import SessionUser

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)


@login_manager.user_loader
def load_user(session_id: str) -> SessionUser | None:
    """Load the user of a session id ``<user id>:<session token>``, or None once the token has changed.

    On a tenant's pages the same query loads the tenant that the URL names.
    """
    user_id, _, token = session_id.partition(":")
    if not (user_id.isascii() and user_id.isdigit()):
        return None
    user = access.load_session_user(int(user_id), access.url_slug())
    if user is None or not hmac.compare_digest(token, user.session_token or ""):
        return None
    return user


def is_local_path(target: str | None) -> bool:
    """Accept only a path on this site, such as ``/t/acme/settings``, for redirects."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    if any(ord(char) < 32 for char in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def _login_email() -> str:
    return "login-account:" + request.form.get("email", "").strip().lower()[:254]


def _failed(response) -> bool:
    return response.status_code != 302


def _limit_per_address() -> str:
    return current_app.config["LOGIN_RATE_LIMIT_PER_ADDRESS"]


def _limit_per_account() -> str:
    return current_app.config["LOGIN_RATE_LIMIT_PER_ACCOUNT"]


# Only failed attempts count, per client address and per account, so that
# neither guessing many passwords for one account nor many accounts from one
# address gets far.
@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_limit_per_address, methods=["POST"], key_func=get_remote_address, deduct_when=_failed)
@limiter.limit(_limit_per_account, methods=["POST"], key_func=_login_email, deduct_when=_failed)
def login():
    """Show the login form and log the user in."""
    form = LoginForm()
    next_path = request.args.get("next")

    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            # A fresh session: nothing from before the login, a CSRF token included, carries over.
            session.clear()
            login_user(user)
            logger.info("User %s logged in from %s", user.email, request.remote_addr)
            return redirect(next_path if is_local_path(next_path) else url_for("auth.index"))
        logger.info("Failed login from %s", request.remote_addr)
        form.password.errors = ["The email or password is incorrect."]

    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


@bp.post("/logout")
@login_required
def logout():
    """Log out. Only POST, so that a link or image on another site cannot log a user out."""
    form = PostOnlyForm()
    if form.validate_on_submit():
        current_user.end_sessions()
        db.session.commit()
        logout_user()
        session.clear()
        flash("You have been logged out.")
    return redirect(url_for("auth.login"))


@bp.get("/")
@login_required
def index():
    """Send the user to their tenant, or list their tenants when there are several."""
    tenants = accounts.tenants_of(current_user)
    if len(tenants) == 1:
        return redirect(url_for("settings.show", slug=tenants[0][0].slug))
    return render_template("auth/choose.html", tenants=tenants)
