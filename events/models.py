"""Events on sale: the durable configuration of each event's waiting room."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from .enqueue_keys import UnusableKey, verification_key

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


def new_draw_seed() -> str:
    """The event's draw seed (issue 19, docs/ARCHITECTURE.md "The provably fair draw"): 32 bytes from the OS, in
    hex. Made with the event, before anyone can join, and never changed: only its commitment is public until the
    sale opens (`queues.draw` derives every pre-queue key from it and reveals it)."""
    return secrets.token_hex(32)


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
    # --- the provably fair draw (issue 19) ---
    # Secret until the sale opens: editable=False keeps it out of every model form, and no serializer lists it.
    draw_seed = models.CharField(max_length=64, default=new_draw_seed, editable=False)
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
        check_session_limits(self.session_idle_seconds, self.session_max_seconds)
        self._check_enqueue_key()

    def _check_enqueue_key(self) -> None:
        """The admin form refuses what the staff API refuses (events/serializers.py): a key enqueue tokens
        cannot be verified with, and an invite-only event without one."""
        if self.enqueue_key:
            try:
                verification_key(self.enqueue_key)
            except UnusableKey as unusable:
                raise ValidationError({"enqueue_key": ValidationError(str(unusable), code="invalid_key")}) from None
            self.enqueue_key = self.enqueue_key.strip()
        elif self.entry_policy == EntryPolicy.INVITE_ONLY:
            raise ValidationError({"enqueue_key": ValidationError(
                # Not code="required": a model form shows its own "This field is required." for that code.
                "An invite-only event needs the key its enqueue tokens are signed with.", code="missing_key")})

    def _unique_slug(self) -> str:
        base = slugify(self.name)[:180] or "event"
        slug, n = base, 1
        while Event.objects.filter(slug=slug).exclude(pk=self.pk).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug

    def sale_open(self, now=None) -> bool:
        return (now or timezone.now()) >= self.sale_starts_at

    @property
    def draw_commitment(self) -> str:
        """SHA-256 of the draw seed's 32 bytes, in hex: public from the event's creation, so the seed revealed
        at the opening can be checked to be the one fixed before anyone joined."""
        return hashlib.sha256(bytes.fromhex(self.draw_seed)).hexdigest()


# --- what the gate's routes and bypass rules may hold (issue 15) ------------------------------------------
# One check per value, each refusing with a stable code: the model's clean() (admin forms) and the staff API's
# serializers (events/serializers.py) both call these, and both store the value they return, so the gate
# compares normalised strings only.

_HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_HTTP_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token: header and cookie names
_URL_PATH = re.compile(r"^/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$")  # RFC 3986 path characters, nothing else
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a % that does not start a percent-encoded byte
_DEFAULT_PORTS = ("80", "443")


def normal_host(value: str) -> str:
    """`host[:port]` as the gate compares it: lowercase, IDN in punycode, the port dropped when 80 or 443.

    Refused (`invalid_host`): a scheme, a path, userinfo, a wildcard, a trailing dot: the gate matches the
    visitor's Host exactly, so anything but a plain host would never match or would match by surprise.
    """
    refused = ValidationError("Enter a host as visitors type it, e.g. shop.example or shop.example:8443 "
                              "(no scheme, path or wildcard).", code="invalid_host")
    text = (value or "").strip().lower()
    host, port = text, ""
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise refused
        port = rest[1:]
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            raise refused from None
    elif text.count(":") == 1:
        host, port = text.split(":")
    if _bad_port(port):
        raise refused
    if not host.startswith("["):
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise refused from None
        labels = host.split(".")
        if not host or len(host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
            raise refused
    return host if port in ("", *_DEFAULT_PORTS) else f"{host}:{port}"


def _bad_port(port: str) -> bool:
    """A port after the colon that is not 1-65535 in plain digits (an empty one is no port at all)."""
    return bool(port) and not (port.isdigit() and 0 < int(port) < 65536 and port == str(int(port)))


def checked_path_prefix(value: str) -> str:
    """A path the gate matches the start of the visitor's path against (`invalid_path_prefix` otherwise):
    starts with /, URL path characters only (percent-encoded as on the wire), no `//` and no `.` or `..`
    segment (encoded or not): the gate matches the path with those resolved, so such a prefix never would."""
    segments = (value or "").replace("%2e", ".").replace("%2E", ".").split("/")
    if not _URL_PATH.match(value or "") or "//" in value or _BAD_ESCAPE.search(value) \
            or {".", ".."} & set(segments):
        raise ValidationError("Enter a path that starts with /, e.g. /tickets/ (no query, spaces, backslashes "
                              "or dot segments).", code="invalid_path_prefix")
    return value


def checked_path_suffix(value: str) -> str:
    """The end of a path (`.css`, `/healthz`): URL path characters only (`invalid_path_suffix` otherwise)."""
    if not value or not _URL_PATH.match("/" + value) or _BAD_ESCAPE.search(value):
        raise ValidationError("Enter the end of a path, e.g. .css or /healthz (URL path characters only).",
                              code="invalid_path_suffix")
    return value


def normal_network(value: str) -> str:
    """An address or CIDR network, written canonically (`10.0.0.5` is `10.0.0.5/32`); host bits set after the
    prefix length are refused (`invalid_cidr`) rather than guessed at."""
    try:
        return str(ipaddress.ip_network((value or "").strip(), strict=True))
    except ValueError:
        raise ValidationError("Enter an IP address or a CIDR network, e.g. 203.0.113.7 or 10.0.0.0/8.",
                              code="invalid_cidr") from None


def check_session_limits(idle_seconds: int | None, max_seconds: int | None) -> None:
    """A sliding session's hard cap cannot come before its first idle timeout (`session_max_below_idle`)."""
    if idle_seconds is not None and max_seconds is not None and max_seconds < idle_seconds:
        raise ValidationError({"session_max_seconds": ValidationError(
            "Session max seconds must be at least session idle seconds.", code="session_max_below_idle")})


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

    def clean(self) -> None:
        """Normalise host and path (`invalid_host`, `invalid_path_prefix`) and refuse a route another event
        already claims, naming that event (`route_taken`; the unique constraint is the last word in a race).

        The claim is reported on `host`: a field error keeps Django's generic unique-constraint message away.
        """
        super().clean()
        errors = {}
        for field, check in (("host", normal_host), ("path_prefix", checked_path_prefix)):
            try:
                setattr(self, field, check(getattr(self, field)))
            except ValidationError as invalid:
                errors[field] = invalid
        if not errors:
            holder = self.claimed_by()
            if holder is not None:
                errors["host"] = ValidationError(
                    "%(route)s is already protected by the event \"%(event)s\" (id %(id)s).", code="route_taken",
                    params={"route": str(self), "event": holder.name, "id": holder.pk})
        if errors:
            raise ValidationError(errors)

    def claimed_by(self) -> Event | None:
        """The other event holding this host and path prefix, if one does."""
        other = (ProtectedRoute.objects.filter(host=self.host, path_prefix=self.path_prefix)
                 .exclude(event_id=self.event_id).select_related("event").first())
        return other.event if other else None


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

    def clean(self) -> None:
        """Each kind's name and value checked and normalised: what the gate compares is exactly what is stored."""
        super().clean()
        errors = {}
        try:
            self.name = self._checked_name()
        except ValidationError as invalid:
            errors["name"] = invalid
        try:
            self.value = self._checked_value()
        except ValidationError as invalid:
            errors["value"] = invalid
        if errors:
            raise ValidationError(errors)

    def _checked_name(self) -> str:
        """Header names in lowercase (they are case-insensitive), cookie names as typed; no name for the rest."""
        name = (self.name or "").strip()
        if self.kind not in (BypassKind.HEADER, BypassKind.COOKIE):
            if name:
                raise ValidationError("Only header and cookie rules have a name.", code="name_not_used")
            return ""
        if not _HTTP_TOKEN.match(name):
            raise ValidationError("Enter the header's or cookie's name (letters, digits, - and _).",
                                  code="invalid_name")
        return name.lower() if self.kind == BypassKind.HEADER else name

    def _checked_value(self) -> str:
        value = (self.value or "").strip()
        if self.kind == BypassKind.STAFF:
            if value:
                raise ValidationError("Staff rules match logged-in staff users and take no value.",
                                      code="value_not_used")
            return ""
        if self.kind == BypassKind.ADDRESS:
            return normal_network(value)
        if self.kind == BypassKind.PATH_PREFIX:
            return checked_path_prefix(value)
        if self.kind == BypassKind.PATH_SUFFIX:
            return checked_path_suffix(value)
        # A header or cookie must equal a secret the partner sends: an empty one would let anyone through.
        if not value or not value.isprintable() or (self.kind == BypassKind.COOKIE and ";" in value):
            raise ValidationError("Enter the exact value to match (printable, no ; in a cookie).",
                                  code="invalid_value")
        return value


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

    def __str__(self) -> str:
        return f"enqueue token {self.jti} event={self.event_id}"
