"""Stand-ins for the sites around the queue that tests switch at will (the protected reservation site)."""

from __future__ import annotations

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
