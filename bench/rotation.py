"""Part 3: master key rotation, against re-encrypting every value with ``MultiFernet.rotate``.

The product wraps each tenant's data key under the master key, so rotating
the master key rewraps one data key per tenant and leaves the values alone.
The comparison stores every value as a Fernet token under the master key
itself, as django-fernet-fields does, so rotating means reading, rotating and
writing back every token.

The product's rotation comes from ``tenant_config.rotation.rotate_master_key``,
imported when this part runs. It is called with, and inside an app context
whose keyring has, the new master key as current and the old one as previous. When
the module is missing, the product's lines are reported as SKIPPED and the
comparison still runs.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet

from tenant_config.crypto import Keyring, MasterKey, decrypt_value, generate_master_key, parse_master_key, unwrap_data_key
from tenant_config.extensions import db
from tenant_config.models import ConfigValue, TenantDataKey

from .context import RunContext
from .databases import POSTGRESQL, SQLITE, BenchDatabase, bench_database
from .report import Check, PartResult, Table, format_ratio
from .seed import INSERT_BATCH, SeededTenant, insert_tenants, rotation_key_names

MAX_SQLITE_SECONDS = 3.0
MIN_SPEEDUP = 5.0
SPEEDUP_VALUES = 8
MAX_GROWTH = 0.25
# Tokens per read and per UPDATE batch when re-encrypting.
REENCRYPT_BATCH = 5000
# Each method runs this many times per data set, alternating with the other, in alternating key directions.
SAMPLES = 2

_metadata = sa.MetaData()
fernet_values = sa.Table(
    "bench_rotation_fernet",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("tenant_id", sa.String(36), nullable=False),
    sa.Column("key", sa.String(100), nullable=False),
    sa.Column("token", sa.Text, nullable=False),
)


@dataclass
class Timing:
    """Seconds per sample of one method on one data set. ``skipped`` is the reason when it did not run."""

    samples: list[float]
    skipped: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def load_product_rotation() -> tuple[Callable[[], object] | None, str]:
    """Import the product's rotation function. Returns it, or None and the reason it is missing."""
    try:
        from tenant_config.rotation import rotate_master_key
    except ImportError as error:
        print(f"SKIPPED product rotation: `from tenant_config.rotation import rotate_master_key` failed: {error}", flush=True)
        return None, "`tenant_config.rotation.rotate_master_key` is not available on this branch"
    return rotate_master_key, ""


def run(context: RunContext) -> PartResult:
    started = time.perf_counter()
    scale = context.scale
    rotate, missing = load_product_rotation()

    backends = [SQLITE] + ([] if context.postgres_unavailable else [POSTGRESQL])
    results: dict[tuple[str, int], tuple[Timing, Timing]] = {}
    for backend in backends:
        for values_per_tenant in scale.rotation_values:
            with bench_database(backend, context.workdir) as database:
                results[backend, values_per_tenant] = _measure(database, scale.rotation_tenants, values_per_tenant, rotate, missing)

    table = Table(["database", "values per tenant", "values", "product `rotate_master_key`, s", "re-encrypt every value, s",
                   "re-encrypt ÷ product", "samples: product; re-encrypt, s"])
    for (backend, values_per_tenant), (product, reencrypt) in results.items():
        label = "SQLite" if backend == SQLITE else "PostgreSQL"
        table.rows.append([
            label, str(values_per_tenant), f"{scale.rotation_tenants * values_per_tenant:,}",
            f"{product.median:.3f}" if product.samples else "SKIPPED",
            f"{reencrypt.median:.3f}",
            format_ratio(reencrypt.median / product.median) if product.samples else "n/a",
            "; ".join([
                ", ".join(f"{value:.3f}" for value in product.samples) or "none",
                ", ".join(f"{value:.3f}" for value in reencrypt.samples),
            ]),
        ])

    setup = (
        f"{scale.rotation_tenants:,} tenants, each with its own data key and {' or '.join(map(str, scale.rotation_values))}"
        " encrypted values, in a fresh database per row of the table. The comparison stores the same values as Fernet tokens"
        " under the master key and rotates each with `MultiFernet([new, old]).rotate`, reading and updating in batches of"
        f" {REENCRYPT_BATCH:,} rows in one transaction. The two methods alternate, {SAMPLES} samples each, and every sample"
        " after the first rotates the keys back in the other direction."
        + ("" if context.postgres_unavailable is None else f" PostgreSQL was skipped: {context.postgres_unavailable}.")
    )
    checks = _checks(results, backends, scale.rotation_values, missing)
    return PartResult("3. Master key rotation", setup, [table], checks, time.perf_counter() - started)


