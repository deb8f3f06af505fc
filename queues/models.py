"""The admission ledger: every token ever issued, so it can be re-sent, redeemed once and released."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AdmissionQuerySet(models.QuerySet):
    def live(self, now=None):
        """Issued, not expired, not released: these hold a `max_active` slot."""
        return self.filter(released_at__isnull=True, expires_at__gt=now or timezone.now())


class Admission(models.Model):
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="admissions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="admissions")
    ticket = models.PositiveBigIntegerField(help_text="The queue ticket this admission ends.")
    jti = models.CharField(max_length=64, unique=True)
    token = models.TextField()
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    redeemed_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    objects = AdmissionQuerySet.as_manager()

    class Meta:
        constraints = [
            # One admission per queue ticket: a tick run twice cannot issue a second token.
            models.UniqueConstraint(fields=["event", "user", "ticket"], name="one_admission_per_ticket"),
        ]
        indexes = [
            models.Index(fields=["event", "expires_at"], name="admission_live_idx"),
            models.Index(fields=["event", "issued_at"], name="admission_issued_idx"),
        ]

    def __str__(self) -> str:
        return f"admission {self.jti} event={self.event_id} user={self.user_id}"

    def is_live(self, now=None) -> bool:
        return self.released_at is None and self.expires_at > (now or timezone.now())
