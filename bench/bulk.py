"""Part 2: one key resolved for every tenant, in values per second, against the floor and the two peers."""

from __future__ import annotations

import time
from sqlalchemy import select

from tenant_config import resolver
from tenant_config.crypto import BulkDecryptor
from tenant_config.datakeys import keyring
from tenant_config.extensions import db
from tenant_config.resolver import resolve_many
from tenant_config.secret import Secret

from .context import RunContext
from .databases import sqlite_database
from .floor import SqliteFloor
from .measure import sample_throughput
from .peers import FernetValue, UtilsValue, insert_peer_values
from .profiling import write_profile
from .report import Check, PartResult, Table, format_rate, format_ratio
from .seed import insert_tenants

KEY_NAME = "stripe.secret_key"
RESOLVER = "product: `resolve_many(key)`"
FLOOR = "floor: `sqlite3` scan + one AES-GCM decrypt per value"
UTILS = "sqlalchemy-utils `StringEncryptedType(AesGcmEngine)` via ORM"
FERNET = "Fernet token decrypted on load via ORM"
QUERY_ONLY = "diagnostic: `resolve_many`'s SELECT alone, rows fetched as `resolve_many` fetches them"
DECRYPT_ONLY = "diagnostic: `BulkDecryptor` alone, on rows already in memory"

MIN_VALUES_PER_SECOND = 300_000
# Rows per batch for the peers' ORM reads. SQLAlchemy's ORM querying guide (2.x) recommends yield_per for
# result sets of more than about 10,000 rows.
ORM_YIELD_PER = 2000


def run(context: RunContext) -> PartResult:
    scale = context.scale
    started = time.perf_counter()
    with sqlite_database(context.workdir) as database:
        app = database.app()
        with app.app_context():
            with db.engine.begin() as connection:
                tenants = insert_tenants(connection, database.keys.master, scale.bulk_tenants, [KEY_NAME])
                insert_peer_values(connection, tenants, KEY_NAME)
            seeded_seconds = time.perf_counter() - started

            _check_resolver(tenants)
            floor = SqliteFloor(database.url.removeprefix("sqlite:///"), tenants)
            rows = _fetch_rows()
            decryptor = BulkDecryptor(keyring(), KEY_NAME)
            contenders = {
                RESOLVER: _resolve_all,
                FLOOR: lambda: floor.resolve_all(KEY_NAME),
                UTILS: lambda: _read_peer(UtilsValue),
                FERNET: lambda: _read_peer(FernetValue),
                # Timed with the others, to split the resolver's time between the database and the crypto.
                QUERY_ONLY: lambda: len(_fetch_rows()),
                DECRYPT_ONLY: lambda: _decrypt_rows(decryptor, rows),
            }
            rates = sample_throughput(contenders, scale.bulk_passes)
            write_profile(context.profile_dir, "bulk-resolve-many", _resolve_all)
            floor.close()
            db.session.remove()
            db.engine.dispose()

    floor_rate = rates[FLOOR].per_second
    table = Table(["contender", "values/s (median pass)", "÷ floor", "every pass, values/s"])
    for name in (FLOOR, RESOLVER, UTILS, FERNET, QUERY_ONLY, DECRYPT_ONLY):
        rate = rates[name]
        table.rows.append([
            name, format_rate(rate.per_second), format_ratio(rate.per_second / floor_rate),
            ", ".join(format_rate(value) for value in rate.passes),
        ])

    resolver = rates[RESOLVER].per_second
    checks = [Check.compare(
        "bulk resolve on SQLite", f"at least {MIN_VALUES_PER_SECOND:,} values/s",
        f"{format_rate(resolver)} values/s ({format_ratio(resolver / floor_rate)} the floor)",
        resolver >= MIN_VALUES_PER_SECOND,
    )]
    setup = (
        f"SQLite file, {scale.bulk_tenants:,} tenants, each with its own data key and one `{KEY_NAME}`;"
        f" seeding took {seeded_seconds:.0f} s. {scale.bulk_passes} interleaved passes per contender over every tenant."
        " The resolver unwraps each tenant's data key in every pass, because `resolve_many` bypasses the data key cache."
        " The floor has every data key in memory. The peers iterate"
        f" `select(Model).where(key)` with `yield_per({ORM_YIELD_PER})` and read each value."
    )
    return PartResult("2. Bulk: one key for every tenant", setup, [table], checks, time.perf_counter() - started)


def _resolve_all() -> int:
    count = 0
    for _slug, value in resolve_many(KEY_NAME):
        if not isinstance(value, Secret):
            raise AssertionError(f"resolve_many reported {value!r}")
        count += 1
    return count


def _fetch_rows() -> list:
    rows = []
    for partition in resolver._ALL_WITH_KEY.stream({"key_name": KEY_NAME}, resolver._FETCH_ROWS):
        rows += partition
    return rows


def _decrypt_rows(decryptor: BulkDecryptor, rows: list) -> int:
    for slug, tenant_id, stored, version, master_key_id, wrapped_key in rows:
        decryptor.decrypt(tenant_id, version, master_key_id, wrapped_key, stored, slug)
    return len(rows)


def _read_peer(model) -> int:
    count = 0
    statement = select(model).where(model.key == KEY_NAME).execution_options(yield_per=ORM_YIELD_PER)
    for row in db.session.scalars(statement):
        if row.value is None:
            raise AssertionError(f"{model.__name__} row {row.id} has no value")
        count += 1
    return count


def _check_resolver(tenants) -> None:
    """Stop the run when the bulk API returns a wrong value, because its timing would mean nothing."""
    expected = {tenant.slug: tenant.plaintext(KEY_NAME) for tenant in tenants}
    resolved = {slug: value.reveal() for slug, value in resolve_many(KEY_NAME)}
    if resolved != expected:
        raise AssertionError("resolve_many returned wrong values or missed tenants")
