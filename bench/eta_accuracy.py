"""Benchmark: the wait a fan is told at join (ETA) against the wait they had, before and after the ETA fix.

Drives the memory store with a simulated clock (one tick a second, as the
embedded loop and Celery beat run) and the service's ETA (`admission.eta_seconds`):
at the opening a crowd is already waiting, then fans keep arriving (Poisson,
1.5x the admission rate) for two minutes. Each fan's ETA is taken when their
place is first known (the opening for the crowd, the join for later fans);
their actual wait ends at the tick that pops them. "before" is the formula
this replaced: position / (observed rate if above 0.01/s, else the configured).

    .venv/bin/python bench/eta_accuracy.py [--rates 6 60 600] [--crowd 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import django  # noqa: E402

django.setup()

from events.models import Event, QueueingMethod  # noqa: E402
from queues import admission  # noqa: E402
from queues.store.memory import MemoryQueueStore  # noqa: E402

EVENT = 1


def eta_before(event: Event, position: int, observed_rate: float) -> int:
    """The estimate before the fix (observed rate from 0, no bucket)."""
    rate = observed_rate if observed_rate > 0.01 else admission.configured_rate(event)
    return max(1, math.ceil(position / rate))


def run(per_minute: int, crowd: int, seed: int) -> dict[str, list[float]]:
    event = Event(admit_per_minute=per_minute, queue_enabled=True, queueing_method=QueueingMethod.FIFO)
    store, rng = MemoryQueueStore(), random.Random(seed)
    rate = admission.configured_rate(event)
    told: dict[int, tuple[float, int, int]] = {}  # user -> (when told, eta before, eta after)
    errors: dict[str, list[float]] = {"before": [], "after": []}

    def join(user: int, now: float) -> None:
        place = store.join(EVENT, user, prequeue_key=None, now=now)
        told[user] = (now, eta_before(event, place.position, place.observed_rate),
                      admission.eta_seconds(event, place.position, place))

    for user in range(crowd):  # the crowd at the opening: told at t=0, before the first tick
        join(user, 0.0)
    next_user, arrival, now = crowd, rng.expovariate(1.5 * rate), 0.0
    while now < 120 or store.snapshot(EVENT).waiting:
        while arrival <= now and arrival < 120:
            join(next_user, arrival)
            next_user, arrival = next_user + 1, arrival + rng.expovariate(1.5 * rate)
        batch = store.admit_batch(EVENT, limit=10**9, rate_per_second=rate, burst=admission.rate_burst(event),
                                  now=now, abandon_before=-1.0)
        for fan in batch.admitted:
            at, before, after = told.pop(fan.user_id)
            waited = max(1.0, now - at)
            errors["before"].append(abs(before - waited) / waited)
            errors["after"].append(abs(after - waited) / waited)
        now += 1.0
    return errors


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, nargs="+", default=[6, 60, 600], help="admissions per minute")
    parser.add_argument("--crowd", type=int, default=20, help="fans waiting at the opening")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("| admit/min | fans | median rel. error before | p90 before | median after | p90 after |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for per_minute in args.rates:
        errors = run(per_minute, args.crowd, args.seed)
        print(f"| {per_minute} | {len(errors['after'])} | {statistics.median(errors['before']):.2f} | "
              f"{p90(errors['before']):.2f} | {statistics.median(errors['after']):.2f} | "
              f"{p90(errors['after']):.2f} |")


if __name__ == "__main__":
    main()
