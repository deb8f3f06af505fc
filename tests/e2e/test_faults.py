"""Faults on the production topology: PostgreSQL unreachable, Redis restarted. Nobody loses a place,
no token is issued twice or without its ledger row, no admission is lost.

The counts asserted here are the ones reported in docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections import Counter

import pytest
import redis
from websockets.exceptions import WebSocketException

from .servers import Process, free_port
from .topology import Fan, open_all, require_postgres_and_redis, start_topology, stop_topology

pytestmark = pytest.mark.e2e

RATE_PER_MINUTE = 600


class TcpProxy:
    """A TCP forwarder the test can cut (every connection dropped, new ones refused) and restore."""

    def __init__(self, target_port: int):
        self.port = free_port()
        self.target_port = target_port
        self.loop = asyncio.new_event_loop()
        self.server = None
        self.writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.restore()

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_writer.close()
            return
        self.writers |= {client_writer, upstream_writer}
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def cut(self) -> None:
        async def cut():
            self.server.close()
            for writer in self.writers:
                writer.transport.abort()
            self.writers.clear()

        self._run(cut())

    def restore(self) -> None:
        async def listen():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)

        self._run(listen())

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)


def admitted_once(fans: list[Fan]) -> Counter:
    return Counter(len(fan.of_type("admitted")) for fan in fans)


def test_postgres_unreachable_ticks_fail_safe_then_resume(tmp_path):
    require_postgres_and_redis()
    proxy = TcpProxy(5432)
    topology = start_topology(tmp_path, 60, database_port=proxy.port)
    count = 60
    try:
        event_id = topology.create_event(admit_per_minute=RATE_PER_MINUTE)

        async def scenario():
            fans = [Fan(topology, i, event_id, *topology.fans[i]) for i in range(count)]
            await open_all(fans, concurrency=30)
            topology.set_paused(event_id, False)
            closers = [asyncio.ensure_future(fan.until_closed(timeout=90)) for fan in fans]
            while sum(bool(fan.of_type("admitted")) for fan in fans) < count // 3:
                await asyncio.sleep(0.05)
            proxy.cut()  # the database is gone for 5 seconds
            during = sum(bool(fan.of_type("admitted")) for fan in fans)
            await asyncio.sleep(5)
            after_outage = sum(bool(fan.of_type("admitted")) for fan in fans)
            proxy.restore()
            await asyncio.gather(*closers)
            return fans, during, after_outage

        fans, during, after_outage = asyncio.run(scenario())
        rows = topology.sql("SELECT user_id, token FROM queues_admission WHERE event_id = %s", event_id)
        worker_log = topology.processes["worker"].log()
    finally:
        stop_topology(topology)
        proxy.close()
    tokens_sent = {m["token"] for fan in fans for m in fan.of_type("admitted")}
    assert tokens_sent <= {token for _, token in rows}, "no token without its ledger row"
    counts = admitted_once(fans)
    closes = Counter(fan.close_code for fan in fans)
    assert counts == Counter({1: count}), f"{counts} {closes}\n{worker_log[-3000:]}"
    assert len(rows) == count and len({user for user, _ in rows}) == count  # issued once each
    assert after_outage - during <= 2 * RATE_PER_MINUTE / 60  # at most what was in flight: ticks stopped
    # The outage was real: ticks failed (a broken connection, or none from the pool in time), then resumed.
    assert "OperationalError" in worker_log or "PoolTimeout" in worker_log


def test_redis_restarted_with_aof_keeps_the_queue_and_every_place(tmp_path):
    require_postgres_and_redis()
    port = free_port()
    data = tmp_path / "redis"
    data.mkdir()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes",
            "--appendfsync", "always", "--save", "", "--dir", str(data)]
    server = Process("redis", argv, {}, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
    count = 40
    (tmp_path / "topology").mkdir()
    topology = start_topology(tmp_path / "topology", count, redis_url=url)
    try:
        event_id = topology.create_event(admit_per_minute=RATE_PER_MINUTE)

        async def reconnect(fan: Fan) -> dict:
            deadline = time.monotonic() + 60
            while True:
                try:
                    return await fan.open()
                except (TimeoutError, OSError, WebSocketException):
                    assert time.monotonic() < deadline, "could not reconnect"
                    await asyncio.sleep(0.5)

        # Under a supervisor, as in production: kombu's Redis transport can make the worker exit with an
        # "Unrecoverable error" when the broker connection drops (docs/RELIABILITY.md).
        supervisor = topology.supervise("worker", "beat")

        async def scenario():
            fans = [Fan(topology, i, event_id, *topology.fans[i]) for i in range(count)]
            queued = await open_all(fans, concurrency=20)
            server.kill(signal.SIGKILL)  # Redis dies; AOF (fsync always) keeps every acknowledged write
            await asyncio.sleep(1)
            restarted = Process("redis-restarted", argv, {}, tmp_path)
            for fan in fans:
                await fan.ws.close()  # each fan reconnects, as the page does after a drop
            again = []
            for i, fan in enumerate(fans):
                fresh = Fan(topology, i, event_id, fan.user_id, dict(topology.fans)[fan.user_id])
                again.append(await reconnect(fresh))
                fans[i] = fresh
            topology.set_paused(event_id, False)
            await asyncio.gather(*(fan.until_closed(timeout=60) for fan in fans))
            return fans, queued, again, restarted

        fans, queued, again, restarted = asyncio.run(scenario())
        rows = topology.sql("SELECT user_id FROM queues_admission WHERE event_id = %s", event_id)
    finally:
        supervisor.set()
        stop_topology(topology)
        server.stop()
    try:
        lost_places = sum(before["ticket"] != after["ticket"] for before, after in zip(queued, again, strict=True))
        assert lost_places == 0
        counts = admitted_once(fans)
        assert counts == Counter({1: count}), f"{counts} {topology.restarts}\n{topology.logs()}"
        assert sorted(user for (user,) in rows) == sorted(fan.user_id for fan in fans)
    finally:
        restarted.stop()
