import logging

import sqlalchemy as sa

from tenant_config import values
from tenant_config.accounts import find_tenant
from tenant_config.audit import Actor
from tenant_config.extensions import db


def test_apply_changes_logs_each_change(app, world, caplog):
    caplog.set_level(logging.INFO, logger="tenant_config.values")
    with app.app_context():
        actor = Actor(label="admin@acme.example", user_id=None)
        values.apply_changes(find_tenant("acme"), {"smtp.host": "smtp.acme.example", "smtp.port": "2525"}, actor)

    messages = [record.getMessage() for record in caplog.records if record.name == "tenant_config.values"]
    assert messages == [
        "Config smtp.host set for tenant acme by admin@acme.example",
        "Config smtp.port set for tenant acme by admin@acme.example",
    ]


def test_apply_changes_runs_no_query_after_commit(app, world):
    with app.app_context():
        tenant = find_tenant("acme")
        statements = []

        def record(connection, cursor, statement, parameters, context, executemany):
            statements.append(statement)

        committed = []

        def mark_commit(session):
            committed.append(len(statements))

        session = db.session()
        sa.event.listen(db.engine, "before_cursor_execute", record)
        sa.event.listen(session, "after_commit", mark_commit)
        try:
            values.apply_changes(tenant, {"stripe.secret_key": "sk_test_abc123"}, Actor.cli())
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
            sa.event.remove(session, "after_commit", mark_commit)

    assert committed, "apply_changes did not commit"
    assert statements[committed[0]:] == []
