"""A site that has never heard of QMS, protected by the gate: the QMS server (`manage.py serve`), the stand-in
origin (tests/sites.py `GatedOrigin`, plain `http.server`) and Debian's nginx running the configuration that
`manage.py qms_gate_config nginx` prints, for the gate's e2e and browser tests and bench/gate.py."""

from __future__ import annotations

import http.client
import json
import shutil
from dataclasses import dataclass
from email.message import Message
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from deploy.local_nginx import runnable
from queues.management.commands.seed_demo import OPERATOR
from tests.services import require_service
from tests.sites import GatedOrigin

from .servers import AccessTokens, EmbeddedServer, Process, free_port, http_json, manage, wait_http, wait_until

FAN_PASSWORD = "gate-fan-password-1"
PUBLIC_PREFIX = "/public/"  # a path prefix bypass rule: the site's free pages
BYPASSED_ADDRESS = "127.0.0.2"  # an address bypass rule (Linux answers on all of 127.0.0.0/8)
GATE_COOKIE_KEY = "gate-e2e-cookie-key"  # the server's QMS_GATE_COOKIE_KEY: a test signs cookies it may not hold

# Run by `manage.py shell` before the server starts: fans, the event guarding the whole nginx host, its rules.
SEED = """
import json
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from events.models import BypassRule, Event, ProtectedRoute
users = get_user_model()
for i in range({fans}):
    users.objects.create_user(f"gatefan{{i}}", password={password!r})
event = Event.objects.create(name="Protected shop", sale_starts_at=timezone.now() - timedelta(minutes=1),
                             admit_per_minute=600, max_active=1000, reservation_url="https://tickets.example/")
ProtectedRoute.objects.create(event=event, host={host!r}, path_prefix="/")
BypassRule.objects.create(event=event, position=1, kind="path_prefix", value={public!r})
BypassRule.objects.create(event=event, position=2, kind="address", value={address!r} + "/32")
print(json.dumps({{"event": event.id}}))
"""


@dataclass
class Visit:
    """One answer of the proxy, redirects not followed."""

    status: int
    headers: Message
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    def cookies(self) -> SimpleCookie:
        jar = SimpleCookie()
        for header in self.headers.get_all("Set-Cookie") or []:
            jar.load(header)
        return jar


class GatedSite:
    """QMS, the origin and nginx in front of both, each on a port of its own; `stop()` ends all three."""

    def __init__(self, workdir: Path, *, fans: int = 4, **env: str):
        if shutil.which("nginx") is None:
            require_service("nginx (make nginx)", FileNotFoundError("nginx"))
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.host}"
        self.fans = [(f"gatefan{i}", FAN_PASSWORD) for i in range(fans)]
        self.origin = GatedOrigin()
        self.nginx: Process | None = None
        seed = SEED.format(fans=fans, password=FAN_PASSWORD, host=self.host, public=PUBLIC_PREFIX,
                           address=BYPASSED_ADDRESS)
        try:
            self.qms = EmbeddedServer(workdir, seed=[("seed_demo",), ("shell", "-c", seed)], ready_path="/healthz",
                                      QMS_TICK_SECONDS="0.5", QMS_GATE_COOKIE_KEY=GATE_COOKIE_KEY, **env)
        except Exception:
            self.origin.close()
            raise
        self.event_id = json.loads(self.qms.seeded[1].strip().splitlines()[-1])["event"]
        self.cookie_name = f"qms_gate_{self.event_id}"
        self._tokens = AccessTokens()
        try:
            self.config = manage("qms_gate_config", "nginx", "--event", str(self.event_id), "--origin",
                                 self.origin.url, "--listen", str(self.port), "--qms", self.qms.base, env=self.qms.env)
            conf = runnable(workdir / "nginx", self.config)
            self.nginx = Process("nginx", ["nginx", "-c", str(conf), "-p", str(conf.parent)], self.qms.env, workdir)
            wait_http(f"{self.base}/.well-known/jwks.json", timeout=20, process=self.nginx)
        except Exception:
            self.stop()
            raise

    def visit(self, path: str, *, cookie: str | None = None, source: str = "127.0.0.1",
              headers: dict | None = None) -> Visit:
        """GET `path` through nginx from the address `source`, with the gate cookie `cookie`."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10, source_address=(source, 0))
        sent = dict(headers or {})
        if cookie is not None:
            sent["Cookie"] = f"{self.cookie_name}={cookie}"
        try:
            connection.request("GET", path, headers=sent)
            response = connection.getresponse()
            return Visit(response.status, response.headers, response.read().decode(errors="replace"))
        finally:
            connection.close()

    def token(self, login: tuple[str, str]) -> str:
        """An API access token for the login, obtained through the proxy (cached)."""
        return self._tokens.get(self.base, login)

    def queue(self, method: str, login: tuple[str, str], return_url: str) -> dict:
        """Join (POST) or read one's place (GET) through the HTTP API, asking to be sent to `return_url`."""
        status, body = http_json(method, f"{self.base}/api/events/{self.event_id}/queue/?"
                                 + urlencode({"return": return_url}), {} if method == "POST" else None,
                                 self.token(login))
        assert status < 300, (status, body)
        return body

    def admit(self, fan: tuple[str, str], path: str) -> tuple[str, dict]:
        """The fan joins asking to come back to `path`, is admitted (within 20 s) and follows the redirect to the
        protected page: (the gate cookie it was given, the admission)."""
        admission = self.queue("POST", fan, self.base + path)["admission"] or wait_until(
            lambda: self.queue("GET", fan, self.base + path)["admission"], timeout=20,
            failure=f"{fan[0]} never admitted")
        target = urlsplit(admission["redirect_url"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == self.base + path, admission
        landing = self.visit(f"{target.path}?{target.query}")
        assert landing.status == 200, (landing.status, landing.location, self.log())
        return landing.cookies()[self.cookie_name].value, admission

    def operate(self, operation: str) -> dict:
        status, body = http_json("POST", f"{self.base}/api/events/{self.event_id}/queue/{operation}/", {},
                                 self.token(OPERATOR))
        assert status == 200, body
        return body

    def live_admissions(self) -> int:
        status, body = http_json("GET", f"{self.base}/api/events/{self.event_id}/queue/stats/", None,
                                 self.token(OPERATOR))
        assert status == 200, body
        return body["live_admissions"]

    def log(self) -> str:
        return self.qms.log()[-4000:] + (self.nginx.log()[-2000:] if self.nginx else "")

    def stop(self) -> None:
        if self.nginx is not None:
            self.nginx.stop()
        self.qms.stop()
        self.origin.close()


__all__ = ["BYPASSED_ADDRESS", "GATE_COOKIE_KEY", "OPERATOR", "PUBLIC_PREFIX", "GatedSite", "Visit"]
