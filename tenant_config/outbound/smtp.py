"""Sending mail through a tenant's own SMTP server."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from ..secret import Secret
from .errors import DestinationError, OutboundError
from .policy import OutboundPolicy, check_smtp_port, resolve_checked

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    """A tenant's SMTP settings. ``password`` stays wrapped until the AUTH command."""

    host: str
    port: int
    security: str
    from_address: str
    username: str | None = None
    password: Secret | None = None


def _pinned_socket(address: str, port: int, policy: OutboundPolicy) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=policy.connect_timeout)
    sock.settimeout(policy.read_timeout)
    return sock


class _PinnedSMTP(smtplib.SMTP):
    """SMTP that connects to a checked address while naming the host for STARTTLS verification."""

    def __init__(self, host: str, address: str, policy: OutboundPolicy):
        self._address = address
        self._policy = policy
        super().__init__(local_hostname=socket.gethostname(), timeout=policy.connect_timeout)
        # smtplib verifies the STARTTLS certificate against _host, which only a constructor that connects sets.
        self._host = host

    def _get_socket(self, host, port, timeout):
        return _pinned_socket(self._address, port, self._policy)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    """Implicit-TLS SMTP that connects to a checked address and verifies the host's certificate."""

    def __init__(self, host: str, address: str, policy: OutboundPolicy, context: ssl.SSLContext):
        self._address = address
        self._policy = policy
        super().__init__(local_hostname=socket.gethostname(), timeout=policy.connect_timeout, context=context)
        self._host = host

    def _get_socket(self, host, port, timeout):
        sock = _pinned_socket(self._address, port, self._policy)
        return self.context.wrap_socket(sock, server_hostname=self._host)


def build_message(settings: SmtpSettings, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.from_address
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=settings.from_address.rpartition("@")[2] or None)
    message.set_content(body)
    return message


def _tls_context(policy: OutboundPolicy) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=policy.smtp_ca_bundle)


def _deliver_once(settings: SmtpSettings, address: str, message: EmailMessage, policy: OutboundPolicy) -> None:
    context = _tls_context(policy)
    if settings.security == "tls":
        client = _PinnedSMTPSSL(settings.host, address, policy, context)
    else:
        client = _PinnedSMTP(settings.host, address, policy)

    try:
        client.connect(settings.host, settings.port)
        client.ehlo()
        if settings.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if settings.username and settings.password is not None:
            client.login(settings.username, settings.password.reveal())
        client.send_message(message)
        client.quit()
    finally:
        client.close()


def send_mail(settings: SmtpSettings, to: str, subject: str, body: str, policy: OutboundPolicy, tenant: str = "") -> None:
    """Send one message, retrying a bounded number of times when the server disconnects.

    Raises OutboundError (integration "smtp"), never with the server's raw reply.
    """
    check_smtp_port(settings.port, policy)
    address = str(resolve_checked("smtp", settings.host, settings.port, policy))
    message = build_message(settings, to, subject, body)

    attempt = 1
    while True:
        try:
            _deliver_once(settings, address, message, policy)
            return
        except smtplib.SMTPServerDisconnected as error:
            if attempt >= policy.max_attempts:
                raise OutboundError("smtp", "the mail server closed the connection; try again later", permanent=False) from error
            logger.warning("SMTP server for tenant %s disconnected; retry %s", tenant, attempt)
            attempt += 1
        except (smtplib.SMTPException, ssl.SSLError, OSError) as error:
            raise _translate(error) from error


def _translate(error: Exception) -> OutboundError:
    """Turn a low-level SMTP or socket error into a short message that is safe to show."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return OutboundError("smtp", "the mail server rejected the username or password", permanent=True)
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return OutboundError("smtp", "the mail server does not support a required command (STARTTLS or AUTH)", permanent=True)
    if isinstance(error, smtplib.SMTPResponseException) and error.smtp_code == 530:
        return OutboundError("smtp", "the mail server requires authentication; set the SMTP username and password",
                             permanent=True)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return OutboundError("smtp", "the mail server rejected the recipient address", permanent=True)
    if isinstance(error, smtplib.SMTPSenderRefused):
        return OutboundError("smtp", "the mail server rejected the from address", permanent=True)
    if isinstance(error, smtplib.SMTPResponseException):
        transient = 400 <= error.smtp_code < 500
        return OutboundError("smtp", f"the mail server returned code {error.smtp_code}", permanent=not transient)
    if isinstance(error, ssl.SSLError):
        return OutboundError("smtp", "TLS handshake or certificate verification failed", permanent=True)
    if isinstance(error, TimeoutError):
        return OutboundError("smtp", "timed out waiting for the mail server", permanent=False)
    if isinstance(error, smtplib.SMTPException):
        return OutboundError("smtp", "the mail server did not accept the message", permanent=True)
    return DestinationError("smtp", f"{type(error).__name__}: {error}", permanent=False)
