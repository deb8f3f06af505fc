"""Smoke test of the embedded default: `manage.py serve` on SQLite, memory store, in-process tick."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import jwt
import pytest

from queues.management.commands.seed_demo import FAN, OPERATOR

from .servers import PYTHON, Process, base_env, free_port, http_json, manage, wait_http

pytestmark = pytest.mark.e2e


@pytest.fixture
def embedded_server(tmp_path):
    port = free_port()
    env = base_env(DATABASE_URL=f"sqlite:///{tmp_path / 'qms.sqlite3'}", PORT=str(port))
    manage("migrate", "--noinput", "-v0", env=env)
    seeded = manage("seed_demo", env=env)
    server = Process("serve", [PYTHON, "manage.py", "serve"], env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/healthz", process=server)
        yield base, seeded, server
    finally:
        server.stop()


def login(base: str, username: str, password: str) -> str:
    status, body = http_json("POST", f"{base}/api/auth/token/", {"username": username, "password": password})
    assert status == 200, body
    return body["access"]


def test_fan_joins_over_http_polls_and_gets_a_token_that_verifies_against_jwks(embedded_server):
    base, seeded, server = embedded_server
    assert "fan login" in seeded and FAN[0] in seeded
    operator = login(base, *OPERATOR)
    status, event = http_json("POST", f"{base}/api/events/", {
        "name": "Smoke", "reservation_url": "https://tickets.example/r", "admit_per_minute": 60, "paused": True,
        "sale_starts_at": datetime.now(UTC).isoformat(),
    }, operator)
    assert status == 201, event
    fan = login(base, *FAN)
    status, joined = http_json("POST", f"{base}/api/events/{event['id']}/queue/", token=fan)
    assert (status, joined["state"], joined["position"]) == (201, "waiting", 1)
    http_json("PATCH", f"{base}/api/events/{event['id']}/", {"paused": False}, operator)

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:  # the in-process loop admits within a tick or two
        status, polled = http_json("GET", f"{base}/api/events/{event['id']}/queue/", token=fan)
        if polled["state"] == "admitted":
            break
        time.sleep(0.3)
    assert polled["state"] == "admitted", server.log()

    _, jwks = http_json("GET", f"{base}/.well-known/jwks.json")
    token = polled["admission"]["token"]
    key = {k["kid"]: k for k in jwks["keys"]}[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, jwt.PyJWK(key), algorithms=["ES256"], audience="reservation", issuer="qms")
    assert claims["evt"] == event["id"]
    assert "QMS_SIGNING_KEY is not set" in server.log()  # no key configured: said so in the log
