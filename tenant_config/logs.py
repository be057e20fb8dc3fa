"""Logging set-up, with a filter that masks anything shaped like a secret.

Code never logs a secret on purpose. The filter is the second line of
defence, for an exception message from a library that repeats its input.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# Each pattern with its replacement: Stripe secret and restricted keys, and Slack webhook paths.
SECRET_SHAPES = [
    (re.compile(r"\b[sr]k_(?:live|test)_[A-Za-z0-9]+"), REDACTED),
    (re.compile(r"/services/[^\s'\"<>]+"), "/services/" + REDACTED),
]


def redact(text: str) -> str:
    for pattern, replacement in SECRET_SHAPES:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    """Mask Stripe keys and Slack webhook paths in a record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure_logging() -> None:
    """Log INFO and above to stderr unless the host process configured logging, and mask secrets in every handler."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

    for handler in root.handlers:
        if not any(isinstance(existing, RedactSecretsFilter) for existing in handler.filters):
            handler.addFilter(RedactSecretsFilter())
