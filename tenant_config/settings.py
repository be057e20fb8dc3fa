"""The tenant settings page, its saves and removals, and the activity page."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from . import audit, values
from .access import TenantAccess, require_admin
from .audit import Actor
from .forms import PostOnlyForm, collect_changes, field_name, settings_form_class
from .registry import GROUPS, KEYS, keys_in_group

bp = Blueprint("settings", __name__, url_prefix="/t/<slug>")


def _access() -> TenantAccess:
    return g.tenant_access


def _actor() -> Actor:
    return Actor.for_user(current_user, request.remote_addr)


def _views(access: TenantAccess) -> dict[str, values.SettingView]:
    return {view.key.name: view for view in values.describe(access.tenant)}


def _fresh_forms(views: dict[str, values.SettingView]) -> dict:
    """Build one form per group, filled with the stored plain values and no secret."""
    forms = {}
    for group in GROUPS:
        form = settings_form_class(group)(formdata=None)
        for name, view in views.items():
            if view.key.group == group and not view.key.encrypted:
                form[field_name(view.key)].data = view.value or ""
        forms[group] = form
    return forms


def _render(access: TenantAccess, forms: dict, views: dict[str, values.SettingView], status: int = 200):
    sections = [
        {
            "group": group,
            "label": label,
            "form": forms[group],
            "entries": [
                {"key": key, "field": forms[group][field_name(key)], "view": views[key.name]}
                for key in keys_in_group(group)
            ],
        }
        for group, label in GROUPS.items()
    ]
    return render_template("settings/index.html", access=access, tenant=access.tenant, sections=sections), status


@bp.get("/settings")
@login_required
def show(slug: str):
    """Show every setting of the tenant, with secrets masked."""
    access = _access()
    views = _views(access)
    return _render(access, _fresh_forms(views), views)


@bp.post("/settings/<group>")
@login_required
def save(slug: str, group: str):
    """Validate and save the fields of one group that the admin submitted."""
    access = _access()
    require_admin(access)
    if group not in GROUPS:
        abort(404)

    form = settings_form_class(group)()
    changes = collect_changes(form, group, set(request.form)) if form.validate_on_submit() else None
    if changes is None:
        views = _views(access)
        forms = _fresh_forms(views)
        forms[group] = form
        flash(f"{GROUPS[group]} settings were not saved. Correct the fields marked below.", "error")
        return _render(access, forms, views, status=400)

    actions = values.apply_changes(access.tenant, changes, _actor())
    flash(f"Saved {GROUPS[group]} settings." if actions else f"No {GROUPS[group]} setting changed.")
    return redirect(url_for("settings.show", slug=slug, _anchor=f"group-{group}"))


@bp.post("/settings/keys/<key_name>/remove")
@login_required
def remove(slug: str, key_name: str):
    """Remove one stored value, such as a secret that the admin wants gone."""
    access = _access()
    require_admin(access)
    key = KEYS.get(key_name)
    if key is None:
        abort(404)

    form = PostOnlyForm()
    if form.validate_on_submit():
        removed = values.clear_value(access.tenant, key.name, _actor())
        flash(f"Removed {key.label}." if removed else f"{key.label} was not set.")
    return redirect(url_for("settings.show", slug=slug, _anchor=f"group-{key.group}"))


@bp.get("/activity")
@login_required
def activity(slug: str):
    """List the tenant's audit events, newest first. Admins only."""
    access = _access()
    require_admin(access)
    events = audit.recent_events(access.tenant)
    return render_template("settings/activity.html", access=access, tenant=access.tenant, events=events, keys=KEYS)
