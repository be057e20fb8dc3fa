"""Declarations of every config key a tenant can set, with their validation.

Adding a key needs only a ``ConfigKey`` in ``KEYS``: values live in one
generic table, so no schema change is needed.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from email_validator import EmailNotValidError, validate_email

from .outbound.errors import DestinationError
from .outbound.policy import check_slack_url, current_policy, parse_ip_literal, refused_address_reason

ADMIN = "admin"
MEMBER = "member"
ROLES = (ADMIN, MEMBER)

# Characters that a masked display is made of. A submitted secret that
# consists of them is a masked value pasted back, never a real secret.
MASK_CHARACTERS = frozenset("*•●·∙⁎∗＊")
_MASK_RUN = re.compile(r"[*•●·∙⁎∗＊]{4,}")


class ValidationError(ValueError):
    """A value that a key does not accept. The message never contains the value."""


class KeyType(enum.Enum):
    TEXT = "text"
    SECRET = "secret"
    URL = "url"
    EMAIL = "email"
    INTEGER = "integer"
    CHOICE = "choice"


Validator = Callable[[str], str]


@dataclass(frozen=True)
class ConfigKey:
    """One tenant setting: its name, how it is shown, validated and stored.

    ``read_roles`` may see a plain value, or a secret's change details; other
    members see only whether a secret is set. No role sees a secret's value.
    """

    name: str
    label: str
    group: str
    type: KeyType
    help: str = ""
    encrypted: bool = False
    max_length: int = 255
    default: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    min_value: int | None = None
    max_value: int | None = None
    validator: Validator | None = None
    write_roles: frozenset[str] = frozenset({ADMIN})
    read_roles: frozenset[str] = frozenset({ADMIN, MEMBER})
    placeholder: str = ""
    # Keys whose change makes this secret invalid, such as the server a password is sent to.
    bound_to: tuple[str, ...] = ()

    def __post_init__(self):
        if self.encrypted and self.default is not None:
            raise ValueError(f"{self.name}: an encrypted key cannot have a default")
        if self.type is KeyType.CHOICE and not self.choices:
            raise ValueError(f"{self.name}: a choice key needs choices")

    def clean(self, raw: str) -> str:
        """Validate and normalize a submitted value, raising ValidationError."""
        value = raw.strip()
        if not value:
            raise ValidationError(f"{self.label} is required.")

        _reject_control_characters(self, value)
        if len(value) > self.max_length:
            raise ValidationError(f"{self.label} must be at most {self.max_length} characters.")
        if self.encrypted:
            _reject_masked(self, value)

        value = _TYPE_CHECKS[self.type](self, value)
        if self.validator is not None:
            value = self.validator(value)
        return value


def _reject_control_characters(key: ConfigKey, value: str) -> None:
    for char in value:
        category = unicodedata.category(char)
        if char == "\x00":
            raise ValidationError(f"{key.label} must not contain a NUL character.")
        if char == "\ufffd":
            raise ValidationError(f"{key.label} contains text that could not be decoded; type it again.")
        if category in ("Cc", "Zl", "Zp"):
            raise ValidationError(f"{key.label} must be a single line without control characters.")
        if category == "Cf" or (category == "Zs" and char != " "):
            raise ValidationError(
                f"{key.label} contains an invisible or non-standard space character (U+{ord(char):04X}); "
                "retype the value instead of pasting it."
            )


def _reject_masked(key: ConfigKey, value: str) -> None:
    if set(value) <= MASK_CHARACTERS or _MASK_RUN.search(value):
        raise ValidationError(
            f"{key.label} looks like a masked value. Enter the real value, or leave the field empty to keep the stored one."
        )


def _check_text(key: ConfigKey, value: str) -> str:
    return value


def _split_url(label: str, value: str) -> SplitResult:
    """Split a URL, turning the ValueError that urlsplit raises for a malformed host or port into a field error."""
    try:
        parts = urlsplit(value)
        parts.port  # reading the port raises ValueError when it is not a number
    except ValueError:
        raise ValidationError(f"{label} must be a valid URL.") from None
    return parts


def _check_url(key: ConfigKey, value: str) -> str:
    parts = _split_url(key.label, value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(f"{key.label} must be a full URL starting with https://.")
    return value


def _check_email(key: ConfigKey, value: str) -> str:
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise ValidationError(f"{key.label} must be an email address such as billing@example.com.") from None
    return result.normalized


def _check_integer(key: ConfigKey, value: str) -> str:
    if not re.fullmatch(r"[0-9]+", value):
        raise ValidationError(f"{key.label} must be a whole number.")

    number = int(value)
    if key.min_value is not None and number < key.min_value or key.max_value is not None and number > key.max_value:
        raise ValidationError(f"{key.label} must be between {key.min_value} and {key.max_value}.")
    return str(number)


def _check_choice(key: ConfigKey, value: str) -> str:
    allowed = [choice for choice, _ in key.choices]
    if value not in allowed:
        raise ValidationError(f"{key.label} must be one of: {', '.join(allowed)}.")
    return value


_TYPE_CHECKS: dict[KeyType, Callable[[ConfigKey, str], str]] = {
    KeyType.TEXT: _check_text,
    KeyType.SECRET: _check_text,
    KeyType.URL: _check_url,
    KeyType.EMAIL: _check_email,
    KeyType.INTEGER: _check_integer,
    KeyType.CHOICE: _check_choice,
}


_STRIPE_KEY = re.compile(r"(sk|rk)_(live|test)_[A-Za-z0-9]+")


def validate_stripe_secret_key(value: str) -> str:
    if value.startswith("pk_"):
        raise ValidationError(
            "This is a publishable key (pk_…). Stripe needs a secret key (sk_live_… or sk_test_…) "
            "or a restricted key (rk_live_… or rk_test_…)."
        )
    if not _STRIPE_KEY.fullmatch(value):
        raise ValidationError(
            "Stripe secret key must start with sk_live_, sk_test_, rk_live_ or rk_test_, "
            "followed by letters and digits only."
        )
    return value


def validate_slack_webhook_url(value: str) -> str:
    policy = current_policy()
    allowed = ", ".join(host if port == 443 else f"{host}:{port}" for host, port in policy.slack_hosts)
    message = f"Slack webhook URL must be an https URL on {allowed} with a path like /services/T…/B…/…"

    parts = _split_url("Slack webhook URL", value)
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ValidationError("Slack webhook URL must not contain a user name, password or fragment (#…).")
    try:
        check_slack_url(value, policy)
    except DestinationError:
        raise ValidationError(message + ", on port 443.") from None
    if not re.fullmatch(r"/services/[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)+", parts.path) or parts.query:
        raise ValidationError(message + ".")
    return value


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_HOST_MESSAGE = "SMTP host must be a host name such as smtp.example.com, or an IP address."


def _reject_internal_address(address) -> None:
    reason = refused_address_reason(address)
    if reason is not None and not current_policy().allow_private:
        raise ValidationError(f"SMTP host must be a public mail server; {address} is {reason}.")


def validate_host(value: str) -> str:
    """Accept a host name or an IP address that is not inside the platform's network.

    Names are resolved and checked again at every connection, because a
    name can point anywhere later.
    """
    literal = parse_ip_literal(value)
    if literal is not None:
        _reject_internal_address(literal)
        return str(literal)

    name = value.rstrip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValidationError(_HOST_MESSAGE)
    if (name == "localhost" or name.endswith(".localhost")) and not current_policy().allow_private:
        raise ValidationError("SMTP host must be a public mail server, not localhost.")
    return name


def validate_smtp_port(value: str) -> str:
    allowed = current_policy().smtp_ports
    if int(value) not in allowed:
        raise ValidationError(f"SMTP port must be one of {', '.join(str(port) for port in allowed)}.")
    return value


def validate_ascii_credential(label: str) -> Validator:
    """Build a validator that rejects non-ASCII text, which SMTP AUTH cannot carry."""

    def check(value: str) -> str:
        if not value.isascii():
            raise ValidationError(f"{label} must contain ASCII characters only, because SMTP authentication cannot send others.")
        return value

    return check


GROUPS: dict[str, str] = {
    "stripe": "Stripe",
    "slack": "Slack",
    "smtp": "Email (SMTP)",
}

KEYS: dict[str, ConfigKey] = {
    key.name: key
    for key in [
        ConfigKey(
            name="stripe.secret_key",
            label="Stripe secret key",
            group="stripe",
            type=KeyType.SECRET,
            encrypted=True,
            help="A secret key (sk_live_… or sk_test_…) or a restricted key (rk_…) from the Stripe dashboard.",
            max_length=255,
            validator=validate_stripe_secret_key,
            placeholder="sk_live_…",
        ),
        ConfigKey(
            name="slack.webhook_url",
            label="Slack webhook URL",
            group="slack",
            type=KeyType.URL,
            encrypted=True,
            help="The incoming-webhook URL from your Slack app. Anyone with it can post to the channel, so it is stored encrypted.",
            max_length=500,
            validator=validate_slack_webhook_url,
            placeholder="https://hooks.slack.com/services/…",
        ),
        ConfigKey(
            name="smtp.host",
            label="SMTP host",
            group="smtp",
            type=KeyType.TEXT,
            help="Host name or IP address of your mail server.",
            max_length=253,
            validator=validate_host,
            placeholder="smtp.example.com",
        ),
        ConfigKey(
            name="smtp.port",
            label="SMTP port",
            group="smtp",
            type=KeyType.INTEGER,
            help="Usually 587 with STARTTLS or 465 with TLS.",
            default="587",
            min_value=1,
            max_value=65535,
            max_length=5,
            validator=validate_smtp_port,
        ),
        ConfigKey(
            name="smtp.security",
            label="SMTP security",
            group="smtp",
            type=KeyType.CHOICE,
            help="How the connection is encrypted.",
            default="starttls",
            choices=(("starttls", "STARTTLS"), ("tls", "TLS"), ("none", "None")),
            max_length=16,
        ),
        ConfigKey(
            name="smtp.username",
            label="SMTP username",
            group="smtp",
            type=KeyType.TEXT,
            help="The account used to log in to the mail server.",
            max_length=254,
            validator=validate_ascii_credential("SMTP username"),
        ),
        ConfigKey(
            name="smtp.password",
            label="SMTP password",
            group="smtp",
            type=KeyType.SECRET,
            encrypted=True,
            help="Stored encrypted, and never shown again after you save it. It is sent only to the host, "
                 "port and username it was saved with, so changing one of them needs the password again.",
            max_length=256,
            bound_to=("smtp.host", "smtp.port", "smtp.username"),
            validator=validate_ascii_credential("SMTP password"),
        ),
        ConfigKey(
            name="smtp.from_address",
            label="From address",
            group="smtp",
            type=KeyType.EMAIL,
            help="The sender address of outgoing mail.",
            max_length=254,
            placeholder="billing@example.com",
        ),
    ]
}


class UnknownKeyError(KeyError):
    """A key name that the registry does not declare."""

    def __init__(self, name: str):
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown config key {self.name!r}; known keys: {', '.join(KEYS)}"


def get_key(name: str) -> ConfigKey:
    try:
        return KEYS[name]
    except KeyError:
        raise UnknownKeyError(name) from None


def keys_in_group(group: str) -> list[ConfigKey]:
    return [key for key in KEYS.values() if key.group == group]
