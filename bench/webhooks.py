"""Benchmark: does a bad webhook receiver slow admission? Tick → JWT time with no webhook, with a receiver that
sleeps 10 s before answering, and with one that answers 500 to everything.

One process, as the embedded default runs: its own SQLite file and the memory store, ticks in the main thread,
the delivery worker (`queues.webhooks.delivery.run`, what the embedded loop and the Celery task call) in a
thread beside it, sending to a local receiver (tests/sites.py). Each tick admits `--batch` fans (an operator's
"admit N now": the ledger rows, one ES256 token each, and the outbox rows, in one transaction); its duration is
the time from the tick's start to the fans' JWTs existing. The publish to sockets is left out (the same with or
without webhooks).

    .venv/bin/python bench/webhooks.py [--ticks 40] [--batch 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_DB = Path(tempfile.mkdtemp(prefix="qms-bench-webhooks-")) / "bench.sqlite3"
os.environ["DATABASE_URL"] = f"sqlite:///{_DB}"
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
from queues.webhooks import delivery, outbox  # noqa: E402
from tests.sites import WebhookReceiver  # noqa: E402

SECRET = "whsec-bench-0123456789"


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
    users.objects.bulk_create([users(username=f"{name}-{i}") for i in range(ticks * batch)])
    for user in users.objects.filter(username__startswith=f"{name}-"):
        admission.join(event, user)
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [delivery.deliver_due(1.0, stop) or time.sleep(0.2)
                                              for _ in iter(stop.is_set, True)], daemon=True)
    worker.start()
    durations = []
    for _ in range(ticks):
        started = time.perf_counter()
        result = admission.tick(event, extra=batch, publish=False)
        durations.append((time.perf_counter() - started) * 1000)
        assert len(result.admitted) == batch, len(result.admitted)
        time.sleep(0.25)  # the worker sends meanwhile, as between real ticks
    stop.set()
    worker.join(30)
    rows = WebhookDelivery.objects.filter(event=event)
    return {"name": name, "median": statistics.median(durations),
            "p90": statistics.quantiles(durations, n=10)[-1], "rows": rows.count(),
            "attempts": sum(rows.values_list("attempts", flat=True)),
            "delivered": rows.filter(status="delivered").count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50)
    options = parser.parse_args()
    call_command("migrate", verbosity=0)
    slow, failing = WebhookReceiver(SECRET, sleep=10), WebhookReceiver(SECRET, status=500)
    results = [scenario("none", None, options.ticks, options.batch),
               scenario("sleeps10s", slow, options.ticks, options.batch),
               scenario("answers500", failing, options.ticks, options.batch)]
    base = results[0]["median"]
    print(f"{options.ticks} ticks of {options.batch} admissions each (SQLite, memory store, one process)")
    print("receiver     tick median  p90      ratio  outbox rows  attempts  delivered")
    for r in results:
        print(f"{r['name']:<12} {r['median']:8.1f} ms {r['p90']:6.1f} ms {r['median'] / base:5.2f}x"
              f"  {r['rows']:11d}  {r['attempts']:8d}  {r['delivered']:9d}")


if __name__ == "__main__":
    main()
