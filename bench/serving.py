"""Part 4: the settings page and a save under gunicorn, against a bare Flask endpoint, with concurrent clients on loopback."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tenant_config import accounts, values
from tenant_config.audit import Actor
from tenant_config.extensions import db

from .context import RunContext
from .databases import POSTGRESQL, SQLITE, BenchDatabase, bench_database
from .loadgen import LoadResult, Login, Request, log_in, run_load, send
from .profiling import profile_settings_page
from .report import Check, PartResult, Table, format_rate, format_ratio

HOST = "127.0.0.1"
PASSWORD = "bench-password-1"
# A real scrypt hash at a low cost, because logins happen before the measured load.
PASSWORD_HASH_METHOD = "scrypt:1024:8:1"
# The help text of gunicorn 27's --workers option advises 2 to 4 workers per core. Two per core, plus one that
# can run while another waits on the database.
WORKERS = 2 * (os.cpu_count() or 1) + 1
START_TIMEOUT_SECONDS = 30.0
MIN_THROUGHPUT_SHARE = 0.25
# Requests per profiled path with --profile.
PROFILE_REQUESTS = 300

FLOOR = "floor: bare Flask endpoint, static template"


@dataclass(frozen=True)
class Endpoint:
    """One measured endpoint: a table row name, the server it goes to, how to build a request, and the status it expects."""

    name: str
    server: Server
    make_request: Callable[[int, int], Request]
    expected_status: int
    # The product's database, or None for the floor.
    backend: str | None = None


def run(context: RunContext) -> PartResult:
    started = time.perf_counter()
    scale = context.scale
    backends = [SQLITE] + ([] if context.postgres_unavailable else [POSTGRESQL])
    with ExitStack() as stack:
        floor = stack.enter_context(gunicorn_server("bench.floor_app:app", {}, context.workdir / "floor.log"))
        products, databases = {}, {}
        for backend in backends:
            database = databases[backend] = stack.enter_context(bench_database(backend, context.workdir))
            slugs = seed_tenants(database, scale.http_clients)
            products[backend] = stack.enter_context(
                gunicorn_server("app:app", database.environment(), context.workdir / f"product-{backend}.log")
            )
        results, cpu = asyncio.run(_measure(floor, products, slugs, scale))
        if context.profile_dir is not None:
            # In-process, on the first database, after the load: the servers' own processes are not profiled.
            profile_app = databases[backends[0]].app()
            profile_settings_page(
                context.profile_dir, profile_app, f"admin@{slugs[0]}.example", PASSWORD, slugs[0], PROFILE_REQUESTS,
            )
            with profile_app.app_context():
                db.session.remove()
                db.engine.dispose()

    return PartResult(
        "4. HTTP under gunicorn", _setup(context, backends), [_table(results, cpu)], _checks(results, backends),
        time.perf_counter() - started,
    )


def _table(results: dict[str, LoadResult], cpu: dict[str, CpuTime]) -> Table:
    floor = results[FLOOR]
    table = Table([
        "endpoint", "requests/s", "÷ floor", "p50 ms", "p99 ms", "requests", "errors",
        "server CPU ms/request", "client CPU ms/request", "PostgreSQL CPU ms/request",
    ])
    for name, result in results.items():
        errors = ", ".join(f"{count} {kind}" for kind, count in result.errors.most_common()) or "0"
        completed = max(1, result.completed)
        table.rows.append([
            name, format_rate(result.per_second), format_ratio(result.per_second / floor.per_second),
            f"{result.latency_ms(0.5):.1f}", f"{result.latency_ms(0.99):.1f}", f"{result.requests:,}", errors,
            f"{cpu[name].server / completed * 1000:.2f}", f"{cpu[name].client / completed * 1000:.2f}",
            "–" if cpu[name].database is None else f"{cpu[name].database / completed * 1000:.2f}",
        ])
    return table


def _checks(results: dict[str, LoadResult], backends: list[str]) -> list[Check]:
    floor = results[FLOOR]
    checks = []
    for backend in backends:
        settings = results[_settings_name(backend)]
        share = settings.per_second / floor.per_second
        error_count = sum(settings.errors.values())
        checks.append(Check.compare(
            f"settings page under load, {_label(backend)}",
            f"at least {MIN_THROUGHPUT_SHARE:.0%} of the floor's requests/s, zero errors",
            f"{share:.0%} ({format_rate(settings.per_second)} vs {format_rate(floor.per_second)} requests/s),"
            f" {error_count} errors",
            share >= MIN_THROUGHPUT_SHARE and error_count == 0,
        ))
    return checks


def _setup(context: RunContext, backends: list[str]) -> str:
    scale = context.scale
    databases = " and on ".join(_label(backend) for backend in backends)
    skipped = f" (PostgreSQL skipped: {context.postgres_unavailable})" if context.postgres_unavailable else ""
    return (
        f"gunicorn {_gunicorn_version()} with {WORKERS} sync workers per app (2 per core, plus 1), each app on 127.0.0.1 with"
        f" a port the kernel picked. The product runs on {databases}{skipped}. {scale.http_clients} concurrent clients"
        " from an asyncio load generator in the benchmark's own process, each logged in once through the real /login form"
        " as the admin of its own tenant, whose every setting is stored. Every request opens a new connection. Each"
        f" endpoint gets {scale.http_seconds:g} s of measured load in {scale.http_segments} segments, interleaved with the"
        " other endpoints in a shuffled order, and each segment starts with"
        f" {scale.http_warmup_seconds:g} s of unmeasured warm-up. A save posts a new Stripe secret key with the form's"
        " CSRF token and counts when it gets its 302 redirect, which the client does not follow. The product logs each"
        " save at INFO, as in production. Server CPU is that of the gunicorn processes, read from /proc. Client CPU is"
        " that of the load generator. PostgreSQL CPU is that of every PostgreSQL server process on the machine, also"
        " read from /proc."
    )


def _label(backend: str) -> str:
    return "SQLite" if backend == SQLITE else "PostgreSQL"


def _settings_name(backend: str) -> str:
    return f"settings page on {_label(backend)}, GET `/t/<slug>/settings`"


def _save_name(backend: str) -> str:
    return f"save on {_label(backend)}, POST `/t/<slug>/settings/stripe`"


def seed_tenants(database: BenchDatabase, count: int) -> list[str]:
    """Create one tenant per client, through the product's own functions, with an admin and every setting stored."""
    app = database.app(PASSWORD_HASH_METHOD=PASSWORD_HASH_METHOD)
    slugs = []
    with app.app_context():
        actor = Actor.cli()
        for number in range(count):
            slug = f"http-{number:02d}"
            tenant = accounts.create_tenant(slug, f"HTTP tenant {number}")
            accounts.grant(accounts.create_user(f"admin@{slug}.example", PASSWORD), tenant, "admin")
            values.apply_changes(tenant, {
                "stripe.secret_key": f"sk_test_http{number:02d}AAAAbbbbCCCCdddd",
                "slack.webhook_url": f"https://hooks.slack.com/services/T{number:02d}/B{number:02d}/secretpath{number:02d}",
                "smtp.host": "smtp.example.com",
                "smtp.port": "587",
                "smtp.username": f"mailer{number:02d}",
                "smtp.password": f"smtp-password-{number:02d}",
                "smtp.from_address": f"billing@{slug}.example",
            }, actor)
            slugs.append(slug)
        db.session.remove()
        db.engine.dispose()
    return slugs


