"""Webhooks end to end: a real Celery worker and beat (production topology) and the embedded server each deliver
admission.issued to a real local receiver, which checks every delivery with docs/API.md's snippet, answers 500
the first time for one id, and acts once per id."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from queues.management.commands.seed_demo import FAN, OPERATOR
from tests.sites import WebhookReceiver

from .servers import EmbeddedServer, http_json, wait_until
from .topology import require_postgres_and_redis, start_topology, stop_topology

pytestmark = pytest.mark.e2e

SECRET = "whsec-e2e-0123456789abcdef"
FANS = 4


@pytest.fixture
def receiver():
    receiver = WebhookReceiver(SECRET, fail_first=True)
    yield receiver
    receiver.close()


def register(base: str, staff_token: str, receiver: WebhookReceiver) -> None:
    status, body = http_json("POST", f"{base}/api/webhooks/endpoints/", {
        "url": receiver.url, "secret": SECRET, "event_types": ["admission.issued"]}, staff_token)
    assert status == 201, body


def assert_delivered_once_each(receiver: WebhookReceiver, jtis: set[str], log) -> None:
    """Every admission reached the receiver (the one failed first, again), and acted on once per id."""
    wait_until(lambda: {body["data"]["jti"] for body in receiver.of_type("admission.issued")} == jtis
               and receiver.failed_once in receiver.effects, 40,
               lambda: f"received {receiver.received}\n{log()}", interval=0.2)
    assert all(request["verified"] and request["header_id_matches_body"] for request in receiver.received)
    retried = [request["status"] for request in receiver.received if request["id"] == receiver.failed_once]
    assert retried[:2] == [500, 200]
    assert len(receiver.effects) == len(jtis)  # one side effect per admission, however often it came


def test_a_celery_worker_delivers_every_admission_within_seconds_and_retries_after_a_500(tmp_path, receiver):
    require_postgres_and_redis()
    topology = start_topology(tmp_path, FANS, processes=("web1", "worker", "beat"),
                              QMS_WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    try:
        register(topology.base(), topology.staff_token, receiver)
        event_id = topology.create_event(admit_per_minute=600)
        for _, token in topology.fans:
            status, body = http_json("POST", f"{topology.base()}/api/events/{event_id}/queue/", token=token)
            assert status == 201, body
        topology.set_paused(event_id, False, server=0)

        def all_admitted() -> set[str] | None:
            jtis = {row[0] for row in topology.sql("SELECT jti FROM queues_admission WHERE event_id = %s", event_id)}
            return jtis if len(jtis) == FANS else None

        jtis = wait_until(all_admitted, 30, topology.logs)
        assert_delivered_once_each(receiver, jtis, topology.logs)
        rows = topology.sql("SELECT status, attempts, webhook_id FROM queues_webhookdelivery")
        assert sorted(row[0] for row in rows) == ["delivered"] * FANS
        assert {row[2]: row[1] for row in rows}[receiver.failed_once] >= 2
    finally:
        stop_topology(topology)


def test_the_embedded_server_delivers_too(tmp_path, receiver):
    server = EmbeddedServer(tmp_path, ready_path="/healthz", QMS_WEBHOOK_ALLOWED_HOSTS="127.0.0.1")
    try:
        def login(username: str, password: str) -> str:
            status, body = http_json("POST", f"{server.base}/api/auth/token/",
                                     {"username": username, "password": password})
            assert status == 200, body
            return body["access"]

        operator, fan = login(*OPERATOR), login(*FAN)
        register(server.base, operator, receiver)
        status, event = http_json("POST", f"{server.base}/api/events/", {
            "name": "Webhooks", "reservation_url": "https://tickets.example/r", "paused": True,
            "sale_starts_at": datetime.now(UTC).isoformat()}, operator)
        assert status == 201, event
        http_json("POST", f"{server.base}/api/events/{event['id']}/queue/", token=fan)
        http_json("PATCH", f"{server.base}/api/events/{event['id']}/", {"paused": False}, operator)

        def admitted_jti() -> str | None:
            _, polled = http_json("GET", f"{server.base}/api/events/{event['id']}/queue/", token=fan)
            return polled["admission"]["token"] if polled.get("state") == "admitted" else None

        token = wait_until(admitted_jti, 20, server.log, interval=0.3)
        _, verified = http_json("POST", f"{server.base}/api/admissions/verify/", {"token": token})
        assert_delivered_once_each(receiver, {verified["claims"]["jti"]}, server.log)
    finally:
        server.stop()
