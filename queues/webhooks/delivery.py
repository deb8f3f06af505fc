"""The delivery worker: sends the outbox's due rows, many at once, and schedules retries.

At least once: a row is claimed for a while (`claim_seconds`, longer than one exchange can take), sent, then
marked delivered (2xx) or given its next attempt after an exponential backoff with jitter, until its
`retry_until` (24 h by default) has passed: then it is failed. Up to `QMS_WEBHOOK_CONCURRENCY` exchanges run
at once, at most `QMS_WEBHOOK_PER_ENDPOINT` of them to one endpoint, so a slow receiver holds a few threads,
never the others' deliveries.

A receiver that keeps failing costs next to nothing: after `QMS_WEBHOOK_BREAKER_FAILURES` failed attempts in a
row its endpoint backs off as a whole (a circuit breaker: nothing goes to it before its `backoff_until`, then
one probe, its oldest row), instead of every row retrying on its own schedule; the probe's success makes the
backlog due at once, sent oldest first. The worker works in passes at most every `PASS_SECONDS` and records a
pass's answers in one statement: in the embedded default it shares the process (the GIL, SQLite's one writer)
with the tick, which it must not slow. Runs in a Celery task (queues/tasks.py) or the embedded server's loop
(queues/realtime/loop.py); never on a request or a tick.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ALL_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Q, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from ..models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, retry_deadline
from . import outbox, retention, signing, transport
from .addresses import AddressRefused, resolve

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 3600.0
# An open breaker waits as a row would after its 4th failure (4-8 s), doubling with each failed probe up to 1 h.
BREAKER_FIRST_STEP = 4
PASS_SECONDS = 0.1  # a pass (claim, wait for answers, record them) starts at most this often
TURN_KEY = "qms:webhooks:delivering"  # in the shared cache: one delivery run at a time per deployment
SWEEP_KEY = "qms:webhooks:swept"
SWEEP_SECONDS = 10  # admission.expired and the outbox's housekeeping run at most this often
OLDEST_FIRST = ("created_at", "id")
# What an answer changes on its row (written for a whole pass by one bulk UPDATE).
RECORDED_FIELDS = ("status", "attempts", "next_attempt_at", "last_attempt_at", "last_status_code", "last_error",
                   "delivered_at", "claimed_by")


def claim_seconds() -> float:
    """How long a claimed row is left alone: one whole exchange and then some."""
    return settings.QMS_WEBHOOK_TIMEOUT + 20


def backoff_seconds(failures: int, rng: random.Random | None = None) -> float:
    """The wait after the `failures`-th failed attempt (of a row, or of an endpoint past the breaker's count):
    1 s doubling up to 1 h, each drawn between half of it and all of it (jitter: receivers that failed together
    are not retried together)."""
    nominal = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (failures - 1))
    return nominal / 2 + (rng or random).uniform(0, nominal / 2)


def claim(limit: int, busy: Counter) -> list[WebhookDelivery]:
    """Up to `limit` rows to send now, claimed for this worker: the due rows of endpoints whose breaker is closed
    (at most `QMS_WEBHOOK_PER_ENDPOINT` in flight each), and one probe per backed-off endpoint whose wait is over
    and that has nothing in flight. Of two workers, the claim's update gives each row to one."""
    now = timezone.now()
    closed, probing = [], []
    for endpoint_id, until in WebhookEndpoint.objects.filter(active=True).values_list("id", "backoff_until"):
        if until is None and busy[endpoint_id] < settings.QMS_WEBHOOK_PER_ENDPOINT:
            closed.append(endpoint_id)
        elif until is not None and until <= now and not busy[endpoint_id]:
            probing.append((endpoint_id, until))
    chosen = _due_rows(closed, limit, busy, now)  # row -> endpoint
    for endpoint_id, until in probing:
        row_id = _take_probe(endpoint_id, until, now) if len(chosen) < limit else None
        if row_id is not None:
            chosen[row_id] = endpoint_id
            busy[endpoint_id] += 1
    if not chosen:
        return []
    token, until = uuid.uuid4().hex, now + timedelta(seconds=claim_seconds())
    # A probe is taken whatever its own schedule (the endpoint's replaces it), as long as no worker holds it.
    (WebhookDelivery.objects.filter(id__in=chosen, status=WebhookDeliveryStatus.PENDING)
     .filter(Q(next_attempt_at__lte=now) | Q(claimed_by="")).update(claimed_by=token, next_attempt_at=until))
    claimed = list(WebhookDelivery.objects.filter(id__in=chosen, claimed_by=token).select_related("endpoint")
                   .order_by(*OLDEST_FIRST))
    for row_id in set(chosen) - {delivery.id for delivery in claimed}:
        busy[chosen[row_id]] -= 1  # another worker's
    return claimed


def _due_rows(endpoint_ids: list[int], limit: int, busy: Counter, now: datetime) -> dict[int, int]:
    """Due rows of these endpoints, oldest first, within each endpoint's free places in flight: row -> endpoint."""
    per_endpoint = settings.QMS_WEBHOOK_PER_ENDPOINT
    if not endpoint_ids:
        return {}
    due = (WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING, next_attempt_at__lte=now,
                                          endpoint_id__in=endpoint_ids)
           .annotate(rank=Window(RowNumber(), partition_by=[F("endpoint_id")],
                                 order_by=[F(name).asc() for name in OLDEST_FIRST]))
           .filter(rank__lte=per_endpoint).order_by(*OLDEST_FIRST).values_list("id", "endpoint_id"))
    chosen: dict[int, int] = {}
    for row_id, endpoint_id in due[: limit + per_endpoint * len(busy)]:
        if busy[endpoint_id] < per_endpoint and len(chosen) < limit:
            busy[endpoint_id] += 1
            chosen[row_id] = endpoint_id
    return chosen


