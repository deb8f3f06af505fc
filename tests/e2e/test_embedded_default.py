"""Smoke test of the embedded default: `manage.py serve` on SQLite, memory store, in-process tick."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt
import pytest

from queues.management.commands.seed_demo import FAN, OPERATOR

from .servers import EmbeddedServer, http_json, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def embedded_server(tmp_path):
    server = EmbeddedServer(tmp_path, ready_path="/healthz")
    try:
        yield server.base, server.seeded[0], server
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

    def admitted() -> dict | None:  # the in-process loop admits within a tick or two
        status, polled = http_json("GET", f"{base}/api/events/{event['id']}/queue/", token=fan)
        return polled if polled["state"] == "admitted" else None

    polled = wait_until(admitted, 15, lambda: f"the fan was not admitted\n{server.log()}", interval=0.3)

    _, jwks = http_json("GET", f"{base}/.well-known/jwks.json")
    token = polled["admission"]["token"]
    key = {k["kid"]: k for k in jwks["keys"]}[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, jwt.PyJWK(key), algorithms=["ES256"], audience="reservation", issuer="qms")
    assert claims["evt"] == event["id"]
    assert "QMS_SIGNING_KEY is not set" in server.log()  # no key configured: said so in the log
