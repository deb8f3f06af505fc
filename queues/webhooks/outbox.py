"""The outbox writer: one `WebhookDelivery` row per (change, subscribed endpoint), inside the change's own
transaction, so a change rolled back reports nothing and a change committed is reported (at least once).

Writing costs the tick nothing when no endpoint listens (the endpoints are read from a per-process copy of
at most 2 s, queues/recent_events.py) and one bulk insert when some do. Changes that can be written twice (a tick run
twice, two sweeps, a second process noticing a sale open) carry an id derived from the change itself, and the
table's unique (endpoint, id) keeps one row.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from events.models import Event

from ..models import (
    Admission,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
    WebhookExpirySweep,
    WebhookThresholdState,
)
from ..recent_events import RecentCopy

# queue.opened is announced by the first tick that sees the sale open, if that is within this long of its start
# (a process started days after the opening does not announce it again).
OPENED_WINDOW = timedelta(hours=1)
EXPIRED_BATCH = 1000  # admissions reported expired per event and sweep
_ID_NAMESPACE = uuid.UUID("0b5d6c4e-6f1e-4c8a-9a34-3c0e9a1d2f77")


@dataclass(frozen=True)
class Subscription:
    endpoint_id: int
    event_types: frozenset[str]  # empty: every type
    all_events: bool
    event_ids: frozenset[int]
    threshold: int | None
    hysteresis: int
    created_at: datetime

    def wants(self, event_id: int, event_type: str) -> bool:
        return ((not self.event_types or event_type in self.event_types)
                and (self.all_events or event_id in self.event_ids))


def _read_subscriptions() -> list[Subscription]:
    endpoints = WebhookEndpoint.objects.filter(active=True).prefetch_related("events")
    return [Subscription(e.id, frozenset(e.event_types), e.all_events, frozenset(event.id for event in e.events.all()),
                         e.threshold_waiting, e.threshold_hysteresis, e.created_at) for e in endpoints]


class Subscriptions(RecentCopy[list[Subscription]]):
    """The active endpoints as read at most 2 s ago (queues/recent_events.py); dropped when this process
    changes one."""

    def __init__(self) -> None:
        super().__init__(_read_subscriptions)

    def all(self) -> list[Subscription]:
        return self.current()

    def matching(self, event_id: int, event_type: str) -> list[Subscription]:
        return [s for s in self.all() if s.wants(event_id, event_type)]


subscriptions = Subscriptions()


def _forget_subscriptions(sender, **kwargs) -> None:
    subscriptions.clear()


post_save.connect(_forget_subscriptions, sender=WebhookEndpoint, dispatch_uid="webhooks.endpoint.save")
post_delete.connect(_forget_subscriptions, sender=WebhookEndpoint, dispatch_uid="webhooks.endpoint.delete")
m2m_changed.connect(_forget_subscriptions, sender=WebhookEndpoint.events.through, dispatch_uid="webhooks.events")


def stable_id(key: str) -> str:
    """The webhook id of a change that may be recorded twice: the same key, the same id."""
    return uuid.uuid5(_ID_NAMESPACE, key).hex


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def record(event_id: int, event_type: str, changes: Iterable[tuple[str | None, dict]],
           only: Iterable[Subscription] | None = None) -> int:
    """Write a row per (change, endpoint listening to `event_type` at the event); `changes` are (key, data) with
    key None for a change that happens once (a random id). Returns the rows written (conflicts skipped)."""
    listeners = list(only) if only is not None else subscriptions.matching(event_id, event_type)
    if not listeners:
        return 0
    now = timezone.now()
    rows = []
    for key, data in changes:
        webhook_id = stable_id(key) if key else uuid.uuid4().hex
        rows += [WebhookDelivery(endpoint_id=s.endpoint_id, event_id=event_id, event_type=event_type,
                                 webhook_id=webhook_id, payload=data, created_at=now, next_attempt_at=now)
                 for s in listeners]
    WebhookDelivery.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- admissions ------------------------------------------------------------------------------------------

def admission_data(row: Admission) -> dict:
    return {"event": row.event_id, "user": row.user_id, "jti": row.jti, "ticket": row.ticket,
            "issued_at": _iso(row.issued_at), "expires_at": _iso(row.expires_at),
            "redeemed_at": _iso(row.redeemed_at), "released_at": _iso(row.released_at)}


def admissions_issued(event: Event, rows: list[Admission]) -> int:
    """In the tick's ledger transaction. Keyed by the place (unique forever): a tick run twice writes once."""
    return record(event.id, WebhookEventType.ADMISSION_ISSUED,
                  ((f"admission.issued:{row.event_id}:{row.place_id}", admission_data(row)) for row in rows))


def _admission_once(event_type: str, row: Admission) -> int:
    """Redeemed or released: each happens once per token, keyed by it."""
    return record(row.event_id, event_type, [(f"{event_type}:{row.jti}", admission_data(row))])


