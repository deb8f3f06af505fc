"""Events on sale: the durable configuration of each event's waiting room."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, URLValidator
from django.db import models
from django.utils import timezone
from django.utils.text import slugify


class Event(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True, blank=True)
    sale_starts_at = models.DateTimeField(
        default=timezone.now,
        help_text="Fans who join before this form a pre-queue, shuffled at random when the sale opens.",
    )
    queue_enabled = models.BooleanField(
        default=True, help_text="Off: fans are admitted on join, still limited by max active."
    )
    paused = models.BooleanField(default=False, help_text="Paused: fans keep joining, nobody is admitted.")
    draining = models.BooleanField(
        default=False, help_text="Draining: no new joins; everyone already waiting is still admitted."
    )
    admit_per_minute = models.PositiveIntegerField(default=60, validators=[MinValueValidator(1)])
    max_active = models.PositiveIntegerField(
        default=500,
        validators=[MinValueValidator(1)],
        help_text="Most fans holding a live admission (issued, not expired, not released) at once.",
    )
    token_ttl_seconds = models.PositiveIntegerField(default=600, validators=[MinValueValidator(30)])
    reservation_url = models.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Admitted fans are sent here with ?token=<admission JWT>.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sale_starts_at", "id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = self._unique_slug()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if self.admit_per_minute is not None and self.admit_per_minute < 1:
            raise ValidationError({"admit_per_minute": "Must be at least 1 per minute."})

    def _unique_slug(self) -> str:
        base = slugify(self.name)[:180] or "event"
        slug, n = base, 1
        while Event.objects.filter(slug=slug).exclude(pk=self.pk).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug

    def sale_open(self, now=None) -> bool:
        return (now or timezone.now()) >= self.sale_starts_at
