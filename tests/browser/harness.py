"""What the browser tests and the screenshot script drive: a real QMS server, a stub reservation desk, Chromium.

The server is `manage.py serve` (embedded default) on a free port with its own
SQLite file; the desk is a tiny HTTP server that verifies each arriving
admission token offline against the server's JWKS, as a reservation service would.
"""

from __future__ import annotations

import html
import json
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt

from queues.management.commands.seed_demo import FAN, OPERATOR
from tests.e2e.servers import AccessTokens, EmbeddedServer, http_json

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
FAN2 = ("fan2", "fan2-password-123")
FILLER = ("fan3", "fan3-password-123")
GUESSER = ("fan4", "fan4-password-123")  # locked out of codes by its test (at every event): nobody else's login

_CREATE_USERS = """
from django.contrib.auth import get_user_model
users = get_user_model()
for name, password in {users!r}:
    user, _ = users.objects.get_or_create(username=name)
    user.set_password(password)
    user.save()
"""


class QMSServer(EmbeddedServer):
    """`manage.py serve` with the demo logins plus FAN2 and FILLER; events are made per test over the API."""

    def __init__(self, workdir: Path, **env: str):
        users = _CREATE_USERS.format(users=[FAN2, FILLER, GUESSER])
        super().__init__(workdir, seed=[("seed_demo",), ("shell", "-c", users)], ready_path="/healthz", **env)
        self._tokens = AccessTokens()

    def token(self, login: tuple[str, str]) -> str:
        """A JWT access token for the login (cached)."""
        return self._tokens.get(self.base, login)

    def user_id(self, login: tuple[str, str]) -> str:
        return str(jwt.decode(self.token(login), options={"verify_signature": False})["user_id"])

    def api(self, method: str, path: str, body: dict | None = None, login: tuple[str, str] = OPERATOR):
        status, data = http_json(method, f"{self.base}{path}", body, self.token(login))
        assert status < 300, (method, path, status, data, self.process.log()[-3000:])
        return data

    def create_event(self, **fields) -> dict:
        starts = fields.pop("sale_starts_in", timedelta(minutes=-1))
        body = {"name": "Test on-sale", "admit_per_minute": 60, "max_active": 100,
                "sale_starts_at": (datetime.now(UTC) + starts).isoformat(), **fields}
        return self.api("POST", "/api/events/", body)


class ReservationDesk:
    """A stand-in reservation service: verifies each token with the JWKS (PyJWT) and records the claims."""

    def __init__(self, jwks_url: str):
        self.jwks = jwt.PyJWKClient(jwks_url, cache_keys=True)
        self.arrivals: list[dict] = []
        self.refusals: list[str] = []
        self._lock = threading.Lock()
        desk = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                token = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("token", [""])[0]
                try:
                    claims = desk.verify(token)
                except Exception as exc:  # any refusal is shown and recorded
                    with desk._lock:
                        desk.refusals.append(repr(exc))
                    return self.reply(400, f'<p id="refused">Token refused: {html.escape(repr(exc))}</p>')
                with desk._lock:
                    desk.arrivals.append(claims)
                attrs = html.escape(json.dumps(claims))
                self.reply(200, f'<h1>Reservation desk</h1><p id="verified" data-claims="{attrs}">'
                                f'Token verified for fan {html.escape(claims["sub"])} at event {claims["evt"]}</p>')

            def reply(self, status: int, body: str) -> None:
                data = f"<!doctype html><title>Reservation desk</title>{body}".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reserve"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def verify(self, token: str) -> dict:
        key = self.jwks.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["ES256"], audience="reservation", issuer="qms")

    def claims_for(self, user_id: str, event_id: int) -> list[dict]:
        """Verified claims of the tokens this fan brought for this event."""
        with self._lock:
            return [claims for claims in self.arrivals if claims["sub"] == user_id and claims["evt"] == event_id]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def room(event: dict) -> str:
    """The path of an event's waiting-room page."""
    return f"/events/{event['id']}/waiting-room/"


def log_in(page, base: str, login: tuple[str, str], next_path: str) -> None:
    """Through the login form, as a fan would (the page sends them back to `next_path`). The fields are found by
    their ids, so the form may be in any language."""
    page.goto(f"{base}{next_path}")
    if "/accounts/login/" in page.url:
        page.locator("#id_username").fill(login[0])
        page.locator("#id_password").fill(login[1])
        page.locator("#id_password").press("Enter")
        page.wait_for_url(f"{base}{next_path}")


def log_in_admin(page, base: str, next_path: str) -> None:
    page.goto(f"{base}/admin/login/?next={urllib.parse.quote(next_path)}")
    page.locator("#id_username").fill(OPERATOR[0])
    page.locator("#id_password").fill(OPERATOR[1])
    page.locator("input[type=submit]").click()
    page.wait_for_url(f"{base}{next_path}")


__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "FAN", "FAN2", "FILLER", "OPERATOR", "QMSServer", "ReservationDesk",
           "log_in", "log_in_admin", "room"]
