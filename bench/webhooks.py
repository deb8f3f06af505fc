"""Benchmark: does a bad webhook receiver slow admission? Tick → JWT time with no webhook, with a healthy receiver
(what the outbox itself costs), with one that sleeps 10 s before answering, and with one that answers 500 to
everything; the scenarios interleaved, repeated.

Two shapes. `--shape embedded` (the default, as `make run` runs): one process, its own SQLite file and the memory
store, ticks in the main thread, the embedded delivery loop (`queues.realtime.loop.run_webhook_loop`, the very
coroutine the server runs) in a thread beside it. `--shape separate` (production's split): the deliveries in a
process of their own running what the Celery task runs (`delivery.run` every second), against the database in
`DATABASE_URL` (PostgreSQL); the ticks in this process. Each tick admits `--batch` fans (an operator's "admit N
now": the ledger rows, one ES256 token each, and the outbox rows, in one transaction); its duration is the time
from the tick's start to the fans' JWTs existing. The publish to sockets is left out (the same either way).
Each scenario starts with a new endpoint (its breaker closed), so the failing receiver's first failures count.

    .venv/bin/python bench/webhooks.py [--ticks 30] [--batch 50] [--repeats 3]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/qms_bench_webhooks \\
        .venv/bin/python bench/webhooks.py --shape separate
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
SEPARATE = "--shape" in sys.argv and sys.argv[sys.argv.index("--shape") + 1] == "separate"
if not SEPARATE and "--delivery-worker" not in sys.argv:
    os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp(prefix='qms-bench-webhooks-')) / 'bench.sqlite3'}"
os.environ.pop("QMS_REDIS_URL", None)
os.environ["QMS_WEBHOOK_ALLOWED_HOSTS"] = "127.0.0.1"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.utils import timezone  # noqa: E402

from events.models import Event  # noqa: E402
from queues import admission  # noqa: E402
from queues.models import WebhookDelivery, WebhookEndpoint  # noqa: E402
from queues.realtime.loop import run_webhook_loop  # noqa: E402
from queues.webhooks import delivery, outbox  # noqa: E402
from tests.sites import WebhookReceiver  # noqa: E402

SECRET = "whsec-bench-0123456789"


class EmbeddedDeliveries:
    """The server's delivery loop, on an event loop in a thread of this process."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._until_stopped(),), daemon=True)
        self.thread.start()

    async def _until_stopped(self) -> None:
        task = asyncio.create_task(run_webhook_loop())
        while not self.stop.is_set():
            await asyncio.sleep(0.1)
        task.cancel()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


class SeparateDeliveries:
    """What Celery beat and a worker do, in a process of its own: `delivery.run` started every second."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--delivery-worker"], env=os.environ.copy())

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def delivery_worker() -> None:
    while True:
        delivery.run(20.0)
        time.sleep(1.0)


def scenario(name: str, receiver: WebhookReceiver | None, ticks: int, batch: int) -> dict:
    """Tick durations (ms) for one receiver (None: no endpoint at all)."""
    WebhookEndpoint.objects.all().delete()
    if receiver is not None:
        WebhookEndpoint.objects.create(url=receiver.url, secret=SECRET)
    outbox.forget_process_state()
    event = Event.objects.create(name=f"bench {name}", reservation_url="https://tickets.example/r",
                                 sale_starts_at=timezone.now(), paused=True, admit_per_minute=60,
                                 max_active=10_000_000)
    users = get_user_model()
    prefix = f"{name}-{event.id}-"
    users.objects.bulk_create([users(username=f"{prefix}{i}") for i in range(ticks * batch)])
    for user in users.objects.filter(username__startswith=prefix):
        admission.join(event, user)
    deliveries = SeparateDeliveries() if SEPARATE else EmbeddedDeliveries()
    durations = []
    try:
        for _ in range(ticks):
            started = time.perf_counter()
            result = admission.tick(event, extra=batch, publish=False)
            durations.append((time.perf_counter() - started) * 1000)
            assert len(result.admitted) == batch, len(result.admitted)
            time.sleep(0.25)  # the worker sends meanwhile, as between real ticks
    finally:
        deliveries.close()
    rows = WebhookDelivery.objects.filter(event=event)
    return {"name": name, "median": statistics.median(durations), "rows": rows.count(),
            "attempts": sum(rows.values_list("attempts", flat=True)),
            "delivered": rows.filter(status="delivered").count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shape", choices=["embedded", "separate"], default="embedded")
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    receivers = {"none": None, "answers200": WebhookReceiver(SECRET), "sleeps10s": WebhookReceiver(SECRET, sleep=10),
                 "answers500": WebhookReceiver(SECRET, status=500)}
    results: dict[str, list[dict]] = {name: [] for name in receivers}
    names = list(receivers)
    for repeat in range(options.repeats):
        # Interleaved (a slow spell of the machine hits all of them), each repeat starting one further along (the
        # tables grow as scenarios run: no receiver always runs on the largest).
        for name in names[repeat % len(names):] + names[:repeat % len(names)]:
            results[name].append(scenario(name, receivers[name], options.ticks, options.batch))
    base = statistics.median(r["median"] for r in results["none"])
    database = django.db.connection.vendor
    print(f"{options.repeats} x {options.ticks} ticks of {options.batch} admissions each, shape {options.shape} "
          f"({database}, memory store)")
    print("receiver     tick medians (per repeat)      median   ratio  attempts/repeat  delivered/rows")
    for name, runs in results.items():
        median = statistics.median(r["median"] for r in runs)
        medians = " / ".join(f"{r['median']:5.1f}" for r in runs)
        attempts = " / ".join(str(r["attempts"]) for r in runs)
        delivered = " / ".join(f"{r['delivered']}/{r['rows']}" for r in runs)
        print(f"{name:<12} {medians:<30} {median:6.1f} ms {median / base:5.2f}x  {attempts:<15}  {delivered}")

if __name__ == "__main__":
    delivery_worker() if "--delivery-worker" in sys.argv else main()
