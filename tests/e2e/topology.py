"""The production topology as real processes: PostgreSQL, Redis, the Procfile's Daphnes, worker and beat."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from queues.tokens import generate_private_pem
from tests.services import ADMIN_DSN, REDIS_URL, RUN_ID, postgres_dsn, postgres_port, require_service

from .servers import ROOT, Process, base_env, free_ports, http_json, manage, wait_http

# Broker, store and channel layer: the run's Redis (QMS_TEST_REDIS_URL). Every key and the Celery queue
# carry the topology's own prefix, and its database its own name, so two test runs at once do not meet.
REDIS_DB_URL = REDIS_URL

SEED = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
User = get_user_model()
staff = User.objects.create_user("operator", password="operator-pw-1", is_staff=True)
User.objects.bulk_create([User(username=f"fan{i:05d}") for i in range(FAN_COUNT)])
fans = User.objects.filter(username__startswith="fan").order_by("username")
print(json.dumps({"staff": str(AccessToken.for_user(staff)),
                  "fans": [[u.id, str(AccessToken.for_user(u))] for u in fans]}))
"""


def require_postgres_and_redis() -> None:
    """The topology's services answer; in CI a missing one fails the test (never skips)."""
    try:
        psycopg.connect(ADMIN_DSN, connect_timeout=3).close()
        redis.Redis.from_url(REDIS_DB_URL, socket_connect_timeout=3).ping()
    except (psycopg.Error, redis.RedisError) as exc:
        require_service("PostgreSQL and Redis", exc)


def procfile_commands() -> dict[str, str]:
    commands = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.strip()
    return commands


