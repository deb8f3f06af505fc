"""The per-process fan-out of event broadcasts (queues/realtime/fanout.py)."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer

from events.models import Event
from queues.realtime.fanout import EventCache, ProcessFanout


def broadcast(kind: str, event: int, serving: int = 0) -> dict:
    return {"type": f"queue.{kind}", "message": {"type": kind, "event": event, "serving": serving}}


def test_a_server_behind_skips_stale_progress_but_keeps_every_other_broadcast():
    fanout = ProcessFanout(InMemoryChannelLayer())
    for message in (broadcast("progress", 1, 10), broadcast("progress", 2, 5), broadcast("paused", 1),
                    broadcast("progress", 1, 20), broadcast("progress", 1, 30)):
        fanout.enqueue(message)
    assert [(m["type"], m["message"]["event"], m["message"]["serving"]) for m in fanout.pending] == [
        ("queue.progress", 2, 5), ("queue.paused", 1, 0), ("queue.progress", 1, 30)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_storm_of_joins_reads_the_event_once_per_process(make_event):
    """Concurrent misses share one lookup: every socket of the storm gets the very same copy."""
    event = await database_sync_to_async(make_event)()
    cache = EventCache()
    copies = await asyncio.gather(*(cache.get(event.id) for _ in range(50)))
    assert copies[0].pk == event.pk
    assert all(copy is copies[0] for copy in copies)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_event_copy_is_read_again_when_too_old_even_without_a_broadcast(make_event):
    """A process not (yet) in the event group hears no broadcast: the copy still ages out."""
    now = [0.0]
    event = await database_sync_to_async(make_event)(draining=False)
    cache = EventCache(clock=lambda: now[0])
    assert (await cache.get(event.id)).draining is False
    await database_sync_to_async(Event.objects.filter(pk=event.pk).update)(draining=True)
    now[0] += EventCache.MAX_AGE_SECONDS / 2
    assert (await cache.get(event.id)).draining is False  # young enough: no database
    now[0] += EventCache.MAX_AGE_SECONDS
    assert (await cache.get(event.id)).draining is True
