"""Load test: logins, settings pages and saves against gunicorn on loopback for a fixed time.

Run it with ``make loadtest`` (``python -m bench.loadtest``); it is not part of
``make test``. Each client logs in through the real form, then loops: load its
tenant's settings page, save a new Stripe key with the page's CSRF token and
row versions, and every few rounds log in again. Every unexpected status,
timeout or connection error counts as an error, and any error makes the
command exit with status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from .databases import POSTGRESQL, SQLITE, bench_database, postgres_unavailable_reason
from .loadgen import ProtocolError, Request, csrf_token, log_in, send, session_cookie
from .measure import percentile
from .serving import HOST, PASSWORD, gunicorn_server, seed_tenants

LOGIN_EVERY_ROUNDS = 10


class LoadTest:
    """Latencies per request kind, in milliseconds, and errors by kind and cause."""

    def __init__(self):
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()

    async def timed(self, kind: str, request: Request, expected_status: int, port: int):
        started = time.perf_counter()
        try:
            response = await send(HOST, port, request)
        except (OSError, ProtocolError, asyncio.TimeoutError, asyncio.IncompleteReadError) as error:
            self.errors[f"{kind}: {type(error).__name__}"] += 1
            return None
        if response.status != expected_status:
            self.errors[f"{kind}: status {response.status}"] += 1
            return None
        self.latencies[kind].append((time.perf_counter() - started) * 1000)
        return response


def _stripe_row_versions(page: bytes) -> str:
    """Return the row versions of the Stripe form, the first settings form on the page."""
    for match in re.finditer(r'name="row_versions" value="([^"]*)"', page.decode("utf-8", errors="replace")):
        versions = html.unescape(match.group(1))
        if "stripe.secret_key" in versions:
            return versions
    raise ProtocolError("the settings page has no row versions for the Stripe form")


async def _client(test: LoadTest, port: int, slug: str, deadline: float) -> None:
    email, path = f"admin@{slug}.example", f"/t/{slug}/settings"
    rounds = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            login = await log_in(HOST, port, email, PASSWORD, path)
        except (OSError, ProtocolError, asyncio.TimeoutError) as error:
            test.errors[f"login: {type(error).__name__}: {error}"] += 1
            continue
        test.latencies["login (3 requests)"].append((time.perf_counter() - started) * 1000)

        for _ in range(LOGIN_EVERY_ROUNDS):
            if time.perf_counter() >= deadline:
                return
            page = await test.timed("settings page", Request("GET", path, login.cookie), 200, port)
            if page is None:
                continue
            login.cookie = session_cookie(page) or login.cookie
            form = {
                "csrf_token": csrf_token(page.body),
                "row_versions": _stripe_row_versions(page.body),
                "stripe__secret_key": f"sk_test_load{rounds:08d}{slug.replace('-', '')}",
            }
            await test.timed("save", Request("POST", f"/t/{slug}/settings/stripe", login.cookie, form), 302, port)
            rounds += 1


def _report(test: LoadTest, seconds: float, clients: int, backend: str) -> str:
    lines = [f"Load test: {clients} clients for {seconds:g} s against gunicorn on {backend}.",
             f"{'request':<22}{'count':>8}{'per s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"]
    for kind, latencies in sorted(test.latencies.items()):
        ordered = sorted(latencies)
        lines.append(
            f"{kind:<22}{len(ordered):>8}{len(ordered) / seconds:>9.1f}{percentile(ordered, 0.5):>9.1f}"
            f"{percentile(ordered, 0.9):>9.1f}{percentile(ordered, 0.99):>9.1f}"
        )
    total_errors = sum(test.errors.values())
    for cause, count in test.errors.most_common():
        lines.append(f"error: {cause} ({count})")
    lines.append(f"Errors: {total_errors}.")
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadtest",
        description="Drive logins, settings pages and saves against gunicorn on loopback; exit 1 on any error.",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the run in seconds (default: 30)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients, one tenant each (default: 16)")
    parser.add_argument("--database", choices=(POSTGRESQL, SQLITE), default=POSTGRESQL,
                        help="database behind the app (default: postgresql on 127.0.0.1:5432)")
    arguments = parser.parse_args(argv)
    if arguments.seconds <= 0 or arguments.clients <= 0:
        parser.error("--seconds and --clients must be positive")
    return arguments


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    if arguments.database == POSTGRESQL and (reason := postgres_unavailable_reason()):
        print(f"PostgreSQL is not available: {reason}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="tenant-config-loadtest-") as folder:
        with bench_database(arguments.database, Path(folder)) as database:
            slugs = seed_tenants(database, arguments.clients)
            log_path = Path(folder) / "gunicorn.log"
            with gunicorn_server("app:app", database.environment(), log_path) as server:
                test = LoadTest()
                deadline = time.perf_counter() + arguments.seconds
                asyncio.run(_gather(test, server.port, slugs, deadline))
            server_log = log_path.read_text(errors="replace")

    print(_report(test, arguments.seconds, arguments.clients, arguments.database))
    if "Traceback" in server_log:
        print("The server logged an exception:\n" + server_log[-4000:], file=sys.stderr)
        test.errors["server exception"] += 1
    return 1 if test.errors else 0


async def _gather(test: LoadTest, port: int, slugs: list[str], deadline: float) -> None:
    await asyncio.gather(*(_client(test, port, slug, deadline) for slug in slugs))


if __name__ == "__main__":
    sys.exit(main())
