"""Jinja filters that show stored times on the pages: absolute in UTC, or relative such as "5 minutes ago"."""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from .models import as_utc, utcnow

# Relative times switch to a date after this many days.
MAX_RELATIVE_DAYS = 30


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def time_ago(moment: datetime, now: datetime | None = None) -> str:
    """Describe ``moment`` relative to ``now``, such as "just now", "5 minutes ago" or "on 2026-03-02"."""
    moment = as_utc(moment)
    seconds = ((now or utcnow()) - moment).total_seconds()

    # A moment in the future comes from a server whose clock runs ahead, so it shows as now.
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{_plural(int(seconds // 60), 'minute')} ago"
    if seconds < 86400:
        return f"{_plural(int(seconds // 3600), 'hour')} ago"
    if seconds < MAX_RELATIVE_DAYS * 86400:
        return f"{_plural(int(seconds // 86400), 'day')} ago"
    return f"on {moment:%Y-%m-%d}"


def utc_time(moment: datetime) -> str:
    """Format ``moment`` as "2026-03-02 09:30 UTC"."""
    return f"{as_utc(moment):%Y-%m-%d %H:%M} UTC"


def iso_time(moment: datetime) -> str:
    """Format ``moment`` for the ``datetime`` attribute of a ``<time>`` element."""
    return as_utc(moment).isoformat(timespec="seconds")


def register(app: Flask) -> None:
    app.add_template_filter(time_ago, "time_ago")
    app.add_template_filter(utc_time, "utc_time")
    app.add_template_filter(iso_time, "iso_time")
