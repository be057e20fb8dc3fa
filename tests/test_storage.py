"""The database, its dump and the SQLite file hold no plaintext secret and no piece of one."""

from pathlib import Path

import sqlalchemy as sa

from tests.conftest import flask_cli

SECRETS = {
    "stripe": ("stripe.secret_key", "sk_live_Q7vX2mK9pL4nR8sT1wY6zB3c"),
    "slack": ("slack.webhook_url", "https://hooks.slack.com/services/T9QWERTY/B8ASDFGH/Zx4Cv7Bn1Mq5Wr8Ty2Ui"),
    "smtp": ("smtp.password", "pw-Hq83Lz02Vc-Kd91"),
}


def pieces(secret: str, size: int = 8):
    """Every piece of ``size`` characters of the secret part of a value."""
    body = secret.split("/services/", 1)[1] if "/services/" in secret else secret
    return {body[start:start + size] for start in range(len(body) - size + 1)}


def dump_tables(uri: str) -> str:
    """Return every row of every table as text, like a logical dump."""
    engine = sa.create_engine(uri)
    lines = []
    with engine.connect() as connection:
        for table in sa.inspect(connection).get_table_names():
            for row in connection.execute(sa.text(f'SELECT * FROM "{table}"')):
                lines.append(f"{table}: {tuple(row)}")
    engine.dispose()
    return "\n".join(lines)


def raw_sqlite_bytes(uri: str) -> bytes:
    path = Path(uri.removeprefix("sqlite:///"))
    data = b""
    for suffix in ("", "-wal", "-journal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            data += candidate.read_bytes()
    return data


def assert_no_secret_stored(database, secrets):
    dump = dump_tables(database.uri)
    raw = raw_sqlite_bytes(database.uri) if database.backend == "sqlite" else b""
    assert "config_value" in dump
    for secret in secrets:
        for piece in pieces(secret):
            assert piece not in dump, f"the database dump contains a piece of a secret: {piece[:2]}…"
            assert piece.encode() not in raw, "the SQLite file contains a piece of a secret"


def test_ui_secrets_stored_encrypted(app, database, world, make_browser):
    admin = make_browser(world.acme_admin)
    for group, (name, secret) in SECRETS.items():
        assert admin.save("acme", group, {name: secret}).status_code == 302

    with app.app_context():
        from tenant_config.extensions import db
        db.session.remove()
        db.engine.dispose()
    assert_no_secret_stored(database, [secret for _, secret in SECRETS.values()])


def test_cli_secrets_stored_encrypted(app, database, world):
    runner = app.test_cli_runner()
    for name, secret in SECRETS.values():
        result = runner.invoke(args=["config", "set", "--tenant", "globex", name], input=secret + "\n")
        assert result.exit_code == 0, result.output
        assert secret not in result.output

    with app.app_context():
        from tenant_config.extensions import db
        from tenant_config.resolver import resolve
        assert resolve("globex", "smtp.password").reveal() == SECRETS["smtp"][1]
        db.session.remove()
        db.engine.dispose()
    assert_no_secret_stored(database, [secret for _, secret in SECRETS.values()])


def test_operator_flow_through_real_cli(database, operator_env):
    _, secret = SECRETS["stripe"]
    steps = [
        (("db", "upgrade"), None),
        (("tenants", "create", "initech", "--name", "Initech"), None),
        (("users", "create", "ops@initech.example", "--password-stdin"), "long enough password\n"),
        (("users", "grant", "ops@initech.example", "initech", "--role", "admin"), None),
        (("config", "set", "--tenant", "initech", "stripe.secret_key"), f"  {secret}\n"),
    ]
    for args, stdin in steps:
        result = flask_cli(operator_env, *args, stdin=stdin)
        assert result.returncode == 0, f"{args}: {result.stderr}"
        assert secret not in result.stdout + result.stderr

    listing = flask_cli(operator_env, "config", "list", "--tenant", "initech")
    assert listing.returncode == 0
    assert "stripe.secret_key    ********" in listing.stdout
    assert secret not in listing.stdout + listing.stderr
    assert_no_secret_stored(database, [secret])
