"""A short per-process copy of each event a fan's HTTP request reads (status poll, join, leave), so those
requests cost no event query in an on-sale storm.

A copy is at most `MAX_AGE_SECONDS` old. It is dropped at once when this process saves or deletes the event
(the signals below), and when this process's socket fan-out hears a broadcast for it (every change an operator
makes is followed by one). An HTTP-only process (gunicorn) hears no broadcasts: an event paused, resumed or
reset by another process reaches its fans within the max age. Operator operations and event CRUD read the
row itself (`queues.api.get_event`), never this copy. The sockets' own copy (queues/realtime/fanout.py,
`EventCache`) has the same max age and shares its lookups between concurrent joins on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db.models.signals import post_delete, post_save

from events.models import Event

MAX_AGE_SECONDS = 2.0
_MISSING = object()


class RecentEvents:
    """Events by id (or None for an id with no event), each read at most `max_age` seconds ago."""

    def __init__(self, *, max_age: float = MAX_AGE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.max_age, self.clock = max_age, clock
        self._events: dict[int, tuple[Event | None, float]] = {}
        # Request threads read and write; a broadcast on the event loop invalidates: dict work under the lock.
        self._lock = threading.Lock()
        self.loads = 0  # database lookups made (to watch the copy work)

    def get(self, event_id: int) -> Event | None:
        """The event `event_id` as read at most `max_age` seconds ago (one query if not), or None if none."""
        with self._lock:
            entry = self._events.get(event_id, _MISSING)
            if entry is not _MISSING and self.clock() < entry[1]:
                return entry[0]
        self.loads += 1
        # Read outside the lock: one slow query must not hold up the other events' requests. Two threads missing
        # at once both read, and the later copy wins: both are fresh.
        event = Event.objects.filter(pk=event_id).first()
        with self._lock:
            self._events[event_id] = (event, self.clock() + self.max_age)
            if len(self._events) > 10_000:  # ids that name no event must not grow the copy without bound
                now = self.clock()
                self._events = {k: v for k, v in self._events.items() if now < v[1]}
        return event

    def forget(self, event_id: int | None) -> None:
        with self._lock:
            self._events.pop(event_id, None)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()


recent_events = RecentEvents()


T = TypeVar("T")


class RecentCopy(Generic[T]):
    """One whole reading (every route of every event, every active webhook endpoint), made again when it is
    `max_age` seconds old or dropped (`clear`, from the readers' save signals); one reader refreshes while the
    others wait for its copy rather than query too."""

    def __init__(self, read: Callable[[], T], *, max_age: float = MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic):
        self.read, self.max_age, self.clock = read, max_age, clock
        self._copy: T | None = None
        self._fresh_until = 0.0
        self._lock = threading.Lock()
        self.loads = 0  # readings made (to watch the copy work)

    def current(self) -> T:
        copy = self._copy
        if copy is not None and self.clock() < self._fresh_until:
            return copy
        with self._lock:
            if self._copy is None or self.clock() >= self._fresh_until:
                self.loads += 1
                self._copy = self.read()
                self._fresh_until = self.clock() + self.max_age
            return self._copy

    def clear(self) -> None:
        with self._lock:
            self._copy, self._fresh_until = None, 0.0


def _forget_saved_event(sender, instance, **kwargs) -> None:
    recent_events.forget(instance.pk)


post_save.connect(_forget_saved_event, sender=Event, dispatch_uid="recent_events.save")
post_delete.connect(_forget_saved_event, sender=Event, dispatch_uid="recent_events.delete")