def _gunicorn_version() -> str:
    from importlib.metadata import version

    return version("gunicorn")


@dataclass(frozen=True)
class Server:
    port: int
    pid: int


@dataclass
class CpuTime:
    """CPU seconds that the server processes, the load generator and the database spent on one endpoint, warm-up included.

    ``database`` counts every PostgreSQL process on the machine, and stays None for an endpoint that uses none.
    """

    server: float = 0.0
    client: float = 0.0
    database: float | None = None


def _process_stats() -> Iterator[tuple[int, str, list[str]]]:
    """Yield the pid, command name and the fields after the name of each process, read from /proc."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        head, tail = stat.rsplit(")", 1)
        yield int(entry.name), head.split("(", 1)[1], tail.split()


def _cpu_seconds(fields: list[str]) -> float:
    # The fields after the parenthesised command name start with the state, then the parent pid;
    # utime and stime are the 12th and 13th of them.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu_seconds(root_pid: int) -> float:
    """Return the user plus system CPU seconds of a gunicorn master and its workers."""
    return sum(_cpu_seconds(fields) for pid, _name, fields in _process_stats() if root_pid in (pid, int(fields[1])))


def _postgres_cpu_seconds() -> float:
    """Return the user plus system CPU seconds of every PostgreSQL server process on the machine."""
    return sum(_cpu_seconds(fields) for _pid, name, fields in _process_stats() if name == "postgres")


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


@contextmanager
def gunicorn_server(app_spec: str, environment: dict[str, str], log_path: Path) -> Iterator[Server]:
    """Serve ``app_spec`` with gunicorn on a loopback socket bound here, and yield it. Stops the server afterwards."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((HOST, 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    command = [
        sys.executable, "-m", "gunicorn", "--bind", f"fd://{listener.fileno()}", "--workers", str(WORKERS),
        "--worker-class", "sync", "--log-level", "warning", app_spec,
    ]
    project_root = Path(__file__).resolve().parent.parent
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=project_root, env={**os.environ, **environment}, pass_fds=[listener.fileno()],
            stdout=log, stderr=subprocess.STDOUT,
        )
    listener.close()
    try:
        _wait_until_serving(port, process, log_path)
        yield Server(port, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}; see {log_path}")
        try:
            asyncio.run(send(HOST, port, Request("GET", "/")))
            return
        except (OSError, asyncio.TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not respond on port {port} within {START_TIMEOUT_SECONDS:g} s; see {log_path}")


async def _measure(
    floor: Server, products: dict[str, Server], slugs: list[str], scale,
) -> tuple[dict[str, LoadResult], dict[str, CpuTime]]:
    """Log every client in on each product server, then run the endpoints' segments in a shuffled order."""
    endpoints = [Endpoint(FLOOR, floor, lambda client, sequence: Request("GET", "/"), 200)]
    for backend, server in products.items():
        logins: list[Login] = list(await asyncio.gather(*(
            log_in(HOST, server.port, f"admin@{slug}.example", PASSWORD, f"/t/{slug}/settings") for slug in slugs
        )))

        def settings_request(client: int, sequence: int, logins=logins) -> Request:
            return Request("GET", f"/t/{slugs[client]}/settings", logins[client].cookie)

        def save_request(client: int, sequence: int, logins=logins) -> Request:
            form = {"csrf_token": logins[client].csrf_token, "stripe__secret_key": f"sk_test_bench{client:02d}x{sequence}"}
            return Request("POST", f"/t/{slugs[client]}/settings/stripe", logins[client].cookie, form)

        endpoints.append(Endpoint(_settings_name(backend), server, settings_request, 200, backend))
        endpoints.append(Endpoint(_save_name(backend), server, save_request, 302, backend))

    results = {endpoint.name: LoadResult() for endpoint in endpoints}
    cpu = {endpoint.name: CpuTime() for endpoint in endpoints}
    order = list(endpoints)
    generator = random.Random(1)
    for _ in range(scale.http_segments):
        generator.shuffle(order)
        for endpoint in order:
            server_before, client_before = _server_cpu_seconds(endpoint.server.pid), _own_cpu_seconds()
            database_before = _postgres_cpu_seconds() if endpoint.backend == POSTGRESQL else None
            segment = await run_load(
                HOST, endpoint.server.port, endpoint.make_request, endpoint.expected_status, len(slugs),
                scale.http_warmup_seconds, scale.http_seconds / scale.http_segments,
            )
            cpu[endpoint.name].server += _server_cpu_seconds(endpoint.server.pid) - server_before
            cpu[endpoint.name].client += _own_cpu_seconds() - client_before
            if database_before is not None:
                cpu[endpoint.name].database = (cpu[endpoint.name].database or 0.0) + _postgres_cpu_seconds() - database_before
            results[endpoint.name].merge(segment)
    return results, cpu
