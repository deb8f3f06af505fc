"""The production topology's front (Procfile `proxy` and `http`, deploy/nginx.conf): nginx serves the collected
static files itself, sends pages and the API to gunicorn and WebSockets to Daphne."""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import urllib.request
from datetime import UTC, datetime

import pytest

from deploy.local_nginx import render
from tests.services import require_service

from .servers import free_ports, http_json, manage, wait_http
from .topology import Fan, require_postgres_and_redis, start_topology, stop_topology

pytestmark = pytest.mark.e2e


@pytest.fixture
def front(tmp_path):
    """The topology with nothing started, its static files collected, gunicorn and nginx on ports of its own."""
    require_postgres_and_redis()
    if shutil.which("nginx") is None:
        require_service("nginx (make nginx)", FileNotFoundError("nginx"))
    http_port, nginx_port = free_ports(2)
    static_root = tmp_path / "static"
    topology = start_topology(tmp_path, 1, processes=(), DJANGO_STATIC_ROOT=str(static_root),
                              QMS_HTTP_PORT=str(http_port), QMS_NGINX_DIR=str(tmp_path / "nginx"))
    try:
        manage("collectstatic", "--noinput", "-v0", env=topology.env)
        render(tmp_path / "nginx", nginx_port, [http_port], topology.ports, static_root)
        yield topology, f"http://127.0.0.1:{nginx_port}", nginx_port
    finally:
        stop_topology(topology)


def test_nginx_serves_static_files_pages_and_api_go_to_gunicorn_sockets_to_daphne(front):
    topology, base, nginx_port = front
    topology.start("http")
    wait_http(f"http://127.0.0.1:{topology.env['QMS_HTTP_PORT']}/healthz", timeout=40,
              process=topology.processes["http"])
    topology.start("proxy")
    wait_http(f"{base}/.well-known/jwks.json", timeout=20,
              process=topology.processes["proxy"])

    # No Daphne runs yet: the page and the API answer through gunicorn alone.
    status, event = http_json("POST", f"{base}/api/events/", {
        "name": "Front", "reservation_url": "https://tickets.example/reserve", "paused": True,
        "sale_starts_at": datetime.now(UTC).isoformat()}, topology.staff_token)
    assert status == 201, event
    user_id, token = topology.fans[0]
    status, joined = http_json("POST", f"{base}/api/events/{event['id']}/queue/", {}, token)
    assert status == 201, joined
    with urllib.request.urlopen(f"{base}/events/{event['id']}/waiting-room/", timeout=10) as response:
        page = response.read().decode()
    stylesheet = re.search(r'href="(/static/qms/qms\.[0-9a-f]{12}\.css)"', page).group(1)

    topology.processes["http"].stop()  # the static file comes from nginx itself, with no Python behind it
    request = urllib.request.Request(f"{base}{stylesheet}", headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert "immutable" in response.headers["Cache-Control"]
        assert b"{" in gzip.decompress(response.read())

    topology.start("web1")  # the socket goes to Daphne
    wait_http(f"{topology.base(0)}/readyz", timeout=40, process=topology.processes["web1"])
    fan = Fan(topology, 0, event["id"], user_id, token)
    fan.url = f"ws://127.0.0.1:{nginx_port}/ws/events/{event['id']}/queue/?token={token}"

    async def socket() -> dict:
        first = await fan.open()
        await fan.ws.close()
        return first

    first = asyncio.run(socket())
    assert first["type"] == "queued" and first["ticket"] == joined["ticket"]
