"""Benchmark: progress broadcast cost per tick, one event group message vs one message per fan.

On the real channels_redis (configured as in production settings), N waiting
sockets spread over 2 server processes (2 channel layer instances, as 2 Daphne
processes have) join the event group and their own fan group. Measured per
tick: the design's ONE `group_send` to `event.<id>`, and the baseline of one
`group_send` per fan. Reported: wall time, client round trips (counted on the
redis-py client), and Redis commands executed (INFO commandstats delta).

    .venv/bin/python bench/broadcast.py [--sizes 1000 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import redis
import redis.asyncio.client as aioredis_client
from channels_redis.core import RedisChannelLayer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROGRESS = {"type": "queue.progress", "message": {"type": "progress", "event": 1, "serving": 1234, "waiting": 8766,
                                                   "rate_per_minute": 3000.0, "paused": False, "sale_open": True,
                                                   "at": 1764000000.0}}


class RoundTrips:
    """Counts client round trips on redis-py's asyncio client (a command, or a whole pipeline)."""

    count = 0

    @classmethod
    def install(cls) -> None:
        single = aioredis_client.Redis.execute_command
        pipeline = aioredis_client.Pipeline.execute

        async def counted_command(self, *args, **kwargs):
            cls.count += 1
            return await single(self, *args, **kwargs)

        async def counted_pipeline(self, *args, **kwargs):
            cls.count += 1
            return await pipeline(self, *args, **kwargs)

        aioredis_client.Redis.execute_command = counted_command
        aioredis_client.Pipeline.execute = counted_pipeline


def commands_executed(client: redis.Redis) -> int:
    return sum(stat["calls"] for stat in client.info("commandstats").values())


def layer(url: str, prefix: str) -> RedisChannelLayer:
    return RedisChannelLayer(hosts=[{"address": url, "max_connections": 200, "socket_timeout": None}],
                             prefix=prefix, capacity=1_000_000, expiry=60)


async def measure(url: str, size: int, repeat: int) -> dict:
    prefix = f"qms-bench-{uuid.uuid4().hex[:8]}:asgi"
    processes = [layer(url, prefix), layer(url, prefix)]
    sync_client = redis.Redis.from_url(url)
    fans = []
    for i in range(size):
        server = processes[i % 2]
        channel = await server.new_channel()
        await server.group_add("event.1", channel)
        await server.group_add(f"fan.1.{i}", channel)
        fans.append(channel)
    sender = layer(url, prefix)  # the Celery worker's layer

    async def one_broadcast():
        await sender.group_send("event.1", PROGRESS)

    async def per_fan():
        for i in range(size):
            await sender.group_send(f"fan.1.{i}", PROGRESS)

    results = {}
    plans = (("event_group", one_broadcast, repeat), ("per_fan_baseline", per_fan, max(1, repeat // 2)))
    for name, work, runs in plans:
        walls, trips, commands = [], [], []
        for _ in range(runs):
            RoundTrips.count = 0
            before = commands_executed(sync_client)
            started = time.perf_counter()
            await work()
            walls.append(time.perf_counter() - started)
            trips.append(RoundTrips.count)
            commands.append(commands_executed(sync_client) - before - 1)  # minus the INFO itself
            for key in sync_client.scan_iter(f"{prefix}specific*", count=1000):  # drain delivered messages
                sync_client.delete(key)
        results[name] = {"wall_ms": round(statistics.median(walls) * 1000, 2),
                         "round_trips": int(statistics.median(trips)),
                         "redis_commands": int(statistics.median(commands))}
    await sender.flush()
    for process in processes + [sender]:
        await process.close_pools()
    results["ratio_wall"] = round(results["per_fan_baseline"]["wall_ms"] / results["event_group"]["wall_ms"], 1)
    results["ratio_commands"] = round(
        results["per_fan_baseline"]["redis_commands"] / max(1, results["event_group"]["redis_commands"]), 1)
    return {"waiting": size, **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("QMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "broadcast.json"))
    args = parser.parse_args()
    RoundTrips.install()
    rows = [asyncio.run(measure(args.url, size, args.repeat)) for size in args.sizes]
    print("| waiting | event group: wall ms | round trips | Redis commands | per fan: wall ms | round trips "
          "| Redis commands | wall ratio | commands ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        group, fan = row["event_group"], row["per_fan_baseline"]
        print(f"| {row['waiting']:,} | {group['wall_ms']} | {group['round_trips']} | {group['redis_commands']} | "
              f"{fan['wall_ms']} | {fan['round_trips']:,} | {fan['redis_commands']:,} | {row['ratio_wall']}x | "
              f"{row['ratio_commands']}x |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
