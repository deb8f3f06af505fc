"""Benchmark: tick decision -> JWT on the fan's socket, on the production topology.

Starts the Procfile's processes (2 Daphne, a Celery worker, beat) on PostgreSQL
and Redis, connects N fans over real WebSockets (half on each Daphne), opens
admission at the given rate and records, per fan, the time from the ledger
row's `issued_at` (the tick's decision) to the `admitted` message arriving.
Baseline in the same run: a `ping` -> `pong` round trip on the same sockets.

    .venv/bin/python bench/admission_latency.py [--fans 1000] [--rate 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import django  # noqa: E402

django.setup()

from tests.e2e.topology import Fan, open_all, start_topology, stop_topology  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


async def ping_rtts(fans: list[Fan]) -> list[float]:
    async def one(fan: Fan) -> float:
        started = time.time()
        await fan.ws.send('{"type": "ping"}')
        while (await fan.next())["type"] != "pong":
            pass
        return time.time() - started

    return await asyncio.gather(*(one(fan) for fan in fans))


def run(fans_count: int, rate: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        topology = start_topology(Path(tmp), fans_count)
        try:
            event_id = topology.create_event(admit_per_minute=rate)

            async def scenario():
                fans = [Fan(topology, i, event_id, *topology.fans[i]) for i in range(fans_count)]
                await open_all(fans, concurrency=200)
                rtts = await ping_rtts(fans)
                topology.set_paused(event_id, False)
                started = time.time()
                await asyncio.gather(*(fan.until_closed(timeout=fans_count / rate * 60 + 60) for fan in fans))
                return fans, rtts, time.time() - started

            fans, rtts, elapsed = asyncio.run(scenario())
        finally:
            stop_topology(topology)
    admitted = [fan.of_type("admitted")[0] for fan in fans if fan.of_type("admitted")]
    latencies = [m["received_at"] - m["issued_at"] for m in admitted]
    return {
        "fans": fans_count, "rate_per_minute": rate, "admitted": len(admitted), "elapsed_s": round(elapsed, 1),
        "observed_rate_per_minute": round(len(admitted) / elapsed * 60),
        "tick_to_jwt_ms": {"p50": round(percentile(latencies, 0.5) * 1000, 1),
                           "p99": round(percentile(latencies, 0.99) * 1000, 1),
                           "max": round(max(latencies) * 1000, 1)},
        "baseline_ping_pong_ms": {"p50": round(statistics.median(rtts) * 1000, 1),
                                  "p99": round(percentile(rtts, 0.99) * 1000, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fans", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=3000, help="admit_per_minute")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "admission_latency.json"))
    args = parser.parse_args()
    runs = [run(args.fans, args.rate) for _ in range(args.repeat)]
    for result in runs:
        print(json.dumps(result))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
