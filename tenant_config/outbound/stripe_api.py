"""Calls to the Stripe API with a tenant's own key, through the official ``stripe`` package.

Each call builds its own ``stripe.StripeClient``. The module-global
``stripe.api_key`` is never set, because it would share one key between
all tenants served by a process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from ..secret import Secret
from . import transport
from .errors import OutboundError
from .policy import OutboundPolicy


class _StripeTransport(stripe.HTTPClient):
    """A ``stripe.HTTPClient`` that sends requests through the guarded transport."""

    name = "tenant-config"

    def __init__(self, policy: OutboundPolicy):
        super().__init__()
        self._policy = policy

    def request(self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage=None):
        body = post_data.encode("utf-8") if isinstance(post_data, str) else post_data
        try:
            # The API base is set by the operator, not by a tenant, so its address is not checked.
            response = transport.request("stripe", method.upper(), url, body, dict(headers or {}), self._policy,
                                         check_destination=False)
        except OutboundError as error:
            raise stripe.APIConnectionError(error.message, should_retry=not error.permanent) from None
        return response.body.decode("utf-8", errors="replace"), response.status, response.headers

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        raise NotImplementedError("streaming responses are not used")

    def close(self) -> None:
        pass


def client_for(api_key: Secret, policy: OutboundPolicy) -> stripe.StripeClient:
    """Build a client that sends this key, and only this key."""
    return stripe.StripeClient(
        api_key.reveal(),
        base_addresses={"api": policy.stripe_api_base},
        http_client=_StripeTransport(policy),
        max_network_retries=max(0, policy.max_attempts - 1),
    )


@dataclass(frozen=True)
class AccountSummary:
    account_id: str
    display_name: str
    livemode: bool

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"


@dataclass(frozen=True)
class Balance:
    livemode: bool
    available: list[tuple[int, str]]

    @property
    def mode(self) -> str:
        return "live" if self.livemode else "test"

    def describe(self) -> str:
        amounts = ", ".join(f"{amount / 100:.2f} {currency.upper()}" for amount, currency in self.available)
        return amounts or "no available balance"


def fetch_account(api_key: Secret, policy: OutboundPolicy) -> AccountSummary:
    """Retrieve the account that the key belongs to, and its mode from the balance."""
    client = client_for(api_key, policy)
    try:
        account = client.v1.accounts.retrieve_current()
        balance = client.v1.balance.retrieve()
    except stripe.StripeError as error:
        raise _translate(error) from None

    profile = getattr(account, "business_profile", None) or {}
    settings = getattr(account, "settings", None) or {}
    dashboard = settings.get("dashboard", {}) if hasattr(settings, "get") else {}
    name = (profile.get("name") if hasattr(profile, "get") else None) or dashboard.get("display_name") or ""
    return AccountSummary(account_id=account.id, display_name=name, livemode=bool(balance.livemode))


def fetch_balance(api_key: Secret, policy: OutboundPolicy) -> Balance:
    client = client_for(api_key, policy)
    try:
        balance = client.v1.balance.retrieve()
    except stripe.StripeError as error:
        raise _translate(error) from None
    available = [(int(entry.amount), str(entry.currency)) for entry in balance.available]
    return Balance(livemode=bool(balance.livemode), available=available)


def _translate(error: stripe.StripeError) -> OutboundError:
    """Turn a Stripe error into a short message that never repeats Stripe's own text."""
    if isinstance(error, stripe.AuthenticationError):
        return OutboundError("stripe", "Stripe rejected the key; check that it is current and complete", permanent=True)
    if isinstance(error, stripe.PermissionError):
        return OutboundError("stripe", "the key does not have permission for this request", permanent=True)
    if isinstance(error, stripe.RateLimitError):
        return OutboundError("stripe", "Stripe is rate limiting requests; try again later", permanent=False)
    if isinstance(error, stripe.APIConnectionError):
        return OutboundError("stripe", "could not connect to Stripe; try again later", permanent=False)

    status = error.http_status or 0
    if status >= 500:
        return OutboundError("stripe", f"Stripe is unavailable (HTTP {status}); try again later", permanent=False)
    return OutboundError("stripe", f"Stripe rejected the request (HTTP {status or 'unknown'})", permanent=True)
