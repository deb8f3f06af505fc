"""Prometheus metrics of the waiting room, and their `/metrics` exposition.

Counters and histograms are counted where things happen (joins and ticks in
`queues.admission`, sockets in `queues.realtime.consumer`). With
`PROMETHEUS_MULTIPROC_DIR` set, every process (Daphne, Celery worker, a
management command) writes its values to files there and `/metrics` adds them
up; without it (the embedded default) they live in this process. The queue's
current state (waiting, live admissions) is read from the store and the
ledger at scrape time, so it is the same whichever process is scraped.
"""

from __future__ import annotations

import functools
import glob
import os
import re
from collections.abc import Callable

from django.conf import settings
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .refusals import TokenRefused

if settings.PROMETHEUS_MULTIPROC_DIR:
    # prometheus_client writes a file per process and metric kind here; it must exist first.
    os.makedirs(settings.PROMETHEUS_MULTIPROC_DIR, exist_ok=True)

JOINS = Counter("qms_joins_total", "Fans who took a new ticket.", ["event"])
ADMISSIONS = Counter("qms_admissions_total", "Admission tokens issued (ledger rows written by a tick).", ["event"])
TICK_SECONDS = Histogram(
    "qms_tick_duration_seconds",
    "Duration of one event's admission tick that held the lease.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
OPEN_WEBSOCKETS = Gauge("qms_websockets_open", "Waiting-room sockets accepted and not yet closed.",
                        multiprocess_mode="livesum")
TOKENS_VERIFIED = Counter("qms_tokens_verified_total", "Admission tokens verified (offline checks and ledger).")
TOKENS_REDEEMED = Counter("qms_tokens_redeemed_total", "Admission tokens redeemed (used up).")
TOKENS_REJECTED = Counter("qms_tokens_rejected_total", "Admission tokens refused, by error code.", ["reason"])


def count_join(event_id: int) -> None:
    JOINS.labels(event=str(event_id)).inc()


def count_admissions(event_id: int, issued: int) -> None:
    if issued:
        ADMISSIONS.labels(event=str(event_id)).inc(issued)


def observe_tick(seconds: float) -> None:
    TICK_SECONDS.observe(seconds)


def counts_token_verification(verify: Callable) -> Callable:
    """Decorate `admission.verify`: count what it verified, redeemed, or refused and why."""
    @functools.wraps(verify)
    def counted(token, *, redeem: bool, **options):
        try:
            result = verify(token, redeem=redeem, **options)
        except TokenRefused as refused:
            TOKENS_REJECTED.labels(reason=refused.code).inc()
            raise
        TOKENS_VERIFIED.inc()
        if redeem:
            TOKENS_REDEEMED.inc()
        return result

    return counted


class QueueStateCollector(Collector):
    """Waiting fans and live admissions per event, read from the store and the ledger when scraped."""

    def collect(self):
        from django.db.models import Count

        from events.models import Event

        from .models import Admission
        from .store import get_store

        waiting = GaugeMetricFamily("qms_waiting", "Fans waiting in the queue.", labels=["event"])
        live = GaugeMetricFamily("qms_live_admissions",
                                 "Admissions issued, not expired and not released (hold a max_active slot).",
                                 labels=["event"])
        live_by_event = dict(Admission.objects.live().values_list("event").annotate(count=Count("id")))
        store = get_store()
        for event_id in Event.objects.values_list("id", flat=True).order_by("id"):
            waiting.add_metric([str(event_id)], store.snapshot(event_id).waiting)
            live.add_metric([str(event_id)], live_by_event.get(event_id, 0))
        yield waiting
        yield live


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db$")


def _forget_dead_processes(path: str) -> None:
    """Drop live gauges of processes that are gone (a killed Daphne leaves its open-socket count behind)."""
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.search(name)
        if match and not _process_alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), path)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exposition() -> tuple[bytes, str]:
    """The metrics page: every process's counters (when multiprocess) plus the queue state now."""
    registry = CollectorRegistry()
    path = settings.PROMETHEUS_MULTIPROC_DIR
    if path:
        _forget_dead_processes(path)
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(REGISTRY)  # this process's metrics, plus its process_* and python_* ones
    registry.register(QueueStateCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
