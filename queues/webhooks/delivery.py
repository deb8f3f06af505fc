"""The delivery worker: sends the outbox's due rows, many at once, and schedules retries.

At least once: a row is claimed for a while (`CLAIM_SECONDS`, longer than one exchange can take), sent,
then marked delivered (2xx) or given its next attempt after an exponential backoff with jitter, until its
`retry_until` (24 h by default) has passed: then it is failed. Up to `QMS_WEBHOOK_CONCURRENCY` exchanges run
at once, at most `QMS_WEBHOOK_PER_ENDPOINT` of them to one endpoint, so a slow receiver holds a few threads,
never the others' deliveries. Runs in a Celery task (queues/tasks.py) or the embedded server's loop
(queues/realtime/loop.py); never on a request or a tick.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from ..models import WebhookDelivery, WebhookDeliveryStatus, retry_deadline
from . import outbox, signing, transport
from .addresses import AddressRefused, resolve

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 3600.0
POLL_SECONDS = 0.2  # how often a running worker looks for newly due rows
TURN_KEY = "qms:webhooks:delivering"  # in the shared cache: one delivery run at a time per deployment
SWEEP_KEY = "qms:webhooks:swept"
SWEEP_SECONDS = 10  # admission.expired is looked for at most this often


def claim_seconds() -> float:
    """How long a claimed row is left alone: one whole exchange and then some."""
    return settings.QMS_WEBHOOK_TIMEOUT + 20


def backoff_seconds(failures: int, rng: random.Random | None = None) -> float:
    """The wait after the `failures`-th failed attempt: 1 s doubling up to 1 h, each drawn between half of it
    and all of it (jitter: receivers that failed together are not retried together)."""
    nominal = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (failures - 1))
    return nominal / 2 + (rng or random).uniform(0, nominal / 2)


def claim(limit: int, busy: Counter) -> list[WebhookDelivery]:
    """Up to `limit` due rows, at most `QMS_WEBHOOK_PER_ENDPOINT` in flight per endpoint, claimed for this
    worker (the claim's update re-checks each row: of two workers, one gets it)."""
    per_endpoint = settings.QMS_WEBHOOK_PER_ENDPOINT
    now = timezone.now()
    due = (WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now,
                                          endpoint__active=True)
           .annotate(rank=Window(RowNumber(), partition_by=[F("endpoint_id")], order_by=F("next_attempt_at").asc()))
           .filter(rank__lte=per_endpoint).order_by("next_attempt_at").values_list("id", "endpoint_id"))
    chosen: dict[int, int] = {}  # row -> endpoint
    for row_id, endpoint_id in due[: limit + per_endpoint * len(busy)]:
        if busy[endpoint_id] < per_endpoint and len(chosen) < limit:
            busy[endpoint_id] += 1
            chosen[row_id] = endpoint_id
    if not chosen:
        return []
    token, until = uuid.uuid4().hex, now + timedelta(seconds=claim_seconds())
    WebhookDelivery.objects.filter(id__in=chosen, status=WebhookDeliveryStatus.PENDING,
                                   next_attempt_at__lte=now).update(claimed_by=token, next_attempt_at=until)
    claimed = list(WebhookDelivery.objects.filter(id__in=chosen, claimed_by=token).select_related("endpoint"))
    for row_id in set(chosen) - {delivery.id for delivery in claimed}:
        busy[chosen[row_id]] -= 1  # another worker's
    return claimed


def attempt(delivery: WebhookDelivery) -> transport.Answer:
    """One signed POST of the delivery (no database work: runs in a sending thread)."""
    try:
        target = resolve(delivery.endpoint.url)
    except AddressRefused as refused:
        return transport.Answer(None, f"refused: {refused}"[:500])
    payload = signing.body(delivery.webhook_id, delivery.event_type, delivery.created_at, delivery.payload)
    return transport.post(target, payload, signing.headers(delivery.endpoint.secret, delivery.webhook_id,
                                                           int(time.time()), payload))


def record_answer(delivery: WebhookDelivery, answer: transport.Answer, now: datetime | None = None) -> None:
    """Delivered, or the next attempt after the backoff, or failed once past its `retry_until`."""
    now = now or timezone.now()
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "last_attempt_at": now, "last_status_code": answer.status,
              "last_error": answer.error, "claimed_by": ""}
    if answer.ok:
        fields.update(status=WebhookDeliveryStatus.DELIVERED, delivered_at=now)
    else:
        retry_at = now + timedelta(seconds=backoff_seconds(attempts))
        if retry_at > delivery.retry_until:
            fields.update(status=WebhookDeliveryStatus.FAILED)
            logger.warning("webhook failed", extra={"delivery_id": delivery.id, "endpoint_id": delivery.endpoint_id,
                                                    "attempts": attempts, "error": answer.error})
        else:
            fields.update(next_attempt_at=retry_at)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    for name, value in fields.items():
        setattr(delivery, name, value)


def deliver_due(seconds: float, stop: threading.Event | None = None) -> int:
    """Send due rows for up to `seconds` (then finish those in flight); return early when none is due and none
    in flight. Returns how many attempts were made."""
    deadline = time.monotonic() + seconds
    in_flight: dict[Future, WebhookDelivery] = {}
    busy: Counter = Counter()
    attempts = 0
    with ThreadPoolExecutor(settings.QMS_WEBHOOK_CONCURRENCY, thread_name_prefix="webhook") as pool:
        while True:
            claiming = time.monotonic() < deadline and not (stop and stop.is_set())
            free = settings.QMS_WEBHOOK_CONCURRENCY - len(in_flight)
            if claiming and free:
                for delivery in claim(free, busy):
                    in_flight[pool.submit(attempt, delivery)] = delivery
            if not in_flight:
                return attempts
            done, _ = wait(in_flight, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in done:
                delivery = in_flight.pop(future)
                busy[delivery.endpoint_id] -= 1
                record_answer(delivery, future.result())
                attempts += 1


def redeliver(delivery: WebhookDelivery) -> None:
    """An operator's "send again": pending now, with a fresh retry period; the same id (receivers deduplicate)."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDeliveryStatus.PENDING, next_attempt_at=timezone.now(), retry_until=retry_deadline(),
        claimed_by="")
    delivery.refresh_from_db()


def run(seconds: float, stop: threading.Event | None = None) -> int | None:
    """One worker's turn: the expiry sweep when due, then `deliver_due`. None when another run holds the turn
    (one run per deployment keeps a Celery worker's other processes free for ticks; it sends in parallel)."""
    if cache.add(SWEEP_KEY, 1, timeout=SWEEP_SECONDS):
        outbox.sweep_expired()
    turn = uuid.uuid4().hex
    if not cache.add(TURN_KEY, turn, timeout=int(seconds + claim_seconds() + 10)):
        return None
    try:
        return deliver_due(seconds, stop)
    finally:
        if cache.get(TURN_KEY) == turn:
            cache.delete(TURN_KEY)
