"""The outbox's housekeeping, run by the periodic sweep (queues/webhooks/delivery.py `run`, every 10 s at most):
settle the rows nobody will send, and delete the log older than `QMS_WEBHOOK_RETENTION_DAYS`.

Each step is one bounded statement (or a few), so a sweep never holds the database for long: the pending rows
it looks at are few (an index on status), and old rows go `DELETE_BATCH` at a time, `DELETE_BATCHES` at most
per sweep (10,000 every 10 s: far more than admissions write).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from ..models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint

DELETE_BATCH = 1000
DELETE_BATCHES = 10
SETTLED = (WebhookDeliveryStatus.DELIVERED, WebhookDeliveryStatus.FAILED, WebhookDeliveryStatus.CANCELLED)


def _pending():
    return WebhookDelivery.objects.filter(status=WebhookDeliveryStatus.PENDING)


def cancel_inactive(endpoint_id: int | None = None) -> int:
    """Pending rows of deactivated endpoints (or of this one) are cancelled: never sent, kept in the log. Called
    when an endpoint is deactivated, and by the sweep for rows the tick wrote from its older copy of the
    endpoints. Reactivating sends new changes; a cancelled row goes only if an operator redelivers it."""
    rows = _pending().filter(endpoint__active=False)
    if endpoint_id is not None:
        rows = rows.filter(endpoint_id=endpoint_id)
    return rows.update(status=WebhookDeliveryStatus.CANCELLED, claimed_by="")


def delete_orphans() -> int:
    """Pending rows of an endpoint deleted meanwhile (deleting an endpoint deletes its rows; the tick may write
    some from its older copy): no endpoint, no log to show them in."""
    return _pending().exclude(endpoint_id__in=WebhookEndpoint.objects.values("id")).delete()[0]


def fail_expired(now: datetime) -> int:
    """Pending rows past their retry period that no worker holds: failed. A backed-off endpoint's rows wait for
    its probe, not their own schedule, so their period can run out without another attempt."""
    return (_pending().filter(retry_until__lt=now).filter(Q(claimed_by="") | Q(next_attempt_at__lte=now))
            .update(status=WebhookDeliveryStatus.FAILED, claimed_by=""))


def prune(now: datetime) -> int:
    """Settled rows (delivered, failed, cancelled) created more than `QMS_WEBHOOK_RETENTION_DAYS` ago, deleted a
    batch at a time; pending rows are never pruned."""
    old = (WebhookDelivery.objects.filter(status__in=SETTLED,
                                          created_at__lt=now - timedelta(days=settings.QMS_WEBHOOK_RETENTION_DAYS))
           .values_list("id", flat=True))
    deleted = 0
    for _ in range(DELETE_BATCHES):
        batch = list(old[:DELETE_BATCH])
        if batch:
            deleted += WebhookDelivery.objects.filter(id__in=batch).delete()[0]
        if len(batch) < DELETE_BATCH:
            break
    return deleted


def sweep(now: datetime | None = None) -> dict[str, int]:
    """All of the above; how many rows each step touched."""
    now = now or timezone.now()
    return {"cancelled": cancel_inactive(), "orphans": delete_orphans(), "failed": fail_expired(now),
            "pruned": prune(now)}
