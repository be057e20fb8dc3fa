"""The relative and absolute times on the pages."""

from datetime import datetime, timedelta, timezone

import pytest

from tenant_config.display import iso_time, time_ago, utc_time

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize("before, expected", [
    (timedelta(seconds=0), "just now"),
    (timedelta(seconds=59), "just now"),
    (timedelta(seconds=-30), "just now"),
    (timedelta(seconds=60), "1 minute ago"),
    (timedelta(minutes=5, seconds=59), "5 minutes ago"),
    (timedelta(minutes=59), "59 minutes ago"),
    (timedelta(hours=1), "1 hour ago"),
    (timedelta(hours=23, minutes=59), "23 hours ago"),
    (timedelta(days=1), "1 day ago"),
    (timedelta(days=29), "29 days ago"),
    (timedelta(days=30), "on 2026-01-31"),
])
def test_time_ago_table(before, expected):
    assert time_ago(NOW - before, now=NOW) == expected


def test_naive_time_counts_as_utc():
    stored = datetime(2026, 3, 2, 9, 25)
    assert time_ago(stored, now=NOW) == "5 minutes ago"
    assert utc_time(stored) == "2026-03-02 09:25 UTC"
    assert iso_time(stored) == "2026-03-02T09:25:00+00:00"


def test_other_zone_is_shown_in_utc():
    paris = datetime(2026, 3, 2, 10, 25, tzinfo=timezone(timedelta(hours=1)))
    assert utc_time(paris) == "2026-03-02 09:25 UTC"
    assert time_ago(paris, now=NOW) == "5 minutes ago"
