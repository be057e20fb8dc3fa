"""Logging set-up, with log records that mask anything shaped like a secret.

Code never logs a secret on purpose. The masking is the second line of
defence, for an exception message from a library that repeats its input.
It covers every handler and formatter, because it happens in the record.
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


class RedactedLogRecord(logging.LogRecord):
    """A log record whose message and formatted traceback are masked."""

    def getMessage(self) -> str:
        return redact(super().getMessage())

    @property
    def exc_text(self) -> str | None:
        return self._exc_text

    @exc_text.setter
    def exc_text(self, value: str | None) -> None:
        # Formatters store the formatted traceback here before they print it.
        self._exc_text = redact(value) if value else value


def configure_logging() -> None:
    """Mask secrets in every log record, and log INFO and above to stderr unless the host process configured logging."""
    if logging.getLogRecordFactory() is logging.LogRecord:
        logging.setLogRecordFactory(RedactedLogRecord)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
