"""Posting a message to a tenant's Slack incoming webhook."""

from __future__ import annotations

import email.utils
import json
import logging
import time
from datetime import datetime, timezone

from . import transport
from .errors import OutboundError
from .policy import OutboundPolicy, check_slack_url

logger = logging.getLogger(__name__)

BACKOFF_SECONDS = 0.5


def _retry_after_seconds(value: str | None, fallback: float) -> float:
    if not value:
        return fallback
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def post_message(webhook_url: str, text: str, policy: OutboundPolicy, tenant: str = "") -> None:
    """Post ``text`` to the webhook, retrying 429 and 5xx responses a bounded number of times.

    Raises OutboundError (integration "slack"). Neither logs nor errors contain the URL.
    """
    check_slack_url(webhook_url, policy)
    body = json.dumps({"text": text}).encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "tenant-config"}

    attempt = 1
    while True:
        response = transport.request("slack", "POST", webhook_url, body, headers, policy)
        status = response.status
        if 200 <= status < 300:
            return
        if status != 429 and status < 500:
            raise OutboundError("slack", _permanent_message(status), permanent=True)

        delay = BACKOFF_SECONDS * 2 ** (attempt - 1)
        if status == 429:
            delay = _retry_after_seconds(response.headers.get("Retry-After"), delay)
        if attempt >= policy.max_attempts or delay > policy.max_retry_after:
            raise OutboundError("slack", f"Slack is unavailable (HTTP {status}); try again later", permanent=False)

        logger.warning("Slack returned HTTP %s for tenant %s; retry %s in %.1f s", status, tenant, attempt, delay)
        time.sleep(delay)
        attempt += 1


def _permanent_message(status: int) -> str:
    if 300 <= status < 400:
        return f"Slack returned a redirect (HTTP {status}), which is not followed; check the webhook URL"
    if status in (403, 404, 410):
        return f"Slack rejected the webhook (HTTP {status}); it may have been revoked, so enter a new webhook URL"
    return f"Slack rejected the message (HTTP {status})"