def admission_redeemed(row: Admission) -> int:
    """In verify's redeeming transaction."""
    return _admission_once(WebhookEventType.ADMISSION_REDEEMED, row)


def admission_released(row: Admission) -> int:
    """In release's transaction."""
    return _admission_once(WebhookEventType.ADMISSION_RELEASED, row)


# --- the queue ---------------------------------------------------------------------------------------------

def queue_data(event: Event, **extra) -> dict:
    return {"event": event.id, "name": event.name, "paused": event.paused, "draining": event.draining,
            "sale_starts_at": _iso(event.sale_starts_at), **extra}


def queue_changed(event: Event, event_type: str, **extra) -> int:
    return record(event.id, event_type, [(None, queue_data(event, **extra))])


_opened_seen: set[tuple[int, datetime]] = set()


def notice_opening(event: Event, now: datetime) -> int:
    """queue.opened, by the first tick (of any process) that sees the sale open; once per sale start."""
    mark = (event.id, event.sale_starts_at)
    if mark in _opened_seen or not event.sale_open(now):
        return 0
    _opened_seen.add(mark)
    if now - event.sale_starts_at > OPENED_WINDOW:
        return 0
    return record(event.id, WebhookEventType.QUEUE_OPENED,
                  [(f"queue.opened:{event.id}:{event.sale_starts_at.isoformat()}", queue_data(event))])


_threshold_sides: dict[tuple[int, int], bool] = {}  # (endpoint, event) -> above, as this process last knew


def _wanted_side(subscription: Subscription, waiting: int) -> bool | None:
    """Above at the threshold, below once under it by the hysteresis, unchanged in between."""
    if waiting >= subscription.threshold:
        return True
    if waiting < subscription.threshold - subscription.hysteresis:
        return False
    return None


def _move_side(subscription: Subscription, event: Event, above: bool) -> bool:
    """Record the new side in the database; True if this call moved it (one process wins a race)."""
    states = WebhookThresholdState.objects.filter(endpoint_id=subscription.endpoint_id, event=event)
    if states.filter(above=not above).update(above=above):
        return True
    if not above:
        return False  # no row reads as below
    try:
        with transaction.atomic():
            WebhookThresholdState.objects.create(endpoint_id=subscription.endpoint_id, event=event, above=True)
    except IntegrityError:
        return False  # the row exists, already above
    return True


def notice_waiting(event: Event, waiting: int) -> int:
    """queue.threshold to each endpoint whose number the waiting crossed (with its hysteresis)."""
    written = 0
    for subscription in subscriptions.matching(event.id, WebhookEventType.QUEUE_THRESHOLD):
        if subscription.threshold is None:
            continue
        above = _wanted_side(subscription, waiting)
        mark = (subscription.endpoint_id, event.id)
        if above is None or _threshold_sides.get(mark) == above:
            continue
        with transaction.atomic():
            if _move_side(subscription, event, above):
                written += record(event.id, WebhookEventType.QUEUE_THRESHOLD, [(None, queue_data(
                    event, waiting=waiting, threshold=subscription.threshold, hysteresis=subscription.hysteresis,
                    direction="above" if above else "below"))], only=[subscription])
        _threshold_sides[mark] = above
    return written


def sweep_expired(now: datetime | None = None) -> int:
    """admission.expired for tokens that expired unreleased since the last sweep, per listening event."""
    now = now or timezone.now()
    listeners = [s for s in subscriptions.all()
                 if not s.event_types or WebhookEventType.ADMISSION_EXPIRED in s.event_types]
    if not listeners:
        return 0
    event_ids = (set(Event.objects.values_list("id", flat=True)) if any(s.all_events for s in listeners)
                 else set().union(*(s.event_ids for s in listeners)))
    since = min(s.created_at for s in listeners)
    return sum(_sweep_event(event_id, since, now) for event_id in sorted(event_ids))


def _sweep_event(event_id: int, since: datetime, now: datetime) -> int:
    with transaction.atomic():
        sweep = WebhookExpirySweep.objects.select_for_update().filter(event_id=event_id).first()
        if sweep is None:
            sweep = WebhookExpirySweep(event_id=event_id, swept_until=since)
        rows = list(Admission.objects.filter(event_id=event_id, expires_at__gt=sweep.swept_until,
                                             expires_at__lte=now, released_at__isnull=True)
                    .order_by("expires_at")[:EXPIRED_BATCH])
        written = record(event_id, WebhookEventType.ADMISSION_EXPIRED,
                         [(f"admission.expired:{row.jti}", admission_data(row)) for row in rows])
        sweep.swept_until = rows[-1].expires_at if len(rows) == EXPIRED_BATCH else now
        sweep.save()
    return written


def forget_process_state() -> None:
    """Tests: this process's copies (endpoints, sides, openings seen) start empty."""
    subscriptions.clear()
    _opened_seen.clear()
    _threshold_sides.clear()
