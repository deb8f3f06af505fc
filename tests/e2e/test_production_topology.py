"""End to end on the production topology: 2 Daphne processes, a Celery worker, beat, PostgreSQL, Redis.

Real WebSocket clients spread over both Daphne processes; the tick runs only
in Celery (beat every second, one task per event).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter

import pytest

from queues.verify import AdmissionVerifier

from .servers import http_json, wait_http, wait_until_async
from .topology import Fan, open_all, require_postgres_and_redis, start_topology, stop_topology, tick_batches

pytestmark = pytest.mark.e2e

FANS = 1000
RATE_PER_MINUTE = 1200
# Observed admission rate within ±10% of the configured rate: a tick late by more than a second (a loaded
# machine) loses what overflows the bucket, the one deviation the bucket does not make up for.
RATE_TOLERANCE = 0.10


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    require_postgres_and_redis()
    started = start_topology(tmp_path_factory.mktemp("topology"), FANS)
    try:
        yield started
    finally:
        stop_topology(started)


def ledger(topology, event_id: int) -> list[tuple]:
    return topology.sql("SELECT user_id, ticket, issued_at, jti FROM queues_admission WHERE event_id = %s "
                        "ORDER BY ticket", event_id)


def test_fans_across_two_daphnes_are_admitted_once_in_ticket_order_at_the_rate(topology):
    count = 200
    event_id = topology.create_event(admit_per_minute=RATE_PER_MINUTE)

    async def scenario():
        fans = [Fan(topology, i, event_id, *topology.fans[i]) for i in range(count)]
        queued = await open_all(fans, concurrency=50)
        # A second device for fan 0, on the other Daphne process, takes over.
        second = Fan(topology, 1, event_id, *topology.fans[0])
        again = await second.open()
        await fans[0].until_closed(timeout=10)
        superseded = fans[0]
        fans[0] = second
        topology.set_paused(event_id, False)
        await asyncio.gather(*(fan.until_closed(timeout=90) for fan in fans))
        return fans, queued, superseded, again

    fans, queued, superseded, again = asyncio.run(scenario())

    assert [q["type"] for q in queued] == ["queued"] * count
    tickets = {fan.user_id: q["ticket"] for fan, q in zip(fans, queued, strict=True)}
    assert superseded.of_type("superseded") and superseded.close_code == 4002
    assert (again["type"], again["ticket"]) == ("queued", queued[0]["ticket"])  # the place is kept

    admitted = {fan.user_id: fan.of_type("admitted") for fan in fans}
    odd = [(fan.user_id, [m["type"] for m in fan.messages if m["type"] != "progress"], fan.close_code,
            topology.sql("SELECT ticket, issued_at FROM queues_admission WHERE event_id = %s AND user_id = %s",
                         event_id, fan.user_id)) for fan in fans if len(admitted[fan.user_id]) != 1]
    assert not odd, f"every fan admitted exactly once: {odd}\n{topology.logs()}"
    assert [fan.close_code for fan in fans] == [4000] * count, "the server closes every socket after admitted"

    verifier = AdmissionVerifier(f"{topology.base(1)}/.well-known/jwks.json")  # as the reservation service does
    for user_id, (message,) in admitted.items():
        claims = verifier.verify(message["token"], event_id=event_id)
        assert (claims["sub"], claims["evt"]) == (str(user_id), event_id)

    rows = ledger(topology, event_id)
    assert len(rows) == count and len({row[0] for row in rows}) == count
    assert {row[0]: row[1] for row in rows} == tickets
    issued = [row[2] for row in rows]
    assert issued == sorted(issued), "admitted in ticket order"
    batches = tick_batches(issued)
    assert len(batches) >= 5, batches
    # The first tick spends the bucket it starts with (two ticks' worth) and the last admits whoever is left:
    # the rate is what the ticks in between admitted over the time since the first one.
    span = batches[-2][0] - batches[0][0]
    observed = sum(fans for _, fans in batches[1:-1]) / span * 60
    assert abs(observed - RATE_PER_MINUTE) <= RATE_TOLERANCE * RATE_PER_MINUTE, (observed, batches)


def test_worker_killed_and_restarted_mid_run_loses_and_doubles_nobody(topology):
    count = 150
    event_id = topology.create_event(admit_per_minute=RATE_PER_MINUTE)
    offset = 200  # other users than the first test's

    async def scenario():
        fans = [Fan(topology, i, event_id, *topology.fans[offset + i]) for i in range(count)]
        await open_all(fans, concurrency=50)
        topology.set_paused(event_id, False)
        closers = [asyncio.ensure_future(fan.until_closed(timeout=120)) for fan in fans]
        await wait_until_async(lambda: sum(bool(fan.of_type("admitted")) for fan in fans) >= count // 3, 60,
                               lambda: f"a third of the fans admitted\n{topology.logs()}")
        topology.processes["worker"].kill(signal.SIGKILL)
        await asyncio.sleep(2)
        topology.start("worker")
        await asyncio.gather(*closers)
        return fans

    fans = asyncio.run(scenario())
    per_fan = Counter(len(fan.of_type("admitted")) for fan in fans)
    _, stats = http_json("GET", f"{topology.base()}/api/events/{event_id}/queue/stats/", token=topology.staff_token)
    assert per_fan == Counter({1: count}), f"{per_fan} {stats}\n{topology.logs()}"
    rows = ledger(topology, event_id)
    assert len(rows) == count and len({row[0] for row in rows}) == count
    assert {m["token"] for fan in fans for m in fan.of_type("admitted")} == {
        t for (t,) in topology.sql("SELECT token FROM queues_admission WHERE event_id = %s", event_id)}
    assert (stats["waiting"], stats["admitted_total"], stats["live_admissions"]) == (0, count, count)


def test_a_burst_of_a_thousand_simultaneous_sockets_is_served(topology):
    event_id = topology.create_event(admit_per_minute=RATE_PER_MINUTE)

    async def scenario():
        fans = [Fan(topology, i, event_id, *topology.fans[i]) for i in range(FANS)]
        queued = await open_all(fans, concurrency=FANS)  # all at once, half on each Daphne
        await asyncio.gather(*(fan.ws.close() for fan in fans))
        return queued

    started = time.monotonic()
    queued = asyncio.run(scenario())
    assert [q["type"] for q in queued] == ["queued"] * FANS
    assert sorted(q["ticket"] for q in queued) == list(range(1, FANS + 1))
    assert time.monotonic() - started < 120
    for name in ("web1", "web2"):
        log = topology.processes[name].log()
        assert "MaxConnectionsError" not in log and "Traceback" not in log, log[-3000:]


def test_a_socket_whose_server_heard_nothing_for_longer_than_redis_timeout_still_receives(topology):
    """The channel layer's blocking read (BZPOPMIN, 5 s) outlives redis-py's socket timeout (socket_timeout: None).

    With beat stopped nothing is broadcast, so web1's read blocks idle; after 7 s a
    second device on web2 supersedes the fan, and only the channel layer can tell
    web1's socket (no status pull knows about another device).
    """
    event_id = topology.create_event(admit_per_minute=RATE_PER_MINUTE)
    offset = 420  # other users than the other tests'
    topology.processes["beat"].stop()  # no ticks, so no progress broadcasts: the read idles

    async def scenario():
        fan = Fan(topology, 0, event_id, *topology.fans[offset])
        await fan.open()
        await asyncio.sleep(7)
        second = Fan(topology, 1, event_id, *topology.fans[offset])
        await second.open()
        await fan.next_of("superseded", timeout=10)
        await fan.until_closed(timeout=10)
        await second.ws.close()
        return fan

    try:
        fan = asyncio.run(scenario())
    finally:
        topology.start("beat")
    assert (fan.types(), fan.close_code) == (["queued", "superseded"], 4002), topology.logs()


def test_a_daphne_killed_mid_queue_loses_nobody_their_place(topology):
    """Fans on a killed Daphne reconnect to the other one, keep their tickets, and are admitted once."""
    count = 60
    offset = 350
    event_id = topology.create_event(admit_per_minute=RATE_PER_MINUTE)

    async def scenario():
        fans = [Fan(topology, i, event_id, *topology.fans[offset + i]) for i in range(count)]
        queued = await open_all(fans, concurrency=30)
        topology.processes["web2"].kill(signal.SIGKILL)  # half the fans lose their server
        on_web2 = [i for i in range(count) if i % 2 == 1]
        await asyncio.gather(*(fans[i].until_closed(timeout=10) for i in on_web2))
        moved = [Fan(topology, 0, event_id, *topology.fans[offset + i]) for i in on_web2]  # reconnect to web1
        requeued = await open_all(moved, concurrency=30)
        for i, fan in zip(on_web2, moved, strict=True):
            fans[i] = fan
        topology.set_paused(event_id, False, server=0)
        await asyncio.gather(*(fan.until_closed(timeout=60) for fan in fans))
        return fans, queued, requeued, on_web2

    try:
        fans, queued, requeued, on_web2 = asyncio.run(scenario())
    finally:
        wait_http(f"{topology.base(1)}/readyz", timeout=40, process=topology.start("web2"))
    lost_places = sum(q["ticket"] != queued[i]["ticket"] for i, q in zip(on_web2, requeued, strict=True))
    assert lost_places == 0
    per_fan = Counter(len(fan.of_type("admitted")) for fan in fans)
    assert per_fan == Counter({1: count}), f"{per_fan}\n{topology.logs()}"
    rows = ledger(topology, event_id)
    assert len(rows) == count and len({row[0] for row in rows}) == count
    assert [row[1] for row in rows] == sorted(q["ticket"] for q in queued)
