"""One HTTP POST to a receiver, connected to the address the guard checked (queues/webhooks/addresses.py).

Short timeouts (`QMS_WEBHOOK_CONNECT_TIMEOUT`, `QMS_WEBHOOK_TIMEOUT` for the whole exchange: a receiver that
trickles its answer is cut off at the deadline), no redirects followed (a 3xx is a failed attempt: a redirect
could point anywhere), at most `MAX_RESPONSE_BYTES` of the answer read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from django.conf import settings

from .addresses import Target

MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no HTTP answer (connection refused, timeout, TLS error)
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _connect(target: Target, timeout: float) -> socket.socket:
    """A TCP connection to the first checked address that answers (never a new lookup)."""
    last: OSError | None = None
    for address in target.addresses:
        try:
            return socket.create_connection((address, target.port), timeout=timeout)
        except OSError as exc:
            last = exc
    raise last or OSError("no address")


class _PinnedConnection(http.client.HTTPConnection):
    """http.client's connection, opened to a checked address (Host header and TLS name stay the host's)."""

    def __init__(self, target: Target, connect_timeout: float):
        super().__init__(target.host, target.port, timeout=connect_timeout)
        self.target = target

    def connect(self) -> None:
        sock = _connect(self.target, self.timeout)
        if self.target.scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.target.host)
        self.sock = sock


def post(target: Target, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body`; the receiver's status, or why there was none. Never raises for the receiver's faults."""
    deadline_seconds = settings.QMS_WEBHOOK_TIMEOUT
    connection = _PinnedConnection(target, min(settings.QMS_WEBHOOK_CONNECT_TIMEOUT, deadline_seconds))
    # The socket timeout bounds each read; this bounds the whole exchange.
    watchdog = threading.Timer(deadline_seconds, connection.close)
    watchdog.daemon = True
    started = time.monotonic()
    watchdog.start()
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        connection.sock.settimeout(max(0.1, deadline_seconds - (time.monotonic() - started)))
        response = connection.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        status = response.status
        return Answer(status, "" if 200 <= status < 300 else f"HTTP {status} {response.reason}"[:500])
    except (OSError, http.client.HTTPException, AttributeError) as exc:
        # AttributeError: the watchdog closed the connection under http.client (sock is None).
        elapsed = time.monotonic() - started
        reason = "timeout" if elapsed >= deadline_seconds - 0.05 or isinstance(exc, TimeoutError) else repr(exc)
        return Answer(None, f"{reason} after {elapsed:.1f}s"[:500])
    finally:
        watchdog.cancel()
        connection.close()
