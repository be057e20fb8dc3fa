"""The activity page: pages of 50 events, filters by key and by action, and bad filter values."""

import html
import re

import pytest

from tenant_config import audit
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.extensions import db

ROW = re.compile(r"<tr>\s*<td><time[^>]*>[^<]*</time></td>\s*<td>[^<]*</td>\s*<td>([a-z_]+)</td>\s*<td>([^<]*)</td>")
LINK = re.compile(r'<a rel="(prev|next)" href="([^"]+)"')


def add_events(app, slug: str, count: int, action: str = "replace", key: str | None = "smtp.host") -> None:
    with app.app_context():
        tenant = find_tenant(slug)
        for _ in range(count):
            audit.record(tenant, Actor(label="cli (test)"), action, key)
        db.session.commit()


def rows(page: str) -> list[tuple[str, str]]:
    return ROW.findall(page)


def links(page: str) -> dict[str, str]:
    return {rel: html.unescape(href) for rel, href in LINK.findall(page)}


@pytest.fixture
def admin(world, make_browser):
    return make_browser(world.acme_admin)


def test_pages_hold_fifty_events(app, admin):
    add_events(app, "acme", 120)

    first = admin.get("/t/acme/activity").text
    second = admin.get(links(first)["next"]).text
    third = admin.get(links(second)["next"]).text

    assert len(rows(first)) == 50
    assert len(rows(second)) == 50
    assert len(rows(third)) == 20
    assert "prev" not in links(first)
    assert links(second) == {"prev": "/t/acme/activity?page=1", "next": "/t/acme/activity?page=3"}
    assert "next" not in links(third)
    assert "Events 101 to 120, newest first." in third


def test_filters_by_key_and_action(app, admin):
    add_events(app, "acme", 3, action="set", key="smtp.host")
    add_events(app, "acme", 2, action="replace", key="smtp.host")
    add_events(app, "acme", 4, action="set", key="smtp.port")
    add_events(app, "acme", 1, action="test", key="slack")

    by_key = rows(admin.get("/t/acme/activity?key=smtp.host").text)
    by_action = rows(admin.get("/t/acme/activity?action=set").text)
    both = rows(admin.get("/t/acme/activity?key=smtp.host&action=replace").text)
    tests = rows(admin.get("/t/acme/activity?key=slack").text)

    assert len(by_key) == 5
    assert {label for _, label in by_key} == {"SMTP host"}
    assert len(by_action) == 7
    assert {action for action, _ in by_action} == {"set"}
    assert both == [("replace", "SMTP host")] * 2
    assert tests == [("test", "Slack test")]


def test_next_link_keeps_filters(app, admin):
    add_events(app, "acme", 51, action="set", key="smtp.port")
    add_events(app, "acme", 5, action="replace", key="smtp.port")

    page = admin.get("/t/acme/activity?key=smtp.port&action=set").text

    assert links(page) == {"next": "/t/acme/activity?page=2&key=smtp.port&action=set"}
    assert rows(admin.get(links(page)["next"]).text) == [("set", "SMTP port")]


def test_other_tenants_events_are_hidden(app, world, admin, make_browser):
    add_events(app, "globex", 3, action="set", key="smtp.host")

    page = admin.get("/t/acme/activity").text

    assert rows(page) == []
    assert "No changes yet." in page
    assert len(rows(make_browser(world.globex_admin).get("/t/globex/activity").text)) == 3


@pytest.mark.parametrize("query, message", [
    ("action=drop", "Unknown action “drop”. Showing every action."),
    ("key=stripe.api_key", "Unknown setting “stripe.api_key”. Showing every setting."),
    ("key=%3Cscript%3Ealert(1)%3C/script%3E", "Unknown setting “&lt;script&gt;alert(1)&lt;/script&gt;”."),
    ("key=" + "k" * 300, "Unknown setting “" + "k" * 40 + "…”."),
    ("page=0", "Page must be a whole number from 1 to 10,000. Showing page 1."),
    ("page=-2", "Page must be a whole number from 1 to 10,000. Showing page 1."),
    ("page=abc", "Page must be a whole number from 1 to 10,000. Showing page 1."),
    ("page=%D9%A3", "Page must be a whole number from 1 to 10,000. Showing page 1."),
    ("page=" + "9" * 40, "Page must be a whole number from 1 to 10,000. Showing page 1."),
])
def test_bad_filter_is_ignored_with_message(app, admin, query, message):
    add_events(app, "acme", 2, action="set", key="smtp.host")

    response = admin.get(f"/t/acme/activity?{query}")

    assert response.status_code == 200
    assert message in response.text
    assert len(rows(response.text)) == 2


def test_page_past_end_links_to_first(app, admin):
    add_events(app, "acme", 3)

    page = admin.get("/t/acme/activity?page=7&action=replace").text

    assert rows(page) == []
    assert "No events on page 7." in page
    assert 'href="/t/acme/activity?page=1&amp;action=replace"' in page


def test_member_cannot_see_activity(app, world, make_browser):
    assert make_browser(world.acme_member).get("/t/acme/activity?page=2").status_code == 403


def _plan(connection, statement) -> str:
    """Return the database's plan for ``statement`` as one string."""
    sql = str(statement.compile(connection.engine, compile_kwargs={"literal_binds": True}))
    if connection.dialect.name == "sqlite":
        return "\n".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
    # The test tables are tiny, so without this PostgreSQL would read the whole table, and the check would prove nothing.
    connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    return "\n".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))


@pytest.mark.parametrize("key, action, index", [
    (None, None, "ix_audit_event_tenant_time"),
    ("smtp.host", None, "ix_audit_event_tenant_key_time"),
    (None, "set", "ix_audit_event_tenant_action_time"),
])
def test_activity_query_uses_index(app, world, key, action, index):
    with app.app_context():
        statement = audit.events_query(find_tenant("acme"), key, action).offset(50).limit(51)
        with db.engine.connect() as connection:
            plan = _plan(connection, statement)

    assert index in plan
    assert "TEMP B-TREE" not in plan
    assert "Sort" not in plan
    assert not re.search(r"Seq Scan|SCAN audit_event\b(?! USING)", plan)


def test_events_page_reads_one_extra_row(app, world):
    add_events(app, "acme", 50)
    with app.app_context():
        tenant = find_tenant("acme")
        full = audit.events_page(tenant, 1, 50)
        assert len(full.events) == 50
        assert not full.has_next

        add_events(app, "acme", 1)
        assert audit.events_page(tenant, 1, 50).has_next
