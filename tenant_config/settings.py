"""The tenant settings page, its saves and removals."""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from . import checks, readiness, values
from .access import TenantAccess, require_admin
from .audit import Actor
from .forms import PostOnlyForm, collect_changes, field_name, settings_form_class
from .registry import GROUPS, KEYS, ConfigKey, KeyType, keys_in_group

bp = Blueprint("settings", __name__, url_prefix="/t/<slug>")


def _access() -> TenantAccess:
    return g.tenant_access


def _actor() -> Actor:
    return Actor.for_user(current_user, request.remote_addr)


def _views(access: TenantAccess) -> dict[str, values.SettingView]:
    return {view.key.name: view for view in values.describe(access.tenant)}


@dataclass(frozen=True)
class FieldState:
    """The input of one key as the page shows it: its id (also its name), the value of a plain input, and its errors.

    The template writes the inputs out itself, because rendering them
    through WTForms' widgets and labels took a quarter of a page's time.
    """

    id: str
    data: str
    errors: tuple[str, ...] = ()


def _stored_fields(views: dict[str, values.SettingView]) -> dict[str, FieldState]:
    """Return the inputs of every key, filled with the stored plain values and no secret."""
    return {
        name: FieldState(field_name(view.key), "" if view.key.encrypted else view.value or "")
        for name, view in views.items()
    }


def _submitted_fields(form, group: str) -> dict[str, FieldState]:
    """Return the inputs of a group as the admin submitted them, with their errors. Secrets are never shown."""
    fields = {}
    for key in keys_in_group(group):
        field = form[field_name(key)]
        fields[key.name] = FieldState(field.id, "" if key.encrypted else field.data or "", tuple(field.errors))
    return fields


def _row_versions(group: str, views: dict) -> str:
    """Encode the row version of each key in the group, 0 for a key that is not set, for the form."""
    versions = {}
    for key in keys_in_group(group):
        row = views[key.name].row
        versions[key.name] = row.row_version if row is not None else 0
    return json.dumps(versions)


@dataclass(frozen=True)
class Entry:
    """One key as the template shows it. ``described`` lists the ids that its input's aria-describedby names."""

    key: ConfigKey
    field: FieldState
    view: values.SettingView
    described: str


@dataclass(frozen=True)
class Section:
    """One group of the page: its form's row versions and its keys. Objects, not dicts, because Jinja
    reads ``section.entries`` as an attribute first and a dict would make it raise and retry."""

    group: str
    label: str
    versions: str
    entries: list[Entry]


def _entry(key: ConfigKey, field: FieldState, view: values.SettingView) -> Entry:
    described = [f"{field.id}-help"]
    if key.encrypted:
        described.append(f"{field.id}-status")
    if field.errors:
        described.append(f"{field.id}-error")
    return Entry(key, field, view, " ".join(described))


def _render(
    access: TenantAccess, fields: dict[str, FieldState], views: dict[str, values.SettingView], status: int = 200,
    kept_versions: dict[str, str] | None = None,
):
    sections = [
        Section(
            group, label, (kept_versions or {}).get(group) or _row_versions(group, views),
            [_entry(key, fields[key.name], views[key.name]) for key in keys_in_group(group)],
        )
        for group, label in GROUPS.items()
    ]
    states = readiness.of_tenant(access.tenant, views, checks.last_tests(access.tenant))
    return render_template(
        "settings/index.html", access=access, tenant=access.tenant, sections=sections, readiness=states, KeyType=KeyType,
    ), status


def _ask_for_bound_secrets(form, access: TenantAccess, changes: dict) -> bool:
    """Mark each stored secret that the changes would send to a new destination. Returns True if any."""
    invalidated = values.invalidated_secrets(values.stored_rows(access.tenant), changes)
    for name in invalidated:
        key = KEYS[name]
        bound = ", ".join(KEYS[other].label for other in key.bound_to)
        form[field_name(key)].errors = [
            f"Enter the {key.label} again, or remove it first: a saved {key.label} is only sent to the "
            f"{bound} it was saved with."
        ]
    return bool(invalidated)


def _rejected(access: TenantAccess, group: str, form, status: int):
    """Show the page again with the admin's input. After invalid input the form keeps the versions it
    was first rendered with, so that a later save still detects a change made meanwhile."""
    views = _views(access)
    fields = _stored_fields(views)
    fields.update(_submitted_fields(form, group))
    flash(f"{GROUPS[group]} settings were not saved. Correct the fields marked below.", "error")
    kept_versions = {group: request.form["row_versions"]} if status == 400 and "row_versions" in request.form else {}
    return _render(access, fields, views, status=status, kept_versions=kept_versions)


def _expected_versions() -> dict[str, int] | None:
    """Read the row versions that the form was rendered with; None when the form carries none."""
    raw = request.form.get("row_versions")
    if raw is None:
        return None
    try:
        versions = json.loads(raw)
    except ValueError:
        abort(400)
    if not isinstance(versions, dict) or not all(
        isinstance(name, str) and isinstance(version, int) for name, version in versions.items()
    ):
        abort(400)
    return versions


def _mark_conflict(form, conflict: values.ConflictError) -> None:
    key = KEYS[conflict.key_name]
    if conflict.changed_by is None:
        message = f"{key.label} was removed after you loaded this page. Reload to see the current settings."
    else:
        when = conflict.changed_at.strftime("%Y-%m-%d %H:%M UTC")
        message = f"{key.label} was changed by {conflict.changed_by} at {when}. Reload to see the current value."
    if field_name(key) in form:
        form[field_name(key)].errors = [message]
    else:
        flash(message, "error")


@bp.get("/settings")
@login_required
def show(slug: str):
    """Show every setting of the tenant, with secrets masked."""
    access = _access()
    views = _views(access)
    return _render(access, _stored_fields(views), views)


@bp.post("/settings/<group>")
@login_required
def save(slug: str, group: str):
    """Validate and save the fields of one group that the admin submitted."""
    access = _access()
    require_admin(access)
    if group not in GROUPS:
        abort(404)

    form = settings_form_class(group)()
    expected_versions = _expected_versions()
    changes = collect_changes(form, group, request.form) if form.validate_on_submit() else None
    if changes is not None and _ask_for_bound_secrets(form, access, changes):
        changes = None
    if changes is None:
        return _rejected(access, group, form, status=400)

    try:
        actions = values.apply_changes(access.tenant, changes, _actor(), expected_versions)
    except values.ConflictError as conflict:
        _mark_conflict(form, conflict)
        return _rejected(access, group, form, status=409)
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
