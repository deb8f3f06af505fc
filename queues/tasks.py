"""Celery tasks: the admission tick, one task per event, fanned out by beat every second; webhook deliveries.

Thin and idempotent: a duplicate beat or a retried task runs `admission.tick`,
whose lease and two-phase admission make a second run harmless.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from events.models import Event

from . import admission, draw
from .webhooks import delivery

logger = logging.getLogger(__name__)

# A tick older than this is pointless: the next beat has already sent a fresh one.
TICK_EXPIRES_SECONDS = 2.0


@shared_task(
    acks_late=True,  # a worker killed mid-tick leaves the message for another worker
    reject_on_worker_lost=True,
    soft_time_limit=max(1, int(settings.QMS_TICK_LEASE_SECONDS) - 4),  # well inside the lease
    time_limit=max(2, int(settings.QMS_TICK_LEASE_SECONDS) - 2),
    ignore_result=True,
)
def tick_event(event_id: int) -> int:
    """Run one tick for one event (it publishes what it decided). Returns how many were admitted."""
    event = Event.objects.filter(pk=event_id).first()
    if event is None:
        return 0
    return len(admission.tick(event).admitted)


@shared_task(ignore_result=True, soft_time_limit=5, time_limit=8)
def schedule_ticks() -> int:
    """Beat's every-second task: one tick task per event, so events proceed in parallel on workers."""
    ids = list(admission.tick_events().values_list("id", flat=True))
    for event_id in ids:
        tick_event.apply_async((event_id,), expires=TICK_EXPIRES_SECONDS)
    return len(ids)


# A delivery run sends for this long, then ends (its last exchanges finish within QMS_WEBHOOK_TIMEOUT); beat
# starts the next within a second.
WEBHOOK_RUN_SECONDS = 20.0


@shared_task(
    ignore_result=True,
    # Not acks_late: a run lost with its worker loses nothing (claimed rows are sent again when the claim ends).
    soft_time_limit=int(WEBHOOK_RUN_SECONDS + settings.QMS_WEBHOOK_TIMEOUT + 15),
    time_limit=int(WEBHOOK_RUN_SECONDS + settings.QMS_WEBHOOK_TIMEOUT + 25),
)
def deliver_webhooks() -> int:
    """Beat's every-second task: send due webhooks (returns at once while another run holds the turn)."""
    return delivery.run(WEBHOOK_RUN_SECONDS) or 0


@shared_task(ignore_result=True)
def record_draws() -> int:
    """Beat's every-second task: write the record of each opened event's draw that the opening tick froze
    (queues/draw.py), off the tick; a run cut short is resumed by the next."""
    return draw.record_opened()