def _take_probe(endpoint_id: int, until: datetime, now: datetime) -> int | None:
    """The oldest pending row no worker holds, if this worker takes the endpoint's turn: its backoff is moved
    past the exchange, so one probe goes at a time (the answer sets the next backoff, or closes the breaker)."""
    row_id = (WebhookDelivery.objects.filter(endpoint_id=endpoint_id, status=WebhookDeliveryStatus.PENDING)
              .filter(Q(claimed_by="") | Q(next_attempt_at__lte=now)).order_by(*OLDEST_FIRST)
              .values_list("id", flat=True).first())
    if row_id is None:
        return None
    taken = WebhookEndpoint.objects.filter(pk=endpoint_id, backoff_until=until).update(
        backoff_until=now + timedelta(seconds=claim_seconds()))
    return row_id if taken else None


def attempt(delivery: WebhookDelivery) -> transport.Answer:
    """One signed POST of the delivery (no database work: runs in a sending thread)."""
    try:
        target = resolve(delivery.endpoint.url)
    except AddressRefused as refused:
        return transport.Answer(None, f"refused: {refused}"[:500])
    payload = signing.body(delivery.webhook_id, delivery.event_type, delivery.created_at, delivery.payload)
    return transport.post(target, payload, signing.headers(delivery.endpoint.secret, delivery.webhook_id,
                                                           int(time.time()), payload))


def record_answers(answered: list[tuple[WebhookDelivery, transport.Answer]], now: datetime | None = None) -> None:
    """A pass's answers, in the order given: one UPDATE for all the rows, one for the endpoints whose breaker
    moved, and one per endpoint that recovered (its backlog due now). A healthy endpoint costs no endpoint write."""
    if not answered:
        return
    now = now or timezone.now()
    for delivery, answer in answered:
        _settle(delivery, answer, now)
    WebhookDelivery.objects.bulk_update([delivery for delivery, _ in answered], RECORDED_FIELDS)
    _move_breakers(answered, now)


def _settle(delivery: WebhookDelivery, answer: transport.Answer, now: datetime) -> None:
    """Delivered, or the next attempt after the row's backoff, or failed once past its `retry_until`."""
    delivery.attempts += 1
    delivery.last_attempt_at, delivery.last_status_code, delivery.last_error = now, answer.status, answer.error
    delivery.claimed_by = ""
    if answer.ok:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = WebhookDeliveryStatus.DELIVERED, now, now
        return
    retry_at = now + timedelta(seconds=backoff_seconds(delivery.attempts))
    delivery.next_attempt_at = retry_at
    if retry_at > delivery.retry_until:
        delivery.status = WebhookDeliveryStatus.FAILED
        logger.warning("webhook failed", extra={"delivery_id": delivery.id, "endpoint_id": delivery.endpoint_id,
                                                "attempts": delivery.attempts, "error": answer.error})


