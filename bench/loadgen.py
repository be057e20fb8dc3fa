"""A small HTTP/1.1 load generator on asyncio, for servers that the benchmark starts on loopback itself.

Every request opens its own connection and sends ``Connection: close``, which
is what gunicorn's sync workers do anyway, so each endpoint pays the same
connection cost. Only loopback addresses are accepted as targets.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from .measure import percentile

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1"})
REQUEST_TIMEOUT_SECONDS = 10.0
USER_AGENT = "tenant-config-bench/1"
_CSRF_INPUT = re.compile(r'<input[^>]*name="csrf_token"[^>]*>')
_VALUE_ATTRIBUTE = re.compile(r'value="([^"]+)"')


class ProtocolError(Exception):
    """A response that is not well-formed HTTP/1.1."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    cookie: str = ""
    form: dict[str, str] | None = None


@dataclass(frozen=True)
class Response:
    status: int
    set_cookies: tuple[str, ...]
    body: bytes


def check_loopback(host: str) -> None:
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"invalid load target {host!r}: the benchmark sends requests only to {', '.join(sorted(LOOPBACK_HOSTS))}")


def _encode(host: str, port: int, request: Request) -> bytes:
    lines = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}:{port}", f"User-Agent: {USER_AGENT}", "Connection: close"]
    if request.cookie:
        lines.append(f"Cookie: {request.cookie}")
    body = b""
    if request.form is not None:
        body = urlencode(request.form).encode("ascii")
        lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_response(reader: asyncio.StreamReader) -> Response:
    status_line = await reader.readline()
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ProtocolError(f"invalid status line {status_line[:80]!r}")

    length = None
    set_cookies = []
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "set-cookie":
            set_cookies.append(value.strip())

    body = await (reader.readexactly(length) if length is not None else reader.read())
    return Response(int(parts[1]), tuple(set_cookies), body)


async def send(host: str, port: int, request: Request) -> Response:
    """Send one request on a new connection and read the whole response, within REQUEST_TIMEOUT_SECONDS."""
    check_loopback(host)

    async def exchange() -> Response:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(_encode(host, port, request))
            await writer.drain()
            return await _read_response(reader)
        finally:
            writer.close()

    return await asyncio.wait_for(exchange(), REQUEST_TIMEOUT_SECONDS)


def session_cookie(response: Response, name: str = "session") -> str | None:
    """Return ``name=value`` for the session cookie that a response sets, or None."""
    for header in response.set_cookies:
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return f"{name}={cookie[name].value}"
    return None


def csrf_token(html: bytes) -> str:
    """Return the CSRF token of the first form in a page."""
    text = html.decode("utf-8", errors="replace")
    field_match = _CSRF_INPUT.search(text)
    value_match = _VALUE_ATTRIBUTE.search(field_match.group(0)) if field_match else None
    if value_match is None:
        raise ProtocolError("the page has no csrf_token input")
    return value_match.group(1)


@dataclass
class Login:
    """A logged-in client: its session cookie and the CSRF token of its settings page."""

    cookie: str
    csrf_token: str


async def log_in(host: str, port: int, email: str, password: str, settings_path: str) -> Login:
    """Log in through the real /login form, as a browser does, then read the CSRF token of ``settings_path``."""
    page = await send(host, port, Request("GET", "/login"))
    cookie = session_cookie(page)
    if page.status != 200 or cookie is None:
        raise ProtocolError(f"GET /login returned {page.status} without a session cookie")

    form = {"email": email, "password": password, "csrf_token": csrf_token(page.body)}
    login_response = await send(host, port, Request("POST", "/login", cookie, form))
    cookie = session_cookie(login_response)
    if login_response.status != 302 or cookie is None:
        raise ProtocolError(
            f"POST /login for {email} returned {login_response.status}; expected a redirect that sets the session"
        )

    settings = await send(host, port, Request("GET", settings_path, cookie))
    if settings.status != 200:
        raise ProtocolError(f"GET {settings_path} for {email} returned {settings.status}")
    # Login starts a fresh session, so the first page that renders a form stores a new CSRF token in it.
    return Login(session_cookie(settings) or cookie, csrf_token(settings.body))


@dataclass
class LoadResult:
    """Throughput, latency and errors of one endpoint under load.

    Latencies are in milliseconds, for requests that ended in the measured
    window. ``completed`` counts every successful request, warm-up included.
    """

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    completed: int = 0

    def merge(self, other: LoadResult) -> None:
        self.seconds += other.seconds
        self.latencies_ms += other.latencies_ms
        self.errors.update(other.errors)
        self.completed += other.completed

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def latency_ms(self, fraction: float) -> float:
        return percentile(sorted(self.latencies_ms), fraction) if self.latencies_ms else float("nan")


async def run_load(
    host: str,
    port: int,
    make_request: Callable[[int, int], Request],
    expected_status: int,
    clients: int,
    warmup_seconds: float,
    seconds: float,
) -> LoadResult:
    """Keep ``clients`` requests in flight for ``warmup_seconds`` plus ``seconds``.

    ``make_request(client, sequence)`` builds each request. Only requests that
    end after the warm-up count towards throughput and latency. Every error
    counts, warm-up included: an exception, a timeout, or a status other
    than ``expected_status``.
    """
    check_loopback(host)
    result = LoadResult(seconds=seconds)
    started = time.perf_counter()
    window_start = started + warmup_seconds
    window_end = window_start + seconds

    async def client(number: int) -> None:
        sequence = 0
        while time.perf_counter() < window_end:
            request = make_request(number, sequence)
            sequence += 1
            sent = time.perf_counter()
            try:
                response = await send(host, port, request)
            except asyncio.TimeoutError:
                result.errors["timeout"] += 1
                continue
            except (OSError, ProtocolError, asyncio.IncompleteReadError, ValueError) as error:
                result.errors[type(error).__name__] += 1
                continue

            ended = time.perf_counter()
            if response.status != expected_status:
                result.errors[f"status {response.status}"] += 1
                continue
            result.completed += 1
            if window_start <= ended <= window_end:
                result.latencies_ms.append((ended - sent) * 1000)

    await asyncio.gather(*(client(number) for number in range(clients)))
    return result