@dataclass
class Topology:
    env: dict
    ports: list[int]
    log_dir: Path
    database_url: str
    staff_token: str
    fans: list[tuple[int, str]]  # (user id, access token)
    name: str = ""
    processes: dict[str, Process] = field(default_factory=dict)
    restarts: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, command_name: str | None = None) -> Process:
        command = procfile_commands()[command_name or name]
        self.processes[name] = Process(name, ["bash", "-c", command], self.env, self.log_dir)
        return self.processes[name]

    def supervise(self, *names: str, interval: float = 0.5) -> threading.Event:
        """Restart these processes when they exit, as systemd's Restart=always does; set the event to stop."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(interval):
                for name in names:
                    if self.processes[name].proc.poll() is not None:
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        self.start(name)

        threading.Thread(target=watch, daemon=True).start()
        return stop

    def base(self, index: int = 0) -> str:
        return f"http://127.0.0.1:{self.ports[index % len(self.ports)]}"

    def ws(self, index: int, event_id: int, token: str) -> str:
        return f"ws://127.0.0.1:{self.ports[index % len(self.ports)]}/ws/events/{event_id}/queue/?token={token}"

    def create_event(self, **fields) -> int:
        """A new event over the staff API (paused, sale open, large max_active unless told otherwise)."""
        body = {"name": f"E2E {time.monotonic_ns()}", "reservation_url": "https://tickets.example/reserve",
                "sale_starts_at": datetime.now(UTC).isoformat(), "paused": True, "max_active": 100000, **fields}
        status, event = http_json("POST", f"{self.base()}/api/events/", body, self.staff_token)
        assert status == 201, event
        return event["id"]

    def set_paused(self, event_id: int, paused: bool, server: int = 1) -> None:
        status, body = http_json("PATCH", f"{self.base(server)}/api/events/{event_id}/", {"paused": paused},
                                 self.staff_token)
        assert status == 200, body

    def sql(self, query: str, *params) -> list[tuple]:
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(query, params).fetchall()

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{proc.log()[-4000:]}" for name, proc in self.processes.items())

    def stop(self) -> None:
        for proc in self.processes.values():
            proc.stop()


def start_topology(tmp: Path, fans: int, *, database_port: int | None = None, redis_url: str = REDIS_DB_URL,
                   processes: tuple[str, ...] = ("web1", "web2", "worker", "beat"), **env: str) -> Topology:
    """Create a database, seed `fans` fans and start `processes` (the Procfile's lines) with production's settings.

    `database_port` and `redis_url` let fault tests put a proxy or a Redis of their own in between; `env`
    adds settings (QMS_LOG_FORMAT=json, ...): a Sentinel group instead of a URL is `redis_url=""` with
    QMS_REDIS_SENTINELS and QMS_REDIS_SENTINEL_MASTER.
    """
    name = f"qms_e2e_{RUN_ID}_{uuid.uuid4().hex[:8]}"[:63]  # PostgreSQL's identifier limit
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    key_file = tmp / "signing-key.pem"
    key_file.write_text(generate_private_pem())
    ports = free_ports(2)
    database_url = postgres_dsn(name)
    env = base_env(
        DATABASE_URL=postgres_dsn(name, port=database_port or postgres_port()), QMS_REDIS_URL=redis_url,
        QMS_KEY_PREFIX=f"qms-e2e-{name}",
        QMS_SIGNING_KEY_FILE=str(key_file), QMS_WEB1_PORT=str(ports[0]), QMS_WEB2_PORT=str(ports[1]),
        QMS_BEAT_SCHEDULE_FILE=str(tmp / "celerybeat-schedule"),
        PROMETHEUS_MULTIPROC_DIR=str(tmp / "prometheus"),
        DATABASE_POOL="1",  # as in production, whatever the test run's own setting
        **env,
    )
    (tmp / "prometheus").mkdir(exist_ok=True)
    topology = Topology(env, ports, tmp, database_url, "", [], name=name)
    try:
        manage("migrate", "--noinput", "-v0", env=env)
        seeded = json.loads(manage("shell", "-c", SEED.replace("FAN_COUNT", str(fans)), env=env).splitlines()[-1])
        topology.staff_token, topology.fans = seeded["staff"], [tuple(fan) for fan in seeded["fans"]]
        for process in processes:
            topology.start(process)
        for index in range(2):
            if f"web{index + 1}" in processes:  # a test may start its web processes later (test_nginx_routing)
                wait_http(f"{topology.base(index)}/readyz", timeout=40, process=topology.processes[f"web{index + 1}"])
    except Exception:
        stop_topology(topology)
        raise
    return topology


def stop_topology(topology: Topology) -> None:
    topology.stop()
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {topology.name} WITH (FORCE)")
    if not topology.env["QMS_REDIS_URL"]:
        return  # a Sentinel group of the test's own, killed with its keys
    try:
        client = redis.Redis.from_url(topology.env["QMS_REDIS_URL"], socket_connect_timeout=2)
        prefix = topology.env["QMS_KEY_PREFIX"]
        for pattern in (f"{prefix}*", f"_kombu.binding.{prefix}*"):  # kombu names its bindings by queue
            for key in client.scan_iter(pattern, count=1000):
                client.delete(key)
    except redis.ConnectionError:
        pass  # a fault test's own Redis, already gone


def tick_batches(issued: list) -> list[tuple[float, int]]:
    """(seconds after the first, fans) per tick: a tick's rows are milliseconds apart, ticks about a second."""
    batches: list[tuple[float, int]] = []
    last = None
    for at in issued:
        if last is None or (at - last).total_seconds() > 0.4:
            batches.append(((at - issued[0]).total_seconds(), 0))
        batches[-1] = (batches[-1][0], batches[-1][1] + 1)
        last = at
    return batches


class Fan:
    """One fan's socket: connect, read `queued`, then everything until the server closes it."""

    def __init__(self, topology, index: int, event_id: int, user_id: int, token: str, server: int | None = None):
        self.url = topology.ws(index if server is None else server, event_id, token)
        self.user_id = user_id
        self.messages: list[dict] = []
        self.close_code: int | None = None
        self.ws = None

    async def open(self) -> dict:
        self.ws = await connect(self.url, proxy=None, compression=None, open_timeout=30, max_queue=None)
        return await self.next()

    async def next(self, timeout: float = 30) -> dict:
        """The next frame; TimeoutError if none comes within `timeout` seconds."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            raise TimeoutError(f"fan {self.user_id}: no frame within {timeout}s after {self.types()}") from None
        message = json.loads(raw)
        message["received_at"] = time.time()
        self.messages.append(message)
        return message

    async def next_of(self, kind: str, timeout: float) -> dict:
        """The next frame of this kind, skipping others; TimeoutError if none comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while (message := await self.next(max(0.0, deadline - time.monotonic())))["type"] != kind:
            pass
        return message

    async def until_closed(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                while True:
                    await self.next(timeout)
        except (ConnectionClosed, TimeoutError):
            pass  # a timeout shows as a missing `admitted` and close code in the assertions
        self.close_code = self.ws.close_code

    def types(self) -> list[str]:
        """The kinds of frames received so far, `progress` left out."""
        return [m["type"] for m in self.messages if m["type"] != "progress"]

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.messages if m["type"] == kind]


async def open_all(fans: list[Fan], concurrency: int) -> list[dict]:
    gate = asyncio.Semaphore(concurrency)

    async def one(fan: Fan) -> dict:
        async with gate:
            return await fan.open()

    return await asyncio.gather(*(one(fan) for fan in fans))
