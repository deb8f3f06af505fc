"""Events on sale: the durable configuration of each event's waiting room."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

# The range of every number an operator sets: what a production waiting room uses, with room to spare, and
# small enough that nothing computed from them overflows (a token's expiry date, the tick's rate budget, a
# 32-bit column). Checked by the model's validators (admin form and API answer `invalid`) and by the
# database (check constraints), so no stored value can stop a queue. docs/API.md "Event settings" lists them.
BOUNDS: dict[str, tuple[int, int]] = {
    "admit_per_minute": (1, 1_000_000),
    "max_active": (1, 10_000_000),
    "token_ttl_seconds": (30, 24 * 3600),  # under 30 s a fan cannot reach the reservation page in time
    "pow_difficulty": (0, 28),  # 28 bits: minutes in a browser already
    "session_idle_seconds": (30, 24 * 3600),
    "session_max_seconds": (60, 7 * 24 * 3600),  # a protected site's session: a week at most
}


def bounded(field: str) -> list:
    """The validators holding `field` within its BOUNDS."""
    low, high = BOUNDS[field]
    return [MinValueValidator(low), MaxValueValidator(high)]


class QueueingMethod(models.TextChoices):
    FIFO = "fifo", "First in, first out (shuffled pre-queue in front)"
    RANDOM = "random", "Random draw among everyone waiting, each tick"
    PASSTHROUGH = "passthrough", "Pass-through: admit on join, up to max active"


class SessionMode(models.TextChoices):
    FIXED = "fixed", "Fixed: the admission's life (token TTL)"
    SLIDING = "sliding", "Sliding: renewed by activity seen at the gate, up to a hard cap"


class EntryPolicy(models.TextChoices):
    OPEN = "open", "Open: every logged-in fan may join"
    INVITE_ONLY = "invite_only", "Invite only: a signed enqueue token from the ticketing site is required"
    CODES = "codes", "Access codes: each uploaded code holds at most one place"
    REJECT = "reject", "Reject: the sale is closed or under maintenance; nobody joins"


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
    queueing_method = models.CharField(
        max_length=16, choices=QueueingMethod.choices, default=QueueingMethod.FIFO,
        help_text="fifo: order of arrival; random: each tick draws at random among those waiting; "
                  "passthrough: everyone admitted at once, subject to max active.",
    )
    prequeue_opens_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Optional: joining is refused before this; between it and the sale start fans join the pre-queue.",
    )
    health_check_url = models.URLField(
        max_length=500, blank=True, validators=[URLValidator(schemes=["http", "https"])],
        help_text="Optional: admission pauses by itself while this URL does not answer 2xx.",
    )
    pow_difficulty = models.PositiveSmallIntegerField(
        default=0, validators=bounded("pow_difficulty"),
        help_text="Proof of work on join: leading zero bits required (0 = off; 16 takes a browser about 1 s).",
    )
    draining = models.BooleanField(
        default=False, help_text="Draining: no new joins; everyone already waiting is still admitted."
    )
    admit_per_minute = models.PositiveIntegerField(default=60, validators=bounded("admit_per_minute"))
    max_active = models.PositiveIntegerField(
        default=500,
        validators=bounded("max_active"),
        help_text="Most fans holding a live admission (issued, not expired, not released) at once.",
    )
    token_ttl_seconds = models.PositiveIntegerField(
        default=600, validators=bounded("token_ttl_seconds"),
        help_text="How long an admission token is valid: 30 seconds to 24 hours.",
    )
    reservation_url = models.URLField(
        max_length=500,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Admitted fans are sent here with ?token=<admission JWT>.",
    )
    # --- a protected site's session (the gate, issue 15) ---
    session_mode = models.CharField(
        max_length=16, choices=SessionMode.choices, default=SessionMode.FIXED,
        help_text="fixed: an admission lets a fan use the protected site for the token's life; sliding: for "
                  "session idle seconds after the last request seen at the gate, up to session max seconds.",
    )
    session_idle_seconds = models.PositiveIntegerField(
        default=900, validators=bounded("session_idle_seconds"),
        help_text="Sliding sessions: the slot is freed this long after the fan's last request at the gate.",
    )
    session_max_seconds = models.PositiveIntegerField(
        default=3600, validators=bounded("session_max_seconds"),
        help_text="Sliding sessions: the hard cap, counted from the admission, however active the fan is.",
    )
    # --- who may join (issue 16) ---
    entry_policy = models.CharField(max_length=16, choices=EntryPolicy.choices, default=EntryPolicy.OPEN)
    enqueue_key = models.TextField(
        blank=True,
        help_text="Invite only: the secret (or public key) with which the ticketing site signs enqueue tokens.",
    )
    closed_message = models.TextField(
        blank=True, help_text="Reject: what the waiting room says instead (the sale is closed, maintenance...).",
    )
    # --- what the waiting crowd is told (issue 16) ---
    crowd_message = models.TextField(
        blank=True, help_text="Shown at once to every waiting fan until cleared (plain text).",
    )
    crowd_message_translations = models.JSONField(
        default=dict, blank=True, help_text='Optional, per language: {"de": "..."}; others see the text above.',
    )
    crowd_message_updated_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sale_starts_at", "id"]
        # The same BOUNDS in the database: a value written past the validators (a queryset update, SQL) is
        # refused too, rather than failing every join and tick later.
        constraints = [
            models.CheckConstraint(condition=models.Q(**{f"{field}__gte": low, f"{field}__lte": high}),
                                   name=f"event_{field}_in_bounds")
            for field, (low, high) in BOUNDS.items()
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = self._unique_slug()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        super().clean()
        if self.prequeue_opens_at and self.sale_starts_at and self.prequeue_opens_at > self.sale_starts_at:
            raise ValidationError({"prequeue_opens_at": "The pre-queue must open before the sale starts."})

    def _unique_slug(self) -> str:
        base = slugify(self.name)[:180] or "event"
        slug, n = base, 1
        while Event.objects.filter(slug=slug).exclude(pk=self.pk).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug

    def sale_open(self, now=None) -> bool:
        return (now or timezone.now()) >= self.sale_starts_at


class ProtectedRoute(models.Model):
    """A host and path prefix of a site the gate guards for this event (longest prefix wins across events)."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="routes")
    host = models.CharField(max_length=253, help_text="As visitors type it, lowercase; with :port unless 80/443.")
    path_prefix = models.CharField(max_length=500, default="/", help_text="Starts with /; / guards the whole host.")

    class Meta:
        ordering = ["host", "path_prefix"]
        constraints = [models.UniqueConstraint(fields=["host", "path_prefix"], name="one_event_per_route")]

    def __str__(self) -> str:
        return f"{self.host}{self.path_prefix}"


