import pytest

from tenant_config.registry import KEYS, ConfigKey, KeyType, UnknownKeyError, ValidationError, get_key

BUILT_IN = [
    "stripe.secret_key", "slack.webhook_url", "smtp.host", "smtp.port",
    "smtp.security", "smtp.username", "smtp.password", "smtp.from_address",
]


def test_registry_declares_built_in_keys():
    assert list(KEYS) == BUILT_IN
    encrypted = {name for name, key in KEYS.items() if key.encrypted}
    assert encrypted == {"stripe.secret_key", "slack.webhook_url", "smtp.password"}
    assert KEYS["smtp.port"].default == "587"
    assert KEYS["smtp.security"].default == "starttls"


def test_encrypted_key_cannot_have_default():
    with pytest.raises(ValueError, match="default"):
        ConfigKey(name="x.y", label="X", group="x", type=KeyType.SECRET, encrypted=True, default="a")


def test_unknown_key_lists_known_keys():
    with pytest.raises(UnknownKeyError) as raised:
        get_key("stripe.publishable_key")
    assert "stripe.secret_key" in str(raised.value)


@pytest.mark.parametrize("name, raw, expected", [
    ("stripe.secret_key", "sk_live_abc123DEF", "sk_live_abc123DEF"),
    ("stripe.secret_key", "  sk_test_abc123\n", "sk_test_abc123"),
    ("stripe.secret_key", "rk_live_abc123", "rk_live_abc123"),
    ("stripe.secret_key", "rk_test_abc123", "rk_test_abc123"),
    ("slack.webhook_url", "https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/services/T000/B000/XXXX"),
    ("smtp.host", "SMTP.Example.com", "smtp.example.com"),
    ("smtp.host", "203.0.113.0", None),
    ("smtp.host", "8.8.4.4", "8.8.4.4"),
    ("smtp.host", "[2606:4700::1111]", "2606:4700::1111"),
    ("smtp.port", "465", "465"),
    ("smtp.port", "25", "25"),
    ("smtp.port", "02525", "2525"),
    ("smtp.security", "tls", "tls"),
    ("smtp.security", "none", "none"),
    ("smtp.username", "mailer@example.com", "mailer@example.com"),
    ("smtp.password", "correct horse", "correct horse"),
    ("smtp.from_address", "Billing@Example.com", "Billing@example.com"),
])
def test_valid_values_are_normalized(name, raw, expected):
    if expected is None:
        with pytest.raises(ValidationError):
            KEYS[name].clean(raw)
        return
    assert KEYS[name].clean(raw) == expected


@pytest.mark.parametrize("name, raw, message", [
    ("stripe.secret_key", "pk_live_abc123", "publishable key"),
    ("stripe.secret_key", "pk_test_abc123", "publishable key"),
    ("stripe.secret_key", "sk_prod_abc123", "must start with sk_live_"),
    ("stripe.secret_key", "sk_live_abc-123", "letters and digits"),
    ("stripe.secret_key", "sk_live_abc\u200b123", "invisible"),
    ("stripe.secret_key", "sk_live_abc\u00a0123", "invisible"),
    ("stripe.secret_key", "********", "masked value"),
    ("stripe.secret_key", "sk_live_••••••••", "masked value"),
    ("slack.webhook_url", "http://hooks.slack.com/services/T0/B0/X", "https URL on hooks.slack.com"),
    ("slack.webhook_url", "https://hooks.example.com/services/T0/B0/X", "https URL on hooks.slack.com"),
    ("slack.webhook_url", "https://user@hooks.slack.com/services/T0/B0/X", "user name"),
    ("slack.webhook_url", "https://hooks.slack.com/services/T0/B0/X?x=1", "/services/T…/B…/…"),
    ("slack.webhook_url", "https://hooks.slack.com:8443/services/T0/B0/X", "port 443"),
    ("slack.webhook_url", "https://127.0.0.1/services/T0/B0/X", "https URL on hooks.slack.com"),
    ("slack.webhook_url", "https://169.254.169.254/services/T0/B0/X", "https URL on hooks.slack.com"),
    ("slack.webhook_url", "https://hooks.slack.com.evil.example/services/T0/B0/X", "https URL on hooks.slack.com"),
    ("slack.webhook_url", "https://hooks.slack.com/services/T0/B0/X#frag", "fragment"),
    ("slack.webhook_url", "https://hooks.slack.com/other/T0/B0/X", "/services/T…/B…/…"),
    ("smtp.host", "smtp..example.com", "host name"),
    ("smtp.host", "smtp.example.com\r\nRCPT TO:x", "single line"),
    ("smtp.host", "2130706433", "127.0.0.1 is a loopback address"),
    ("smtp.host", "169.254.169.254", "link-local"),
    ("smtp.host", "10.0.0.5", "private address"),
    ("smtp.host", "127.0.0.1", "loopback"),
    ("smtp.host", "[::ffff:127.0.0.1]", "loopback"),
    ("smtp.host", "0x7f.1", "loopback"),
    ("smtp.host", "[::]", "unspecified"),
    ("smtp.host", "localhost", "not localhost"),
    ("smtp.host", "mail.localhost", "not localhost"),
    ("smtp.port", "2526", "one of 25, 465, 587, 2525"),
    ("smtp.port", "0", "between 1 and 65535"),
    ("smtp.port", "70000", "between 1 and 65535"),
    ("smtp.port", "25a", "whole number"),
    ("smtp.port", "-5", "whole number"),
    ("smtp.security", "ssl", "one of: starttls, tls, none"),
    ("smtp.username", "usér", "ASCII"),
    ("smtp.password", "pässword", "ASCII"),
    ("smtp.password", "abc\x00def", "NUL"),
    ("smtp.password", "line\nbreak", "single line"),
    ("smtp.from_address", "billing.example.com", "email address"),
    ("smtp.password", "x" * 257, "at most 256 characters"),
    ("smtp.password", "   ", "required"),
])
def test_invalid_values_name_field_and_expectation(name, raw, message):
    with pytest.raises(ValidationError) as raised:
        KEYS[name].clean(raw)
    assert message in str(raised.value)
    if KEYS[name].encrypted and raw.strip():
        assert raw.strip() not in str(raised.value)
