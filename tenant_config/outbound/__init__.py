"""Outbound calls with a tenant's own credentials: Stripe, Slack and SMTP.

Every call goes through ``transport`` or ``smtp`` with fixed timeouts, no
redirects, and, for destinations that a tenant controls, address checks.
"""

from .errors import DESTINATION_MESSAGE, DestinationError, NotConfiguredError, OutboundError
from .policy import OutboundPolicy, current_policy

__all__ = [
    "DESTINATION_MESSAGE", "DestinationError", "NotConfiguredError", "OutboundError", "OutboundPolicy", "current_policy",
]
