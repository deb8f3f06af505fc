"""Stand-ins for the sites around the queue that tests switch at will (the protected reservation site, a site
behind the gate)."""

from __future__ import annotations

import html
import http.server
import threading


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
