"""The provably fair draw (issue 19, docs/ARCHITECTURE.md "The provably fair draw"): every pre-queue key and
every `random` tick's draw derived from the event's committed seed, the reveal rule, and the record of the draw.

The seed (`Event.draw_seed`, 32 bytes in hex) and its commitment (`Event.draw_commitment`, SHA-256 of the
bytes) belong to the event; this module is the only one that uses the seed, and `revealed_seed` the only way
it leaves QMS: after the opening.
"""

from __future__ import annotations

import hashlib
import hmac

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from events.models import Event

from .models import Draw, DrawEntry
from .store import get_store

ALGORITHM = "hmac-sha256-v1"
KEY_BYTES = 8  # the key: the HMAC's first 8 bytes, read as a fraction of 2**64
TICK_SEED_MODULUS = 2**31  # the stores' draw seed range (Redis's math.randomseed takes 31 bits)
ENTRIES_WRITE_BATCH = 5_000


def _mac(event: Event, message: str) -> bytes:
    return hmac.new(bytes.fromhex(event.draw_seed), message.encode(), hashlib.sha256).digest()


def key_hex(event: Event, user_id: int) -> str:
    """The fan's key as published in the draw's entries: HMAC-SHA256(seed, "<event>:<user>")[:8], in hex."""
    return _mac(event, f"{event.id}:{user_id}")[:KEY_BYTES].hex()


def key_value(key: str) -> float:
    """The key's place in [0, 1]: the 8 bytes as an integer over 2**64 (the queue's score; ties by ticket)."""
    return int(key, 16) / 2**64


def prequeue_key(event: Event, user_id: int) -> float:
    """The pre-queue score of this fan: the same on every join, unknown to anyone until the seed is revealed."""
    return key_value(key_hex(event, user_id))


def tick_seed(event: Event, draw_number: int) -> int:
    """A `random` method tick's draw seed: HMAC-SHA256(seed, "<event>:tick:<draw number>")[:8] mod 2**31.

    The draw number is the serving watermark the tick starts from (what the previous tick broadcast as
    `serving`), so each draw's randomness is fixed by the committed seed and public once it is revealed."""
    return int.from_bytes(_mac(event, f"{event.id}:tick:{draw_number}")[:KEY_BYTES], "big") % TICK_SEED_MODULUS


def revealed(event: Event) -> bool:
    """The seed is public from the opening on: every pre-queue key is fixed by then."""
    return event.sale_open()


def revealed_seed(event: Event) -> str | None:
    """The seed in hex once revealed, None before: the one way it leaves QMS."""
    return event.draw_seed if revealed(event) else None


# Events whose draw this process has seen recorded, by (id, creation time): a flushed test database's id
# handed out again is another event.
_recorded: set[tuple[int, object]] = set()


def record_at_opening(event: Event) -> None:
    """Write the pre-queue's draw (rank in the queue's own order, ticket, key, user) once, at the first tick after
    the opening and before it admits anyone. Later ticks pay one set lookup; the tick's lease and the one-row
    `Draw` make a second tick write nothing."""
    marker = (event.pk, event.created_at)
    if marker in _recorded or not revealed(event):
        return
    if not Draw.objects.filter(event=event).exists():
        order = get_store().prequeue_order(event.id)
        with transaction.atomic():
            _, created = Draw.objects.get_or_create(event=event, defaults={"recorded_at": timezone.now(),
                                                                          "size": len(order)})
            if created:
                DrawEntry.objects.bulk_create(
                    [DrawEntry(event=event, rank=rank, ticket=ticket, key=key_hex(event, user_id), user_id=user_id)
                     for rank, (user_id, ticket) in enumerate(order, start=1)], batch_size=ENTRIES_WRITE_BATCH)
    _recorded.add(marker)


def recorded(event: Event) -> Draw | None:
    return Draw.objects.filter(event=event).first()


# Per process: each recorded event's highest drawn ticket (a record never changes), keyed like `_recorded`.
_highest_drawn: dict[tuple[int, object], int] = {}


def may_have_rank(event: Event, ticket: int) -> bool:
    """Whether a fan holding `ticket` can be in the event's draw. Tickets count joins, so everyone who joined
    after the opening holds a higher one than every drawn fan: their status (polled every few seconds by HTTP
    clients) asks the database nothing. Until the record exists, any fan may be (and `rank_of` answers None)."""
    marker = (event.pk, event.created_at)
    highest = _highest_drawn.get(marker)
    if highest is None:
        if not Draw.objects.filter(event=event).exists():
            return True
        highest = DrawEntry.objects.filter(event=event).aggregate(highest=Max("ticket"))["highest"] or 0
        _highest_drawn[marker] = highest
    return ticket <= highest


def rank_of(event: Event, user_id: int) -> int | None:
    """The fan's place at the opening, if they were drawn from the pre-queue (kept after their admission)."""
    return DrawEntry.objects.filter(event=event, user_id=user_id).values_list("rank", flat=True).first()


def entries(event: Event):
    """The recorded draw in order, without user ids: (rank, ticket, key) rows, read in chunks."""
    return DrawEntry.objects.filter(event=event).order_by("rank").values_list("rank", "ticket", "key").iterator(
        chunk_size=ENTRIES_WRITE_BATCH)


def summary(event: Event) -> dict:
    """What anyone may know of the draw now (`GET /api/events/<id>/draw/`): the seed only once revealed; the
    pre-queue's size as recorded at the opening, or as it stands before it (None in between, for a second)."""
    record = recorded(event) if revealed(event) else None
    size = record.size if record else (None if revealed(event) else get_store().snapshot(event.id).waiting)
    return {"algorithm": ALGORITHM, "commitment": event.draw_commitment, "seed": revealed_seed(event),
            "prequeue_size": size, "opened": revealed(event), "recorded": record is not None}
