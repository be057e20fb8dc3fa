"""Local stand-ins for a tenant's mail server, Slack webhook and the Stripe API, for development.

They listen on loopback only and print what arrives, with credentials masked,
so the demo can send real mail and webhooks end to end without leaving the machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")

Printer = Callable[[str], None]


def fingerprint(secret: str) -> str:
    """Return a short hash that distinguishes two secrets without showing either."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]


def masked(secret: str) -> str:
    prefix = secret[:8] if secret.startswith(("sk_", "rk_")) else ""
    return f"{prefix}… ({len(secret)} characters, fingerprint {fingerprint(secret)})"


class _MailSink:
    """aiosmtpd handler and authenticator that print each login and message."""

    def __init__(self, output: Printer):
        self.output = output

    def authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            username = auth_data.login.decode("utf-8", errors="replace")
            password = auth_data.password.decode("utf-8", errors="replace")
            self.output(f"[smtp] AUTH {mechanism} as {username!r}, password {masked(password)}")
        return AuthResult(success=True)

    async def handle_DATA(self, server, session, envelope) -> str:
        content = envelope.content.decode("utf-8", errors="replace")
        subject = next((line[9:] for line in content.splitlines() if line.lower().startswith("subject: ")), "")
        self.output(f"[smtp] mail from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}: {subject!r}")
        return "250 Message accepted for delivery"


def _stripe_account(key: str) -> dict:
    return {"id": f"acct_{fingerprint(key)}{fingerprint(key[::-1])}", "object": "account",
            "business_profile": {"name": "Development sink"}}


def _stripe_balance(key: str) -> dict:
    return {"object": "balance", "livemode": key.startswith(("sk_live_", "rk_live_")),
            "available": [{"amount": 0, "currency": "usd"}], "pending": []}


class _HttpSinkHandler(BaseHTTPRequestHandler):
    """Slack webhook at POST /services/…, and Stripe's GET /v1/account and /v1/balance."""

    output: Printer = print
    server_version = "tenant-config-dev-sink"

    def log_message(self, format, *args) -> None:
        # The default access log prints the path, and a Slack webhook path is a secret.
        pass

    def _reply(self, status: int, body: dict | str) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if isinstance(body, str) else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        payload = self.rfile.read(min(length, 1_000_000))
        if not self.path.startswith("/services/"):
            self._reply(404, "no_service")
            return
        try:
            text = json.loads(payload).get("text", "")
        except (ValueError, AttributeError):
            self._reply(400, "invalid_payload")
            return
        self.output(f"[slack] webhook {fingerprint(self.path)} received: {text!r}")
        self._reply(200, "ok")

    def do_GET(self) -> None:
        authorization = self.headers.get("Authorization", "")
        key = authorization.removeprefix("Bearer ").strip()
        if not key:
            self._reply(401, {"error": {"type": "invalid_request_error", "message": "No API key provided."}})
            return

        routes = {"/v1/account": _stripe_account, "/v1/balance": _stripe_balance}
        build = routes.get(self.path.split("?", 1)[0])
        if build is None:
            self._reply(404, {"error": {"type": "invalid_request_error", "message": "Unknown path."}})
            return
        self.output(f"[stripe] GET {self.path} with key {masked(key)}")
        self._reply(200, build(key))


class DevSinks:
    """The running sinks. Use ``start()`` and ``stop()``, or run them as a context manager."""

    def __init__(self, host: str = "127.0.0.1", smtp_port: int = 2525, http_port: int = 8090, output: Printer = print):
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the development sinks listen on loopback only, not on {host!r}")
        self.host = host
        self.output = output
        # aiosmtpd logs every client line at DEBUG, AUTH included, on the "mail.log" logger.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._mail = _MailSink(output)
        self._smtp = Controller(
            self._mail, hostname=host, port=smtp_port, authenticator=self._mail.authenticate,
            auth_require_tls=False, auth_required=False,
        )
        handler = type("HttpSinkHandler", (_HttpSinkHandler,), {"output": staticmethod(output)})
        self._http = ThreadingHTTPServer((host, http_port), handler)
        self._http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, name="dev-sink-http", daemon=True,
        )

    @property
    def smtp_port(self) -> int:
        return self._smtp.port

    @property
    def http_port(self) -> int:
        return self._http.server_address[1]

    def start(self) -> DevSinks:
        self._smtp.start()
        self._http_thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._smtp.stop()

    def __enter__(self) -> DevSinks:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
