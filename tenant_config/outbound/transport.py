"""HTTP requests with fixed timeouts, no redirects, and a connection pinned to a checked address."""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from .errors import DestinationError, OutboundError
from .policy import IPAddress, OutboundPolicy, resolve_checked

MAX_BODY_BYTES = 256 * 1024


@dataclass
class HttpResponse:
    status: int
    headers: Message
    body: bytes


def _connect(address: str, port: int, policy: OutboundPolicy) -> socket.socket:
    sock = socket.create_connection((address, port), timeout=policy.connect_timeout)
    sock.settimeout(policy.read_timeout)
    return sock


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, policy: OutboundPolicy):
        super().__init__(host, port, timeout=policy.connect_timeout)
        self._address = address
        self._policy = policy

    def connect(self) -> None:
        self.sock = _connect(self._address, self.port, self._policy)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, policy: OutboundPolicy):
        super().__init__(host, port, timeout=policy.connect_timeout, context=ssl.create_default_context())
        self._address = address
        self._policy = policy

    def connect(self) -> None:
        # The certificate is verified against the host name, not the pinned address.
        sock = _connect(self._address, self.port, self._policy)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def request(
    integration: str,
    method: str,
    url: str,
    body: bytes | None,
    headers: dict[str, str],
    policy: OutboundPolicy,
    check_destination: bool = True,
) -> HttpResponse:
    """Send one HTTP request and return the response, whatever its status.

    Redirects are returned as they are, never followed. With
    ``check_destination`` the host is resolved once, every address is
    checked against the policy, and the connection goes to that address.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationError(integration, "the URL cannot be parsed") from None
    address: IPAddress | str = resolve_checked(integration, host, port, policy) if check_destination else host

    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, str(address), policy)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query

    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return HttpResponse(response.status, response.msg, response.read(MAX_BODY_BYTES))
    except ssl.SSLError as error:
        raise OutboundError(integration, "TLS handshake or certificate verification failed", permanent=True) from error
    except TimeoutError as error:
        raise OutboundError(integration, "timed out waiting for a response", permanent=False) from error
    except (ConnectionError, OSError, http.client.HTTPException) as error:
        raise DestinationError(integration, f"{type(error).__name__}: {error}", permanent=False) from error
    finally:
        connection.close()
