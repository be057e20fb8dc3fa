"""Real servers on loopback that stand in for a tenant's SMTP server, Slack and the Stripe API."""

from __future__ import annotations

import datetime
import json
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# aiosmtpd logs each client line at DEBUG, AUTH lines included.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HttpStub:
    """An HTTP server that returns scripted replies and records every request."""

    def __init__(self):
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.default = Reply()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                received = Received(self.command, self.path, dict(self.headers), body)
                stub.requests.append(received)
                reply = stub.next_reply(received)
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body.encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def next_reply(self, received: Received) -> Reply:
        return self.script.pop(0) if self.script else self.default

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpStub:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StripeStub(HttpStub):
    """Serves GET /v1/account and /v1/balance like the Stripe API, for any bearer key."""

    def next_reply(self, received: Received) -> Reply:
        if self.script:
            return self.script.pop(0)
        key = received.headers.get("Authorization", "").removeprefix("Bearer ")
        if received.path.startswith("/v1/account"):
            return Reply(200, json.dumps({"id": f"acct_{abs(hash(key)) % 10**8}", "object": "account",
                                          "business_profile": {"name": "Stub account"}}))
        return Reply(200, json.dumps({"object": "balance", "livemode": key.startswith("sk_live_"),
                                      "available": [{"amount": 1234, "currency": "usd"}], "pending": []}))


@dataclass
class SmtpLogin:
    mechanism: str
    username: str
    password: str


class SmtpServer:
    """An aiosmtpd server with AUTH that records logins and messages.

    ``password`` set: only that password is accepted. ``tls_context`` set: STARTTLS is offered and required.
    """

    def __init__(self, password: str | None = None, tls_context: ssl.SSLContext | None = None, hostname: str = "127.0.0.1"):
        self.logins: list[SmtpLogin] = []
        self.messages: list[tuple[str, list[str], str]] = []
        self.expected_password = password
        self.port = free_port()
        self.controller = Controller(
            self, hostname=hostname, port=self.port, authenticator=self._authenticate,
            auth_require_tls=tls_context is not None, auth_required=True,
            tls_context=tls_context, require_starttls=tls_context is not None,
        )

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = SmtpLogin(mechanism, auth_data.login.decode(), auth_data.password.decode())
        self.logins.append(login)
        accepted = self.expected_password is None or login.password == self.expected_password
        return AuthResult(success=accepted, handled=False)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode()))
        return "250 OK"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


def make_certificates(directory: Path, hostname: str = "localhost") -> tuple[Path, ssl.SSLContext]:
    """Create a CA and a server certificate for ``hostname``. Returns the CA file and a server context."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tenant Config test CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    cert_file.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return ca_file, context
