"""`/metrics` during an admission run: counters and the queue state move as the fans do.

In one process (both stores), and across real processes sharing
PROMETHEUS_MULTIPROC_DIR: two Daphnes started with the Procfile's lines and a
`manage.py qms_admit` in a third process, all added up by whichever Daphne is scraped.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient
from websockets.asyncio.client import connect

from queues import admission
from queues.operations import perform
from tests.e2e.servers import PYTHON, ROOT, http_json, wait_until, within
from tests.e2e.topology import require_postgres_and_redis, start_topology, stop_topology


def parse(exposition: str) -> dict:
    samples = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted((key, str(label)) for key, label in labels.items()))), 0.0)


def scrape_client() -> dict:
    response = APIClient().get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


# --- one process ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_counters_and_queue_state_follow_an_admission_run(store, make_event, make_user):
    event = make_event(paused=True, admit_per_minute=600)
    fans = [make_user() for _ in range(5)]
    before = scrape_client()
    for fan in fans:
        admission.join(event, fan)
    admission.join(event, fans[0])  # joining again takes no new ticket
    queued = scrape_client()
    assert value(queued, "qms_joins_total", event=event.id) - value(before, "qms_joins_total", event=event.id) == 5
    assert value(queued, "qms_waiting", event=event.id) == 5
    assert value(queued, "qms_live_admissions", event=event.id) == 0

    perform("resume", event)
    issued = admission.tick(event).admitted
    after = scrape_client()
    assert len(issued) == 5
    assert value(after, "qms_admissions_total", event=event.id) - value(queued, "qms_admissions_total",
                                                                       event=event.id) == 5
    assert value(after, "qms_tick_duration_seconds_count") - value(queued, "qms_tick_duration_seconds_count") == 1
    assert value(after, "qms_waiting", event=event.id) == 0
    assert value(after, "qms_live_admissions", event=event.id) == 5


@pytest.mark.django_db
def test_token_verifications_redemptions_and_rejections_are_counted_by_reason(store, make_event, make_user):
    event = make_event(paused=True)
    admission.join(event, make_user())
    token = admission.tick(event, extra=1).admitted[0].token  # what the operator's "admit 1 now" runs
    client = APIClient()
    before = scrape_client()
    assert client.post("/api/admissions/verify/", {"token": token}, format="json").status_code == 200
    assert client.post("/api/admissions/verify/", {"token": token, "redeem": True}, format="json").status_code == 200
    assert client.post("/api/admissions/verify/", {"token": token, "redeem": True}, format="json").status_code == 409
    assert client.post("/api/admissions/verify/", {"token": "not-a-jwt"}, format="json").status_code == 400
    after = scrape_client()

    def moved(name: str, **labels) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("qms_tokens_verified_total") == 2
    assert moved("qms_tokens_redeemed_total") == 1
    assert moved("qms_tokens_rejected_total", reason="token_already_redeemed") == 1
    assert moved("qms_tokens_rejected_total", reason="token_malformed") == 1


# --- several processes ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_daphnes(tmp_path_factory):
    """Two Daphne processes from the Procfile (PostgreSQL, Redis), one metrics directory, JSON logs; no beat,
    so only the test admits (with `qms_admit` in a third process)."""
    require_postgres_and_redis()
    topology = start_topology(tmp_path_factory.mktemp("metrics"), 8, processes=("web1", "web2"),
                              QMS_LOG_FORMAT="json")
    try:
        event = topology.create_event(admit_per_minute=600, max_active=1000)  # paused
        yield {"topology": topology, "env": topology.env, "ports": topology.ports,
               "servers": topology.processes, "event": event, "fans": topology.fans}
    finally:
        stop_topology(topology)


def scrape(port: int) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return parse(response.read().decode())


def scrape_once_closed(port: int, sockets_open: int, topology) -> dict:
    """/metrics once the server has counted a close (its disconnect handler runs after the client saw it)."""
    def counted() -> dict | None:
        samples = scrape(port)
        return samples if value(samples, "qms_websockets_open") == sockets_open else None

    return wait_until(counted, 10, lambda: f"qms_websockets_open never {sockets_open}\n{topology.logs()}",
                      interval=0.1)


@pytest.fixture(scope="module")
def admission_run(two_daphnes) -> dict:
    """Joins on both Daphnes, sockets (one superseded), web2 killed, `qms_admit` in a third process.

    Returns what /metrics on web1 said at each step, and what the processes logged.
    """
    web1, web2 = two_daphnes["ports"]
    event, fans = two_daphnes["event"], two_daphnes["fans"]
    seen: dict = {}
    for index, (_, access) in enumerate(fans[:4]):  # two joins on each Daphne
        status, _ = http_json("POST", f"http://127.0.0.1:{(web1, web2)[index % 2]}/api/events/{event}/queue/",
                              token=access)
        assert status == 201
    seen["joined"] = scrape(web1)

    def socket_url(port: int, fan: int) -> str:
        return f"ws://127.0.0.1:{port}/ws/events/{event}/queue/?token={fans[fan][1]}"

    async def first(socket, kind: str) -> None:
        """The next frame that is not a progress broadcast is of this kind."""
        while (message := json.loads(await within(10, f"a {kind} frame", socket.recv())))["type"] == "progress":
            pass
        assert message["type"] == kind, message

    async def sockets_scenario():
        on_web2 = await connect(socket_url(web2, 4), proxy=None, open_timeout=10)
        await first(on_web2, "queued")
        seen["one_socket_on_web2"] = scrape(web1)
        on_web1 = await connect(socket_url(web1, 4), proxy=None, open_timeout=10)  # the same fan, another device
        await first(on_web1, "queued")
        await first(on_web2, "superseded")
        await within(10, "the superseded socket's close", on_web2.wait_closed())
        seen["superseded"] = scrape_once_closed(web1, 1, two_daphnes["topology"])
        another_on_web2 = await connect(socket_url(web2, 5), proxy=None, open_timeout=10)
        await first(another_on_web2, "queued")
        seen["two_sockets_seen_from_web2"] = scrape(web2)
        return on_web1

    loop = asyncio.new_event_loop()
    try:
        on_web1 = loop.run_until_complete(sockets_scenario())
        two_daphnes["servers"]["web2"].kill(signal.SIGKILL)  # with a socket open
        seen["web2_killed"] = scrape(web1)
        loop.run_until_complete(on_web1.close())
        seen["all_closed"] = scrape_once_closed(web1, 0, two_daphnes["topology"])
    finally:
        loop.close()

    admit = subprocess.run([PYTHON, "manage.py", "qms_admit", str(event), "2"], cwd=ROOT, env=two_daphnes["env"],
                           capture_output=True, text=True, timeout=60)
    assert admit.returncode == 0 and "Admitted 2 of 2" in admit.stdout, admit.stderr
    seen["admitted"] = scrape(web1)
    logs = {name: server.log() for name, server in two_daphnes["servers"].items()}
    logs["qms_admit"] = admit.stderr
    issued = [token for (token,) in two_daphnes["topology"].sql("SELECT token FROM queues_admission")]
    return {"metrics": seen, "logs": logs, "issued_tokens": issued, "event": event, "fans": fans}


def test_metrics_add_up_every_process_and_forget_a_killed_one(admission_run):
    seen, event = admission_run["metrics"], admission_run["event"]
    assert value(seen["joined"], "qms_joins_total", event=event) == 4  # two joined through each Daphne
    assert value(seen["one_socket_on_web2"], "qms_websockets_open") == 1  # open on web2, scraped on web1
    assert value(seen["superseded"], "qms_websockets_open") == 1
    assert value(seen["two_sockets_seen_from_web2"], "qms_websockets_open") == 2
    assert value(seen["web2_killed"], "qms_websockets_open") == 1  # the dead process's sockets are forgotten
    assert value(seen["all_closed"], "qms_websockets_open") == 0
    admitted = seen["admitted"]
    assert value(admitted, "qms_admissions_total", event=event) == 2  # counted in the command's own process
    assert value(admitted, "qms_tick_duration_seconds_count") >= 1
    assert value(admitted, "qms_joins_total", event=event) == 6  # web2's counts outlive web2
    assert value(admitted, "qms_waiting", event=event) == 4
    assert value(admitted, "qms_live_admissions", event=event) == 2


def test_logs_are_json_lines_with_event_and_user_ids_and_no_tokens(admission_run):
    logs, event = admission_run["logs"], admission_run["event"]
    fan_ids = [fan_id for fan_id, _ in admission_run["fans"]]
    entries = [json.loads(line) for text in logs.values() for line in text.splitlines() if line.startswith("{")]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    joins = sorted(entry["user_id"] for entry in entries if entry["message"] == "join" and entry["event_id"] == event)
    assert joins == fan_ids[:6]
    assert [(e["event_id"], e["user_id"]) for e in entries if e["message"] == "supersede"] == [(event, fan_ids[4])]
    admits = [entry for entry in entries if entry["message"] == "admit"]
    assert sorted(entry["user_id"] for entry in admits) == fan_ids[:2] and all(entry["jti"] for entry in admits)
    secrets = admission_run["issued_tokens"] + [access for _, access in admission_run["fans"]]
    assert len(admission_run["issued_tokens"]) == 2
    assert not [secret for secret in secrets if any(secret in text for text in logs.values())], "a token was logged"
