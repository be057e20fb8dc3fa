"""Flask-WTF forms. Settings forms are built from the registry, one per group."""

from __future__ import annotations

from functools import cache

from flask_wtf import FlaskForm
from wtforms import EmailField, Field, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import InputRequired
from werkzeug.datastructures import MultiDict
from wtforms.widgets import Input, PasswordInput

from .registry import ConfigKey, KeyType, ValidationError, keys_in_group


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[InputRequired()], render_kw={"autocomplete": "username"})
    password = PasswordField("Password", validators=[InputRequired()], render_kw={"autocomplete": "current-password"})


class PostOnlyForm(FlaskForm):
    """A form with only the CSRF token, for buttons such as Log out and Remove."""


class SecretInput(PasswordInput):
    """A password input rendered without any ``value`` attribute, whatever the field holds."""

    def __call__(self, field: Field, **kwargs) -> str:
        kwargs["value"] = False
        return Input.__call__(self, field, **kwargs)


def field_name(key: ConfigKey) -> str:
    return key.name.replace(".", "__")


def _field_for(key: ConfigKey) -> Field:
    render_kw = {"maxlength": key.max_length}
    if key.placeholder:
        render_kw["placeholder"] = key.placeholder

    if key.encrypted:
        # SecretInput never renders a value, so a stored or submitted
        # secret cannot come back in the HTML.
        render_kw.update(autocomplete="new-password", spellcheck="false")
        return PasswordField(key.label, description=key.help, render_kw=render_kw, widget=SecretInput())
    if key.type is KeyType.CHOICE:
        return SelectField(
            key.label, description=key.help, choices=[SelectChoice(value, label) for value, label in key.choices], validate_choice=False,
        )
    if key.type is KeyType.INTEGER:
        render_kw.update(inputmode="numeric")
    if key.type is KeyType.EMAIL:
        render_kw.update(autocomplete="email")
    return StringField(key.label, description=key.help, render_kw=render_kw)


@cache
def settings_form_class(group: str) -> type[FlaskForm]:
    fields = {field_name(key): _field_for(key) for key in keys_in_group(group)}
    return type(f"{group.title()}SettingsForm", (FlaskForm,), fields)


def collect_changes(form: FlaskForm, group: str, submitted: MultiDict) -> dict[str, str | None] | None:
    """Validate each submitted field with its registry key.

    Returns the changes to apply (None clears a plain key), or None when any
    field is invalid, in which case each bad field carries its error. Fields
    that were not submitted are left out, so they keep their stored values,
    and a field submitted twice is an error. An empty secret field keeps the
    stored secret. Unknown fields are ignored.
    """
    changes: dict[str, str | None] = {}
    valid = True
    for key in keys_in_group(group):
        field = form[field_name(key)]
        if field.name not in submitted:
            continue
        if len(submitted.getlist(field.name)) > 1:
            field.errors = [f"{key.label} was submitted more than once. Reload the page and try again."]
            valid = False
            continue

        raw = field.data or ""
        if not raw.strip():
            if not key.encrypted:
                changes[key.name] = None
            continue

        try:
            changes[key.name] = key.clean(raw)
        except ValidationError as error:
            field.errors = [str(error)]
            valid = False

    return changes if valid else None
