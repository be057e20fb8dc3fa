"""Operator settings for outbound calls, read from the environment at start-up."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .policy import DEFAULT_SMTP_PORTS, DEFAULT_STRIPE_API_BASE, parse_host_list

logger = logging.getLogger(__name__)

TRUE_WORDS = ("1", "true", "yes", "on")


class OutboundConfigError(ValueError):
    """An invalid outbound setting. The message names the variable and what is expected."""


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise OutboundConfigError(f"{name} must be a number of seconds, for example 5") from None
    if value < 0:
        raise OutboundConfigError(f"{name} must not be negative")
    return value


def _ports(environ: Mapping[str, str]) -> tuple[int, ...]:
    text = environ.get("SMTP_ALLOWED_PORTS", "").strip()
    if not text:
        return DEFAULT_SMTP_PORTS
    try:
        ports = tuple(int(item) for item in text.split(",") if item.strip())
    except ValueError:
        raise OutboundConfigError("SMTP_ALLOWED_PORTS must be port numbers separated by commas, for example 587,2525") from None
    if not ports or not all(1 <= port <= 65535 for port in ports):
        raise OutboundConfigError("SMTP_ALLOWED_PORTS must list ports between 1 and 65535")
    return ports


def _stripe_api_base(environ: Mapping[str, str]) -> str:
    value = environ.get("STRIPE_API_BASE", "").strip().rstrip("/") or DEFAULT_STRIPE_API_BASE
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query:
        raise OutboundConfigError("STRIPE_API_BASE must be a base URL such as https://api.stripe.com, without a path")
    return value


def outbound_config(environ: Mapping[str, str]) -> dict[str, Any]:
    """Return the outbound settings as Flask config entries. Raises OutboundConfigError."""
    allow_private = environ.get("OUTBOUND_ALLOW_PRIVATE", "").strip().lower() in TRUE_WORDS
    try:
        slack_hosts = parse_host_list(environ.get("SLACK_WEBHOOK_HOSTS", "") or "hooks.slack.com")
    except ValueError as error:
        raise OutboundConfigError(f"SLACK_WEBHOOK_HOSTS is invalid: {error}. Expected host or host:port entries separated by commas") from None
    if not slack_hosts:
        raise OutboundConfigError("SLACK_WEBHOOK_HOSTS must name at least one host")

    ca_bundle = environ.get("SMTP_CA_BUNDLE", "").strip() or None
    if ca_bundle is not None and not os.path.isfile(ca_bundle):
        raise OutboundConfigError("SMTP_CA_BUNDLE must be the path of a PEM file of CA certificates")

    config = {
        "OUTBOUND_ALLOW_PRIVATE": allow_private,
        "SLACK_WEBHOOK_HOSTS": slack_hosts,
        "SMTP_ALLOWED_PORTS": _ports(environ),
        "SMTP_CA_BUNDLE": ca_bundle,
        "STRIPE_API_BASE": _stripe_api_base(environ),
        "OUTBOUND_CONNECT_TIMEOUT": _seconds(environ, "OUTBOUND_CONNECT_TIMEOUT", 5.0),
        "OUTBOUND_READ_TIMEOUT": _seconds(environ, "OUTBOUND_READ_TIMEOUT", 10.0),
        "OUTBOUND_FAILURE_SECONDS": _seconds(environ, "OUTBOUND_FAILURE_SECONDS", 5.0),
        "OUTBOUND_MAX_ATTEMPTS": 3,
        "OUTBOUND_MAX_RETRY_AFTER": 30.0,
        "TEST_SEND_RATE_LIMIT": environ.get("TEST_SEND_RATE_LIMIT", "").strip() or "5 per minute",
    }
    return config


def warn_about_private_destinations(config: Mapping[str, Any]) -> None:
    if config.get("OUTBOUND_ALLOW_PRIVATE"):
        logger.warning(
            "OUTBOUND_ALLOW_PRIVATE is on: tenants' Slack and SMTP destinations may point at private and loopback "
            "addresses, and Slack webhooks may use http. Use this only for development and tests."
        )
