"""Benchmark: queue store cost with 1,000 vs 1,000,000 waiting, on the real Redis.

Measures, for each queue size: joins per second (one client, one round trip
each), one position lookup, and one tick's store work (admit a batch of 10 +
confirm). The 1,000-waiting queue is the baseline; a raw Redis PING is
measured in the same run as the floor of one round trip.

    .venv/bin/python bench/store_scale.py [--sizes 1000 1000000] [--samples 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queues.store.base import new_place_id  # noqa: E402
from queues.store.redis import RedisQueueStore  # noqa: E402

EVENT = 1


def fill(store: RedisQueueStore, size: int) -> None:
    """Queue `size` fans through the real join script, pipelined 5,000 at a time."""
    keys = store.keys(EVENT)
    for start in range(0, size, 5000):
        pipe = store.client.pipeline(transaction=False)
        for user in range(start + 1, min(size, start + 5000) + 1):
            store._join(keys=keys, args=[user, "", new_place_id()], client=pipe)
        pipe.execute()


def timed(fn, samples: int) -> list[float]:
    out = []
    for _ in range(samples):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def micro(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "median_us": round(statistics.median(values) * 1e6, 1),
        "p99_us": round(values[int(len(values) * 0.99) - 1] * 1e6, 1),
    }


def measure(url: str, size: int, samples: int) -> dict:
    store = RedisQueueStore(url=url, prefix=f"qms-bench-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        fill(store, size)
        fill_seconds = time.perf_counter() - started
        rng = random.Random(size)
        next_user = iter(range(size + 1, size + 20 * samples))
        joins = timed(lambda: store.join(EVENT, next(next_user), prequeue_key=None, now=time.time()), samples)
        for _ in range(samples):  # back to the size under test
            store.leave(EVENT, size + samples - _)
        positions = timed(lambda: store.place(EVENT, rng.randint(1, size)), samples)

        ticks = []
        for _ in range(samples // 4):
            for _ in range(10):  # untimed: keep the queue at its size
                store.join(EVENT, next(next_user), prequeue_key=None, now=time.time())
            started = time.perf_counter()
            batch = store.admit_batch(EVENT, limit=10, rate_per_second=1e6, burst=1e6, now=time.time(),
                                      abandon_before=0)
            store.confirm_admitted(EVENT, [p.user_id for p in batch.admitted])
            ticks.append(time.perf_counter() - started)
            assert len(batch.admitted) == 10
        return {
            "waiting": size,
            "fill_seconds": round(fill_seconds, 2),
            "join": micro(joins),
            "joins_per_second": round(1 / statistics.median(joins)),
            "position": micro(positions),
            "tick_admit_10": micro(ticks),
            "used_memory_mb": round(store.client.info("memory")["used_memory"] / 2**20, 1),
        }
    finally:
        for key in store.keys(EVENT):
            store.client.delete(key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("QMS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 1_000_000])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; medians over runs are reported")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "store_scale.json"))
    args = parser.parse_args()

    probe = RedisQueueStore(url=args.url)
    ping = micro(timed(probe.client.ping, args.samples))
    results = {"ping": ping, "runs": [], "sizes": []}
    for _ in range(args.repeat):  # interleaved, so drift on a noisy machine hits every size alike
        results["runs"].append([measure(args.url, size, args.samples) for size in args.sizes])
    for i, size in enumerate(args.sizes):
        runs = [run[i] for run in results["runs"]]
        results["sizes"].append({
            "waiting": size,
            **{name: {"median_us": round(statistics.median(r[name]["median_us"] for r in runs), 1)}
               for name in ("join", "position", "tick_admit_10")},
            "joins_per_second": round(statistics.median(r["joins_per_second"] for r in runs)),
            "used_memory_mb": max(r["used_memory_mb"] for r in runs),
        })
    base = results["sizes"][0]
    print(f"Redis PING round trip: median {ping['median_us']} us")
    print("| waiting | join median (us) | joins/s | position median (us) | tick (admit 10) median (us) |")
    print("|---:|---:|---:|---:|---:|")
    for row in results["sizes"]:
        print(f"| {row['waiting']:,} | {row['join']['median_us']} | {row['joins_per_second']:,} | "
              f"{row['position']['median_us']} | {row['tick_admit_10']['median_us']} |")
    for row in results["sizes"][1:]:
        ratios = {name: round(row[name]["median_us"] / base[name]["median_us"], 2)
                  for name in ("join", "position", "tick_admit_10")}
        row["ratio_to_smallest"] = ratios
        print(f"ratio {row['waiting']:,} / {base['waiting']:,}: {ratios}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