def _checks(results, backends, values_counts, missing: str) -> list[Check]:
    checks = []
    first, last = min(values_counts), max(values_counts)
    sqlite_names = [f"rotation on SQLite, {count} values per tenant" for count in values_counts]
    speedup_names = [f"rotation vs re-encrypt, {_label(backend)}, {SPEEDUP_VALUES} values per tenant" for backend in backends]
    growth_names = [f"rotation time from {first} to {last} values per tenant, {_label(backend)}" for backend in backends]
    if missing:
        checks += [Check.skipped(name, f"at most {MAX_SQLITE_SECONDS:g} s", missing) for name in sqlite_names]
        checks += [Check.skipped(name, f"at least {MIN_SPEEDUP:g}× faster", missing) for name in speedup_names]
        checks += [Check.skipped(name, f"changes by less than {MAX_GROWTH:.0%}", missing) for name in growth_names]
        return checks

    for name, count in zip(sqlite_names, values_counts):
        seconds = results[SQLITE, count][0].median
        checks.append(Check.compare(name, f"at most {MAX_SQLITE_SECONDS:g} s", f"{seconds:.2f} s", seconds <= MAX_SQLITE_SECONDS))
    for name, backend in zip(speedup_names, backends):
        product, reencrypt = results[backend, SPEEDUP_VALUES]
        speedup = reencrypt.median / product.median
        checks.append(Check.compare(
            name, f"at least {MIN_SPEEDUP:g}× faster",
            f"{format_ratio(speedup)} faster ({product.median:.2f} s vs {reencrypt.median:.2f} s)", speedup >= MIN_SPEEDUP,
        ))
    for name, backend in zip(growth_names, backends):
        small, large = results[backend, first][0].median, results[backend, last][0].median
        growth = large / small - 1
        checks.append(Check.compare(
            name, f"changes by less than {MAX_GROWTH:.0%}", f"{growth:+.0%} ({small:.2f} s to {large:.2f} s)", abs(growth) < MAX_GROWTH,
        ))
    return checks


def _label(backend: str) -> str:
    return "SQLite" if backend == SQLITE else "PostgreSQL"


def _measure(database: BenchDatabase, tenant_count: int, values_per_tenant: int, rotate, missing: str) -> tuple[Timing, Timing]:
    key_names = rotation_key_names(values_per_tenant)
    first_master = database.keys.master
    second_master = MasterKey(parse_master_key(generate_master_key()))
    first_fernet, second_fernet = Fernet(Fernet.generate_key()), Fernet(Fernet.generate_key())

    seed_app = database.app()
    with seed_app.app_context():
        with db.engine.begin() as connection:
            tenants = insert_tenants(connection, first_master, tenant_count, key_names)
            _insert_tokens(connection, tenants, key_names, first_fernet)
        db.session.remove()
        db.engine.dispose()

    product = Timing([], missing)
    reencrypt = Timing([])
    engine = database.engine()
    # Each sample rotates from the key that the previous one rotated to.
    directions = [(first_master, second_master, first_fernet, second_fernet), (second_master, first_master, second_fernet, first_fernet)]
    for sample in range(SAMPLES):
        old_master, new_master, old_fernet, new_fernet = directions[sample % 2]
        if rotate is not None:
            product.samples.append(_rotate_product(database, rotate, old_master, new_master))
            _verify_product(database, tenants, key_names, new_master)
        reencrypt.samples.append(_reencrypt(engine, MultiFernet([new_fernet, old_fernet])))
        _verify_tokens(engine, new_fernet)
    engine.dispose()
    return product, reencrypt


