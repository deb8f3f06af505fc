"""The admission ledger: every token ever issued, so it can be re-sent, redeemed once and released."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .store.base import new_place_id
from .webhooks.addresses import validate_receiver_url


class AdmissionQuerySet(models.QuerySet):
    def live(self, now=None):
        """Issued, not expired, not released: these hold a `max_active` slot."""
        return self.filter(released_at__isnull=True, expires_at__gt=now or timezone.now())


class Admission(models.Model):
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="admissions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="admissions")
    ticket = models.PositiveBigIntegerField(help_text="The queue ticket this admission ends.")
    # The tick sets it from the pop; a row made otherwise (by hand, in a test) gets an id that matches no place.
    place_id = models.CharField(max_length=32, default=new_place_id,
                                help_text="The queue place this admission ends (unique forever).")
    jti = models.CharField(max_length=64, unique=True)
    token = models.TextField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = AdmissionQuerySet.as_manager()

    class Meta:
        constraints = [
            # One admission per queue place: a tick run twice cannot issue a second token. By place id, not
            # ticket: a store that forgot (restarted, Redis losing its last writes) counts tickets from an
            # earlier number again, and a new place must not meet an old place's row.
            models.UniqueConstraint(fields=["event", "place_id"], name="one_admission_per_place"),
        ]
        indexes = [
            models.Index(fields=["event", "expires_at"], name="admission_live_idx"),
            models.Index(fields=["event", "issued_at"], name="admission_issued_idx"),
        ]

    def __str__(self) -> str:
        return f"admission {self.jti} event={self.event_id} user={self.user_id}"

    def is_live(self, now=None) -> bool:
        return self.released_at is None and self.expires_at > (now or timezone.now())


# --- the provably fair draw (issue 19, queues/draw.py) -------------------------------------------------------

class Draw(models.Model):
    """The pre-queue's draw as it stood at the opening, recorded once by the first tick after it."""

    event = models.OneToOneField("events.Event", primary_key=True, on_delete=models.CASCADE, related_name="draw")
    recorded_at = models.DateTimeField()
    size = models.PositiveIntegerField(help_text="Fans drawn: the pre-queue at the opening.")

    def __str__(self) -> str:
        return f"draw of event {self.event_id}: {self.size} fans"


class DrawEntry(models.Model):
    """One drawn fan: their place at the opening (`rank`, 1-based, the queue's own order), ticket and key.

    The user stays here (a fan's `draw_rank` survives their admission) and never leaves through the API."""

    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="draw_entries")
    rank = models.PositiveIntegerField()
    ticket = models.PositiveBigIntegerField()
    key = models.CharField(max_length=16, help_text="The first 8 bytes of the fan's HMAC, in hex.")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "rank"], name="one_draw_entry_per_rank"),
            models.UniqueConstraint(fields=["event", "user"], name="one_draw_entry_per_fan"),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} rank {self.rank}: ticket {self.ticket}"


# --- webhooks (docs/API.md "Webhooks") ---------------------------------------------------------------------

class WebhookEventType(models.TextChoices):
    ADMISSION_ISSUED = "admission.issued", _("A fan was admitted (token issued)")
    ADMISSION_REDEEMED = "admission.redeemed", _("The reservation service redeemed a token")
    ADMISSION_RELEASED = "admission.released", _("The reservation service released a token's slot")
    ADMISSION_EXPIRED = "admission.expired", _("A token expired before it was released")
    QUEUE_OPENED = "queue.opened", _("The sale opened")
    QUEUE_PAUSED = "queue.paused", _("Admission paused")
    QUEUE_RESUMED = "queue.resumed", _("Admission resumed")
    QUEUE_DRAINED = "queue.drained", _("Draining: no new joins")
    QUEUE_UNDRAINED = "queue.undrained", _("Taking joins again")
    QUEUE_RESET = "queue.reset", _("The queue was emptied")
    QUEUE_THRESHOLD = "queue.threshold", _("Waiting fans crossed the endpoint's threshold")


