"""Stand-ins for the sites around the queue that tests switch at will (the protected reservation site, a site
behind the gate)."""

from __future__ import annotations

import html
import http.server
import json
import re
import threading
import time
from pathlib import Path


class ProtectedSite:
    """A stand-in for the reservation service's health endpoint, switchable between 200 and 503."""

    def __init__(self):
        self.status = 200
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                self.send_response(site.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def close(self):
        self.server.shutdown()


class GatedOrigin:
    """A protected site that has never heard of QMS (plain `http.server`, not Django), behind the gate's proxy.

    Every page shows and records the `X-QMS-*` headers the proxy passed on; a path under `revoke_path` answers
    with `X-QMS-Revoke: 1`, as a site does when the fan's visit is over (checkout done, logged out).
    """

    HEADERS = ("X-QMS-User", "X-QMS-Event", "X-QMS-Admission", "X-QMS-Bypass")

    def __init__(self, revoke_path: str = "/done"):
        self.seen: list[dict] = []  # per request: path and the X-QMS-* headers it carried
        self._lock = threading.Lock()
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the proxy's upstream connections are

            def do_GET(self):  # noqa: N802 (http.server's naming)
                seen = {"path": self.path, **{name: self.headers.get(name, "") for name in site.HEADERS}}
                with site._lock:
                    site.seen.append(seen)
                body = ("<!doctype html><title>Protected shop</title><h1>Protected shop</h1>"
                        + "".join(f'<p id="{name.lower()}">{html.escape(seen[name])}</p>' for name in site.HEADERS)
                        ).encode()
                self.send_response(200)
                if self.path.startswith(revoke_path):
                    self.send_header("X-QMS-Revoke", "1")
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def last(self, path: str) -> dict:
        """The headers the last request for `path` carried (AssertionError when it never arrived)."""
        with self._lock:
            found = [seen for seen in self.seen if seen["path"] == path]
        assert found, f"the origin never saw {path}: {self.seen}"
        return found[-1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def documented_webhook_verifier():
    """docs/API.md's `verify_webhook` snippet, run as written: receivers in tests check deliveries with it."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "API.md").read_text()
    snippet = next(block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "def verify_webhook" in block)
    namespace: dict = {}
    exec(compile(snippet, "docs/API.md#verify_webhook", "exec"), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_webhook"]


class WebhookReceiver:
    """A receiver as an integrator writes one: checks each delivery with the documented snippet, does its side
    effect once per webhook id (a repeat is answered 2xx and ignored), and can be made to fail or be slow.

    `fail_first`: answer 500 to the first delivery of the first id seen (it must come again). `status` and
    `sleep` make every answer that status after that many seconds (the benchmark's bad receivers).
    """

    def __init__(self, secret: str, *, fail_first: bool = False, status: int = 200, sleep: float = 0.0):
        self.secret, self.status, self.sleep = secret, status, sleep
        self.verify = documented_webhook_verifier()
        self.lock = threading.Lock()
        self.received: list[dict] = []  # every request: id, type, verified, answered
        self.effects: dict[str, dict] = {}  # webhook id -> the body, once per id
        self.failed_once: str | None = None if fail_first else ""
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(receiver.answer(self.headers, body))
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/qms"

    def answer(self, headers, body: bytes) -> int:
        if self.sleep:
            time.sleep(self.sleep)
        verified = self.verify(self.secret, headers, body)
        delivery = json.loads(body) if verified else {}
        webhook_id = headers.get("X-QMS-Webhook-Id", "")
        with self.lock:
            status = self.status if verified else 401
            if verified and self.failed_once is None:
                self.failed_once, status = webhook_id, 500
            if 200 <= status < 300 and verified:
                self.effects.setdefault(webhook_id, delivery)  # the side effect, once per id
            self.received.append({"id": webhook_id, "type": delivery.get("type"), "verified": verified,
                                  "status": status, "header_id_matches_body": delivery.get("id") == webhook_id})
        return status

    def of_type(self, kind: str) -> list[dict]:
        with self.lock:
            return [body for body in self.effects.values() if body["type"] == kind]

    def close(self):
        self.server.shutdown()
