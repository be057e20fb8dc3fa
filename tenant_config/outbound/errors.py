"""Typed errors for outbound calls. Their messages are safe to show a tenant admin."""

from __future__ import annotations

# The one text for every destination that is refused by policy or cannot be
# reached, so that the test buttons cannot be used to map the internal network.
DESTINATION_MESSAGE = "could not connect to the destination; check the host, port and URL"


class OutboundError(Exception):
    """A failed outbound call.

    ``integration`` is "stripe", "slack" or "smtp". ``permanent`` means that
    a retry cannot help. The message never contains a secret, a webhook URL
    or an upstream response body.
    """

    def __init__(self, integration: str, message: str, permanent: bool):
        self.integration = integration
        self.permanent = permanent
        self.message = message
        super().__init__(f"{integration}: {message}")


class DestinationError(OutboundError):
    """A destination that policy refuses, or that cannot be reached.

    ``reason`` is for operators' logs only. It never contains a secret.
    """

    def __init__(self, integration: str, reason: str, permanent: bool = True):
        self.reason = reason
        super().__init__(integration, DESTINATION_MESSAGE, permanent)


class NotConfiguredError(OutboundError):
    """The tenant has not set the values that this integration needs."""

    def __init__(self, integration: str, missing: list[str]):
        self.missing = missing
        super().__init__(integration, f"not configured: {', '.join(missing)} not set", permanent=True)