class WebhookEndpoint(models.Model):
    """A receiver an operator registered: where to POST, the shared secret, and what it wants to hear."""

    url = models.URLField(verbose_name=_("URL"), max_length=500, validators=[validate_receiver_url],
                          help_text=_("https://... (loopback and private addresses are refused unless listed in "
                                      "QMS_WEBHOOK_ALLOWED_HOSTS)."))
    secret = models.CharField(verbose_name=_("secret"), max_length=200,
                              help_text=_("Signs every delivery (HMAC-SHA256); the receiver holds it too."))
    event_types = models.JSONField(verbose_name=_("event types"), default=list, blank=True,
                                   help_text=_('Event types to send (e.g. ["admission.issued"]); empty: all of them.'))
    all_events = models.BooleanField(verbose_name=_("all events"), default=True,
                                     help_text=_("Every event on sale; off: only the events chosen."))
    events = models.ManyToManyField("events.Event", verbose_name=_("events"), blank=True,
                                    related_name="webhook_endpoints")
    active = models.BooleanField(verbose_name=_("active"), default=True)
    threshold_waiting = models.PositiveIntegerField(
        verbose_name=_("threshold (fans waiting)"), null=True, blank=True,
        help_text=_("queue.threshold: sent when the fans waiting reach this number, and again when they fall below "
                    "it by the hysteresis."))
    threshold_hysteresis = models.PositiveIntegerField(
        verbose_name=_("hysteresis"), default=0,
        help_text=_("queue.threshold: how far below the number the waiting must fall before 'below' is sent (stops "
                    "a queue hovering at the number from sending one alert per tick)."))
    description = models.CharField(verbose_name=_("description"), max_length=200, blank=True)
    # The circuit breaker (queues/webhooks/delivery.py): after QMS_WEBHOOK_BREAKER_FAILURES failed attempts in a
    # row the endpoint's rows wait until `backoff_until`, then one probe goes; its success closes the breaker.
    consecutive_failures = models.PositiveIntegerField(verbose_name=_("failures in a row"), default=0, editable=False)
    backoff_until = models.DateTimeField(verbose_name=_("backing off until"), null=True, blank=True, editable=False,
                                         help_text=_("Failing: nothing is sent before this time, then one probe."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("created by"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="webhook_endpoints")
    created_at = models.DateTimeField(verbose_name=_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(verbose_name=_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        return not self.event_types or event_type in self.event_types


class WebhookDeliveryStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DELIVERED = "delivered", _("Delivered")
    FAILED = "failed", _("Failed (gave up)")
    CANCELLED = "cancelled", _("Cancelled (endpoint deactivated)")


def retry_deadline():
    """Until when a new (or redelivered) delivery is retried before it is marked failed."""
    return timezone.now() + timedelta(hours=settings.QMS_WEBHOOK_RETRY_HOURS)


class WebhookDelivery(models.Model):
    """The outbox: one row per (change, subscribed endpoint), written in the change's own transaction and sent
    later by the delivery worker (queues/webhooks/delivery.py), never on the request or tick path."""

    # No database constraints: the tick writes rows from a copy of the endpoints up to 2 s old, and an endpoint
    # deleted meanwhile must not fail its transaction (and with it the admissions). Such rows are never sent
    # (the worker only claims rows of active endpoints) and the sweep deletes them (queues/webhooks/retention.py);
    # deleting an endpoint deletes its rows.
    endpoint = models.ForeignKey(WebhookEndpoint, verbose_name=_("endpoint"), on_delete=models.CASCADE,
                                 related_name="deliveries", db_constraint=False)
    event = models.ForeignKey("events.Event", verbose_name=_("event"), null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="webhook_deliveries", db_constraint=False)
    event_type = models.CharField(verbose_name=_("event type"), max_length=32, choices=WebhookEventType.choices)
    webhook_id = models.CharField(verbose_name=_("webhook id"), max_length=64,
                                  help_text=_("X-QMS-Webhook-Id: the same on every retry."))
    payload = models.JSONField(verbose_name=_("payload"), help_text=_("The body's `data`."))
    created_at = models.DateTimeField(verbose_name=_("created at"), default=timezone.now)
    status = models.CharField(verbose_name=_("status"), max_length=16, choices=WebhookDeliveryStatus.choices,
                              default=WebhookDeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(verbose_name=_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(verbose_name=_("next attempt at"), default=timezone.now)
    retry_until = models.DateTimeField(verbose_name=_("retried until"), default=retry_deadline)
    # The worker that holds the row while sending it (a claim expires with `next_attempt_at`).
    claimed_by = models.CharField(verbose_name=_("claimed by"), max_length=32, blank=True)
    last_attempt_at = models.DateTimeField(verbose_name=_("last attempt at"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(verbose_name=_("last status code"), null=True, blank=True)
    last_error = models.CharField(verbose_name=_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(verbose_name=_("delivered at"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-created_at", "-id"]
        constraints = [
            # A change reported twice (a tick run twice, two sweeps) writes one row: ids of such changes are
            # derived from the change itself (queues/webhooks/outbox.py).
            models.UniqueConstraint(fields=["endpoint", "webhook_id"], name="one_delivery_per_endpoint_and_id"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due_idx"),
                   # The log's order and date filter, and the retention sweep's range.
                   models.Index(fields=["created_at"], name="webhook_created_idx")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.webhook_id} → endpoint {self.endpoint_id}"


class WebhookThresholdState(models.Model):
    """Which side of its threshold an endpoint was last told an event's queue is on (absent: below)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="threshold_states")
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="+")
    above = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["endpoint", "event"], name="one_threshold_state")]

    def __str__(self) -> str:
        return f"endpoint {self.endpoint_id} event {self.event_id}: {'above' if self.above else 'below'}"


class WebhookExpirySweep(models.Model):
    """How far `admission.expired` has been reported for an event: admissions expiring up to `swept_until`."""

    event = models.OneToOneField("events.Event", primary_key=True, on_delete=models.CASCADE, related_name="+")
    swept_until = models.DateTimeField()

    def __str__(self) -> str:
        return f"event {self.event_id}: expiries reported up to {self.swept_until}"