def _move_breakers(answered: list[tuple[WebhookDelivery, transport.Answer]], now: datetime) -> None:
    """Count each endpoint's failures in a row; at `QMS_WEBHOOK_BREAKER_FAILURES` it backs off as a whole (longer
    with each further failure), and a success closes it."""
    outcomes: dict[int, list[bool]] = {}
    for delivery, answer in answered:
        outcomes.setdefault(delivery.endpoint_id, []).append(answer.ok)
    limit = settings.QMS_WEBHOOK_BREAKER_FAILURES
    moved, recovered = [], []
    for endpoint in WebhookEndpoint.objects.filter(id__in=outcomes).only("consecutive_failures", "backoff_until"):
        failures = endpoint.consecutive_failures
        for ok in outcomes[endpoint.id]:
            failures = 0 if ok else failures + 1
        backoff_until = (now + timedelta(seconds=backoff_seconds(failures - limit + BREAKER_FIRST_STEP))
                         if failures >= limit else None)
        if endpoint.backoff_until is not None and backoff_until is None:
            recovered.append(endpoint.id)
            logger.info("webhook endpoint recovered", extra={"endpoint_id": endpoint.id})
        elif endpoint.backoff_until is None and backoff_until is not None:
            logger.warning("webhook endpoint backing off", extra={"endpoint_id": endpoint.id, "failures": failures})
        if (failures, backoff_until) != (endpoint.consecutive_failures, endpoint.backoff_until):
            endpoint.consecutive_failures, endpoint.backoff_until = failures, backoff_until
            moved.append(endpoint)
    WebhookEndpoint.objects.bulk_update(moved, ["consecutive_failures", "backoff_until"])
    if recovered:
        WebhookDelivery.objects.filter(endpoint_id__in=recovered, status=WebhookDeliveryStatus.PENDING,
                                       claimed_by="").update(next_attempt_at=now)


def deliver_due(seconds: float, stop: threading.Event | None = None) -> int:
    """Send due rows for up to `seconds` (then finish those in flight), in passes of at least `PASS_SECONDS`;
    return early when none is due and none in flight. Returns how many attempts were made."""
    deadline = time.monotonic() + seconds
    in_flight: dict[Future, WebhookDelivery] = {}
    busy: Counter = Counter()
    attempts = 0
    with ThreadPoolExecutor(settings.QMS_WEBHOOK_CONCURRENCY, thread_name_prefix="webhook") as pool:
        while True:
            started = time.monotonic()
            claiming = started < deadline and not (stop and stop.is_set())
            free = settings.QMS_WEBHOOK_CONCURRENCY - len(in_flight)
            if claiming and free:
                for delivery in claim(free, busy):
                    in_flight[pool.submit(attempt, delivery)] = delivery
            if not in_flight:
                return attempts
            done, _ = wait(in_flight, timeout=PASS_SECONDS, return_when=ALL_COMPLETED)
            answered = sorted(((in_flight.pop(future), future.result()) for future in done),
                              key=lambda pair: (pair[0].created_at, pair[0].id))
            for delivery, _ in answered:
                busy[delivery.endpoint_id] -= 1
            record_answers(answered)
            attempts += len(answered)
            time.sleep(max(0.0, PASS_SECONDS - (time.monotonic() - started)))  # yield: to the tick, above all


def redeliver(delivery: WebhookDelivery) -> None:
    """An operator's "send again": pending now, with a fresh retry period; the same id (receivers deduplicate).
    A backed-off endpoint is probed now rather than at the end of its backoff (the operator may have fixed it)."""
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=WebhookDeliveryStatus.PENDING, next_attempt_at=now, retry_until=retry_deadline(), claimed_by="")
    WebhookEndpoint.objects.filter(pk=delivery.endpoint_id, backoff_until__gt=now).update(backoff_until=now)
    delivery.refresh_from_db()


def run(seconds: float, stop: threading.Event | None = None) -> int | None:
    """One worker's turn: the sweeps (expiries, the outbox's housekeeping) when due, then `deliver_due`. None
    when another run holds the turn (one run per deployment keeps a Celery worker's other processes free for
    ticks; it sends in parallel)."""
    if cache.add(SWEEP_KEY, 1, timeout=SWEEP_SECONDS):
        outbox.sweep_expired()
        retention.sweep()
    turn = uuid.uuid4().hex
    if not cache.add(TURN_KEY, turn, timeout=int(seconds + claim_seconds() + 10)):
        return None
    try:
        return deliver_due(seconds, stop)
    finally:
        if cache.get(TURN_KEY) == turn:
            cache.delete(TURN_KEY)