def _insert_tokens(connection: sa.Connection, tenants: list[SeededTenant], key_names: list[str], fernet: Fernet) -> None:
    _metadata.create_all(connection)
    rows = []
    for tenant in tenants:
        for key_name in key_names:
            token = fernet.encrypt(tenant.plaintext(key_name).encode("utf-8")).decode("ascii")
            rows.append({"tenant_id": tenant.id, "key": key_name, "token": token})
            if len(rows) == INSERT_BATCH:
                connection.execute(sa.insert(fernet_values), rows)
                rows = []
    if rows:
        connection.execute(sa.insert(fernet_values), rows)


def _rotate_product(database: BenchDatabase, rotate, old_master: MasterKey, new_master: MasterKey) -> float:
    keyring = Keyring(new_master, [old_master])
    app = database.app(keyring=keyring)
    with app.app_context():
        started = time.perf_counter()
        result = rotate(keyring)
        if result.failures:
            raise AssertionError(f"rotate_master_key failed for {len(result.failures)} data keys")
        seconds = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return seconds


def _verify_product(database: BenchDatabase, tenants: list[SeededTenant], key_names: list[str], master: MasterKey) -> None:
    """Stop the run unless every data key is now under ``master`` and the values still decrypt with it alone."""
    keyring = Keyring(master)
    engine = database.engine()
    with engine.connect() as connection:
        data_keys = TenantDataKey.__table__
        stale = connection.execute(
            sa.select(sa.func.count()).select_from(data_keys).where(data_keys.c.master_key_id != master.id)
        ).scalar_one()
        if stale:
            raise AssertionError(f"rotate_master_key left {stale} data keys under another master key")

        values = ConfigValue.__table__
        for tenant in tenants[:: max(1, len(tenants) // 20)]:
            version, master_id, wrapped = connection.execute(
                sa.select(data_keys.c.version, data_keys.c.master_key_id, data_keys.c.wrapped_key)
                .where(data_keys.c.tenant_id == tenant.id)
            ).one()
            data_key = unwrap_data_key(keyring, tenant.id, version, master_id, wrapped)
            blob = connection.execute(
                sa.select(values.c.value).where(values.c.tenant_id == tenant.id, values.c.key == key_names[-1])
            ).scalar_one()
            if decrypt_value(data_key, tenant.id, key_names[-1], blob) != tenant.plaintext(key_names[-1]):
                raise AssertionError(f"a value of tenant {tenant.slug} changed during rotation")
    engine.dispose()


def _reencrypt(engine: sa.Engine, rotator: MultiFernet) -> float:
    """Rotate every token to the rotator's first key, in one transaction. Returns the seconds it took."""
    update = sa.update(fernet_values).where(fernet_values.c.id == sa.bindparam("row_id")).values(token=sa.bindparam("new_token"))
    started = time.perf_counter()
    with engine.begin() as connection:
        last_id = 0
        while True:
            rows = connection.execute(
                sa.select(fernet_values.c.id, fernet_values.c.token)
                .where(fernet_values.c.id > last_id).order_by(fernet_values.c.id).limit(REENCRYPT_BATCH)
            ).all()
            if not rows:
                break
            connection.execute(update, [
                {"row_id": row_id, "new_token": rotator.rotate(token.encode("ascii")).decode("ascii")} for row_id, token in rows
            ])
            last_id = rows[-1][0]
    return time.perf_counter() - started


def _verify_tokens(engine: sa.Engine, fernet: Fernet) -> None:
    """Stop the run unless the tokens now decrypt with the new key alone."""
    with engine.connect() as connection:
        tokens = connection.execute(sa.select(fernet_values.c.token).order_by(fernet_values.c.id).limit(20)).scalars()
        for token in tokens:
            fernet.decrypt(token.encode("ascii"))
