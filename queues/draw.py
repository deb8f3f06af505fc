"""The provably fair draw (issue 19, docs/ARCHITECTURE.md "The provably fair draw"): every pre-queue key and
every `random` tick's draw derived from the event's committed seed, the reveal rule, and the record of the draw.

The seed (`Event.draw_seed`, 32 bytes in hex) and its commitment (`Event.draw_commitment`, SHA-256 of the
bytes) belong to the event; this module is the only one that uses the seed, and `revealed_seed` the only way
it leaves QMS: after the opening.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime

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


# Events whose draw this process has seen frozen, by (id, creation time): a flushed test database's id handed
# out again is another event.
_frozen: set[tuple[int, object]] = set()


def freeze_at_opening(event: Event) -> None:
    """At the first tick after the opening, before its first pop: fix the pre-queue's draw as it stands (the
    store copies each fan's key and ticket aside, `freeze_prequeue`). That copy is all the exact record needs:
    the order follows from the keys, and the rows are written from it later, off the tick (`record`). Later
    ticks pay one set lookup; the tick's lease makes a second tick copy nothing."""
    marker = (event.pk, event.created_at)
    if marker in _frozen or not revealed(event):
        return
    store = get_store()
    if store.frozen_prequeue(event.id) is None and not Draw.objects.filter(event=event).exists():
        store.freeze_prequeue(event.id, at=time.time())
    _frozen.add(marker)


def record_batch(event: Event) -> bool:
    """Write the frozen draw's next rows (rank, ticket, key, user), one transaction of up to
    `ENTRIES_WRITE_BATCH`; True once the record is complete. Resumable and idempotent: it goes on after the
    highest rank written, and a batch written twice (two recorders) keeps the first. The `Draw` row comes with
    the last batch, so the record is public (`recorded`) only whole."""
    if Draw.objects.filter(event=event).exists():
        return True
    store = get_store()
    at, size = store.frozen_prequeue(event.id)
    written = DrawEntry.objects.filter(event=event).aggregate(ranks=Max("rank"))["ranks"] or 0
    order = store.frozen_prequeue_slice(event.id, written, ENTRIES_WRITE_BATCH)
    if not order and written < size:
        raise RuntimeError(f"the frozen draw of event {event.id} is gone after {written} of {size} rows")
    with transaction.atomic():
        DrawEntry.objects.bulk_create(
            [DrawEntry(event=event, rank=rank, ticket=ticket, key=key_hex(event, user_id), user_id=user_id)
             for rank, (user_id, ticket) in enumerate(order, start=written + 1)], ignore_conflicts=True)
        complete = written + len(order) >= size
        if complete:
            Draw.objects.get_or_create(event=event, defaults={"recorded_at": datetime.fromtimestamp(at, UTC),
                                                              "size": size})
    return complete


def record(event: Event) -> bool:
    """Write the draw's record to its end if the draw is frozen and not yet recorded; True if it is recorded."""
    frozen = get_store().frozen_prequeue(event.id)
    if frozen is None:
        return Draw.objects.filter(event=event).exists()
    for _ in range(frozen[1] // ENTRIES_WRITE_BATCH + 2):  # every batch moves on: a record that does not, stops
        if record_batch(event):
            get_store().drop_frozen_prequeue(event.id)
            return True
    raise RuntimeError(f"the draw of event {event.id} was not recorded in {frozen[1]} rows")


def record_opened() -> int:
    """Record every opened event's draw that is not yet recorded (a Celery beat task, or the embedded server's
    loop): after a crash the next run goes on where the last stopped. Returns how many were completed."""
    return sum(record(event) for event in Event.objects.filter(draw__isnull=True,
                                                               sale_starts_at__lte=timezone.now()))


def recorded(event: Event) -> Draw | None:
    return Draw.objects.filter(event=event).first()


# Per process: each recorded event's highest drawn ticket (a record never changes), keyed like `_frozen`.
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
    """The fan's place at the opening, if they were drawn from the pre-queue (kept after their admission): read
    from the record once it is complete, None before."""
    return DrawEntry.objects.filter(event=event, user_id=user_id, event__draw__isnull=False).values_list(
        "rank", flat=True).first()


def entries(event: Event):
    """The recorded draw in order, without user ids: (rank, ticket, key) rows, read in chunks."""
    return DrawEntry.objects.filter(event=event).order_by("rank").values_list("rank", "ticket", "key").iterator(
        chunk_size=ENTRIES_WRITE_BATCH)


def summary(event: Event) -> dict:
    """What anyone may know of the draw now (`GET /api/events/<id>/draw/`): the seed only once revealed; the
    pre-queue's size as drawn at the opening (None until the first tick after it), or as it stands before it."""
    record = recorded(event) if revealed(event) else None
    if record:
        size = record.size
    elif revealed(event):
        size = (get_store().frozen_prequeue(event.id) or (None, None))[1]
    else:
        size = get_store().snapshot(event.id).waiting
    return {"algorithm": ALGORITHM, "commitment": event.draw_commitment, "seed": revealed_seed(event),
            "prequeue_size": size, "opened": revealed(event), "recorded": record is not None}
