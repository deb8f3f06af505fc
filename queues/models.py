"""The admission ledger: every token ever issued, so it can be re-sent, redeemed once and released."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .store.base import new_place_id


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
