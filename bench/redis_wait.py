"""Benchmark: what `WAIT 1` (QMS_REDIS_WAIT_REPLICAS=1) costs a join, on a local master + replica + sentinels.

Joins through the store as production builds it (Sentinel client), without and with WAIT, one client in
sequence (latency) and 16 threads at once (throughput); a tick's admit + confirm likewise. Results in
docs/RELIABILITY.md, "Failover".

    .venv/bin/python bench/redis_wait.py [--joins 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qms_project import redis_config  # noqa: E402
from queues.store import build_store  # noqa: E402
from tests.e2e.redis_nodes import MASTER_NAME, sentinel_group  # noqa: E402

THREADS = 16


def store_for(group, wait_replicas: int, prefix: str):
    location = redis_config.RedisLocation(
        sentinels=tuple(("127.0.0.1", group.ports[name]) for name in ("sentinel1", "sentinel2", "sentinel3")),
        master=MASTER_NAME)
    return build_store({"BACKEND": "queues.store.redis.RedisQueueStore", "PREFIX": prefix,
                        **redis_config.store_options(location, cluster_url="", wait_replicas=wait_replicas,
                                                     wait_timeout_ms=1000)})


def measure(store, joins: int, users: count) -> dict:
    event = next(users)
    started = time.perf_counter()
    for _ in range(joins):
        store.join(event, next(users), prequeue_key=None, now=1.0)
    sequential = (time.perf_counter() - started) / joins
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(lambda user: store.join(event, user, prequeue_key=None, now=1.0),
                      [next(users) for _ in range(joins)]))
    concurrent = joins / (time.perf_counter() - started)
    started = time.perf_counter()
    ticks = 200
    for second in range(ticks):
        batch = store.admit_batch(event, limit=10, rate_per_second=10.0, burst=10.0, now=2.0 + second,
                                  abandon_before=0.0)
        store.confirm_admitted(event, [fan.user_id for fan in batch.admitted])
    tick = (time.perf_counter() - started) / ticks
    return {"join_us": sequential * 1e6, "joins_per_s_16_threads": concurrent, "tick_store_us": tick * 1e6}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    users = count(1)
    results: dict[int, list[dict]] = {0: [], 1: []}
    with tempfile.TemporaryDirectory() as directory, sentinel_group(Path(directory)) as group:
        stores = {mode: store_for(group, mode, f"bench-wait-{mode}") for mode in (0, 1)}
        for _ in range(args.repeat):
            for mode in (0, 1):  # interleaved: both modes see the same machine
                results[mode].append(measure(stores[mode], args.joins, users))
    summary = {f"wait_{mode}": {key: round(statistics.median(run[key] for run in runs), 1) for key in runs[0]}
               for mode, runs in results.items()}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