class BypassKind(models.TextChoices):
    ADDRESS = "address", "Client address or CIDR"
    PATH_PREFIX = "path_prefix", "Path starts with"
    PATH_SUFFIX = "path_suffix", "Path ends with"
    HEADER = "header", "Request header equals"
    COOKIE = "cookie", "Cookie equals"
    STAFF = "staff", "Staff users"


class BypassRule(models.Model):
    """Traffic the gate lets through without a queue (and without counting against max active); in order."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="bypass_rules")
    position = models.PositiveSmallIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=BypassKind.choices)
    name = models.CharField(max_length=100, blank=True, help_text="Header or cookie name (those kinds only).")
    value = models.CharField(max_length=500, blank=True,
                             help_text="Address/CIDR, path prefix or suffix, or the header's or cookie's value.")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["event", "position", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name} {self.value}".strip()


class AccessCode(models.Model):
    """An operator's unique code for an event whose entry policy is `codes`: it holds at most one place."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="access_codes")
    code = models.CharField(max_length=64)
    used_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="access_codes")
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "code"], name="one_code_per_event")]
        indexes = [models.Index(fields=["event", "used_at"], name="access_code_used_idx")]

    def __str__(self) -> str:
        return self.code


class EnqueueTokenUse(models.Model):
    """An invite-only event's enqueue token, spent: its unique id can never be used again."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="enqueue_token_uses")
    jti = models.CharField(max_length=128)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                             related_name="enqueue_token_uses")
    used_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "jti"], name="enqueue_token_used_once")]
