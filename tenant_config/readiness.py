"""The readiness of each integration: complete, incomplete (required keys missing) or failing its last test."""

from __future__ import annotations

from dataclasses import dataclass

from . import integrations
from .direct_query import NamedRow
from .models import Tenant, as_utc
from .registry import KEYS
from .values import SettingView

COMPLETE = "complete"
INCOMPLETE = "incomplete"
FAILING = "failing"

LABELS = {COMPLETE: "Complete", INCOMPLETE: "Incomplete", FAILING: "Failing"}

# The prefix of a failed test's outcome in the audit trail. A passed test's outcome is "ok".
FAILED_PREFIX = "failed: "


@dataclass(frozen=True)
class Readiness:
    """One integration's state, the labels of its missing required keys, and its newest test send.

    ``last_test`` is a row of that test's audit event, as ``checks.last_tests`` returns it.
    """

    state: str
    missing: tuple[str, ...]
    last_test: NamedRow | None
    # True when a key of the integration was saved after the last test, so that test no longer counts.
    changed_since_test: bool

    @property
    def label(self) -> str:
        return LABELS[self.state]

    @property
    def last_test_passed(self) -> bool:
        return self.last_test is not None and not (self.last_test.outcome or "").startswith(FAILED_PREFIX)

    @property
    def failure(self) -> str | None:
        """The message of the last test when it failed, else None."""
        if self.last_test is None or self.last_test_passed:
            return None
        return (self.last_test.outcome or "").removeprefix(FAILED_PREFIX)


def _changed_after(views: list[SettingView], event: NamedRow | None) -> bool:
    if event is None:
        return False
    tested_at = as_utc(event.created_at)
    return any(view.row is not None and as_utc(view.row.updated_at) > tested_at for view in views)


def of_integration(
    tenant: Tenant, integration: str, views: dict[str, SettingView], last_test: NamedRow | None,
) -> Readiness:
    """Compute one integration's readiness from the page's views, with no query of its own."""
    stored = {name for name, view in views.items() if view.is_set}
    missing = tuple(KEYS[name].label for name in integrations.missing_keys(tenant, integration, stored))
    own_views = [view for view in views.values() if view.key.group == integration]
    changed = _changed_after(own_views, last_test)

    state = COMPLETE
    if missing:
        state = INCOMPLETE
    elif last_test is not None and not changed and (last_test.outcome or "").startswith(FAILED_PREFIX):
        state = FAILING
    return Readiness(state=state, missing=missing, last_test=last_test, changed_since_test=changed)


def of_tenant(tenant: Tenant, views: dict[str, SettingView], last_tests: dict[str, NamedRow]) -> dict[str, Readiness]:
    """Compute the readiness of every integration, keyed by integration name."""
    return {
        integration: of_integration(tenant, integration, views, last_tests.get(integration))
        for integration in integrations.INTEGRATIONS
    }
