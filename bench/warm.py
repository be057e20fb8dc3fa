"""Part 1: resolving one secret with every cache warm, against the floor and the two peers."""

from __future__ import annotations

import time

from sqlalchemy import select

from tenant_config import resolver
from tenant_config.extensions import db
from tenant_config.resolver import resolve

from .context import RunContext
from .databases import sqlite_database
from .floor import SqliteFloor
from .measure import Latency, ratio_range, sample_latencies
from .peers import FernetValue, UtilsValue, insert_peer_values
from .profiling import write_profile
from .report import Check, PartResult, Table, format_ratio, format_us
from .seed import insert_tenants

KEY_NAME = "stripe.secret_key"
RESOLVER = "product: `resolve(slug, key)`"
FLOOR = "floor: `sqlite3` + one AES-GCM decrypt"
UTILS = "sqlalchemy-utils `StringEncryptedType(AesGcmEngine)` via ORM"
FERNET = "Fernet token decrypted on load via ORM"
QUERY_ONLY = "diagnostic: the resolver's SELECT alone, run as `resolve` runs it"

MAX_FLOOR_RATIO = 5.0
MIN_PEER_RATIO = 3.0


def run(context: RunContext) -> PartResult:
    scale = context.scale
    started = time.perf_counter()
    with sqlite_database(context.workdir) as database:
        app = database.app()
        with app.app_context():
            with db.engine.begin() as connection:
                tenants = insert_tenants(connection, database.keys.master, scale.warm_tenants, [KEY_NAME])
                insert_peer_values(connection, tenants, KEY_NAME)

            floor = SqliteFloor(database.url.removeprefix("sqlite:///"), tenants)
            contenders = {
                RESOLVER: lambda index: resolve(tenants[index].slug, KEY_NAME).reveal(),
                FLOOR: lambda index: floor.resolve(index, KEY_NAME),
                UTILS: lambda index: _read_peer(UtilsValue, tenants[index].id),
                FERNET: lambda index: _read_peer(FernetValue, tenants[index].id),
            }
            _check_values(contenders, tenants)
            # Timed with the others, to show how much of a resolve is the query's execution. It has no target.
            contenders[QUERY_ONLY] = lambda index: resolver._BY_SLUG.first(
                {"slug": tenants[index].slug, "key_name": KEY_NAME}
            )
            for call in contenders.values():
                for index in range(len(tenants)):
                    call(index)

            latencies = sample_latencies(contenders, len(tenants), scale.warm_rounds, scale.warm_calls_per_round)
            write_profile(context.profile_dir, "warm-resolve", lambda: [
                contenders[RESOLVER](index % len(tenants)) for index in range(5 * len(tenants))
            ])
            floor.close()
            db.session.remove()
            db.engine.dispose()

    setup = (
        f"SQLite file, {scale.warm_tenants:,} tenants with one `{KEY_NAME}` each, read in turn so that every data key"
        f" stays in the resolver's cache. {scale.warm_rounds} interleaved rounds of {scale.warm_calls_per_round} timed calls"
        " per contender, after one untimed pass. The resolver takes the slug and runs its own tenant lookup. The floor and the"
        " peers take the tenant id. The peers read `select(Model).where(tenant_id, key)` through the same Flask-SQLAlchemy"
        " session, one application-wide key each. The last column shows how far the ratio moved between rounds of the"
        " same run."
    )
    return PartResult(
        "1. Resolving one secret, warm", setup, [_table(latencies)], _checks(latencies), time.perf_counter() - started,
    )


def _table(latencies: dict[str, Latency]) -> Table:
    floor = latencies[FLOOR]
    table = Table(["contender", "median µs", "p99 µs", "median ÷ floor", "p99 ÷ floor", "median ÷ floor, range over rounds"])
    for name in (FLOOR, RESOLVER, UTILS, FERNET, QUERY_ONLY):
        latency = latencies[name]
        low, high = ratio_range(latency.round_medians_us, floor.round_medians_us)
        table.rows.append([
            name, format_us(latency.median_us), format_us(latency.p99_us),
            format_ratio(latency.median_us / floor.median_us), format_ratio(latency.p99_us / floor.p99_us),
            f"{format_ratio(low)} to {format_ratio(high)}",
        ])
    return table


def _checks(latencies: dict[str, Latency]) -> list[Check]:
    floor_median = latencies[FLOOR].median_us
    resolver_median = latencies[RESOLVER].median_us
    checks = [Check.compare(
        "warm resolve vs floor", f"median at most {MAX_FLOOR_RATIO:g}× the floor",
        f"{format_ratio(resolver_median / floor_median)} ({format_us(resolver_median)} µs vs {format_us(floor_median)} µs)",
        resolver_median <= MAX_FLOOR_RATIO * floor_median,
    )]
    for peer, label in ((UTILS, "sqlalchemy-utils"), (FERNET, "Fernet on load")):
        peer_median = latencies[peer].median_us
        checks.append(Check.compare(
            f"warm resolve vs {label}", f"at least {MIN_PEER_RATIO:g}× faster (median)",
            f"{format_ratio(peer_median / resolver_median)} faster"
            f" ({format_us(peer_median)} µs vs {format_us(resolver_median)} µs)",
            peer_median >= MIN_PEER_RATIO * resolver_median,
        ))
    return checks


def _read_peer(model, tenant_id: str) -> str:
    row = db.session.execute(select(model).where(model.tenant_id == tenant_id, model.key == KEY_NAME)).scalar_one()
    return row.value


def _check_values(contenders, tenants) -> None:
    """Stop the run when a contender returns a wrong value, because its timing would mean nothing."""
    for index in range(min(10, len(tenants))):
        expected = tenants[index].plaintext(KEY_NAME)
        for name, call in contenders.items():
            if call(index) != expected:
                raise AssertionError(f"{name} returned a wrong value for tenant {tenants[index].slug}")
