"""Destination policy for outbound calls: address checks, the Slack host allowlist and SMTP ports.

Tenants control the destinations (a webhook URL, an SMTP host), so every
address is checked before a connection is made, and the connection goes to
the checked address with no second DNS lookup.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .errors import DestinationError

DEFAULT_SMTP_PORTS = (25, 465, 587, 2525)
DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class OutboundPolicy:
    """Operator settings for outbound calls, read from the app config."""

    allow_private: bool = False
    slack_hosts: tuple[tuple[str, int], ...] = (("hooks.slack.com", 443),)
    smtp_ports: tuple[int, ...] = DEFAULT_SMTP_PORTS
    smtp_ca_bundle: str | None = None
    stripe_api_base: str = DEFAULT_STRIPE_API_BASE
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 3
    max_retry_after: float = 30.0
    failure_seconds: float = 5.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OutboundPolicy:
        return cls(
            allow_private=bool(config.get("OUTBOUND_ALLOW_PRIVATE", False)),
            slack_hosts=tuple(config.get("SLACK_WEBHOOK_HOSTS", (("hooks.slack.com", 443),))),
            smtp_ports=tuple(config.get("SMTP_ALLOWED_PORTS", DEFAULT_SMTP_PORTS)),
            smtp_ca_bundle=config.get("SMTP_CA_BUNDLE"),
            stripe_api_base=config.get("STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE),
            connect_timeout=float(config.get("OUTBOUND_CONNECT_TIMEOUT", 5.0)),
            read_timeout=float(config.get("OUTBOUND_READ_TIMEOUT", 10.0)),
            max_attempts=int(config.get("OUTBOUND_MAX_ATTEMPTS", 3)),
            max_retry_after=float(config.get("OUTBOUND_MAX_RETRY_AFTER", 30.0)),
            failure_seconds=float(config.get("OUTBOUND_FAILURE_SECONDS", 5.0)),
        )


def current_policy() -> OutboundPolicy:
    """Return the policy of the current app, or the strict defaults outside an app context."""
    from flask import current_app, has_app_context

    if has_app_context():
        return OutboundPolicy.from_config(current_app.config)
    return OutboundPolicy()


def refused_address_reason(address: IPAddress) -> str | None:
    """Return why an address must not be reached from the platform, or None when it may be."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return refused_address_reason(embedded)
        if address.teredo is not None:
            return "a Teredo address"

    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    )
    for attribute, reason in checks:
        if getattr(address, attribute):
            return reason
    if not address.is_global:
        return "a non-global address"
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """Parse an IP literal, including the numeric IPv4 forms that resolvers accept (``2130706433``, ``0x7f.1``)."""
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(candidate)
    except ValueError:
        pass

    if not candidate or not all(char in "0123456789abcdefxABCDEFX." for char in candidate):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(candidate))
    except OSError:
        return None


def check_address(integration: str, address: IPAddress, policy: OutboundPolicy) -> None:
    reason = refused_address_reason(address)
    if reason is not None and not policy.allow_private:
        raise DestinationError(integration, f"{address} is {reason}")


def resolve_checked(integration: str, host: str, port: int, policy: OutboundPolicy) -> IPAddress:
    """Resolve a host once, check every address it has, and return the one to connect to."""
    literal = parse_ip_literal(host)
    if literal is not None:
        check_address(integration, literal, policy)
        return literal

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise DestinationError(integration, f"cannot resolve {host}: {error}", permanent=False) from None

    addresses = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    if not addresses:
        raise DestinationError(integration, f"{host} has no address", permanent=False)
    for address in addresses:
        check_address(integration, address, policy)
    return addresses[0]


def _host_entry(parts: SplitResult) -> tuple[str, int]:
    default_port = 443 if parts.scheme == "https" else 80
    return (parts.hostname or "").lower(), parts.port or default_port


def parse_host_list(text: str) -> tuple[tuple[str, int], ...]:
    """Parse comma-separated ``host[:port]`` entries, with IPv6 hosts in brackets and 443 as the default port."""
    entries = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        parts = urlsplit(f"//{item}")
        try:
            port = parts.port or 443
        except ValueError:
            raise ValueError(f"invalid port in {item!r}") from None
        if not parts.hostname or parts.path or parts.username:
            raise ValueError(f"{item!r} is not a host or host:port")
        entries.append((parts.hostname, port))
    return tuple(entries)


def check_slack_url(url: str, policy: OutboundPolicy) -> SplitResult:
    """Check a webhook URL against the scheme, the host allowlist and the port.

    ``http`` is accepted only when the operator allows private destinations,
    for the local development sinks. Raises DestinationError.
    """
    try:
        parts = urlsplit(url)
        host, port = _host_entry(parts)
    except ValueError:
        raise DestinationError("slack", "the URL cannot be parsed") from None

    allowed_schemes = ("https", "http") if policy.allow_private else ("https",)
    if parts.scheme not in allowed_schemes:
        raise DestinationError("slack", f"scheme {parts.scheme!r} is not allowed")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise DestinationError("slack", "user info or fragment in the URL")
    if (host, port) not in policy.slack_hosts:
        raise DestinationError("slack", f"host {host}:{port} is not on the Slack allowlist")
    return parts


def check_smtp_port(port: int, policy: OutboundPolicy) -> None:
    if port not in policy.smtp_ports:
        raise DestinationError("smtp", f"port {port} is not an allowed SMTP port")
