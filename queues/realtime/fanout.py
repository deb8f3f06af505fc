"""Event broadcasts inside one server process: one channel-layer message per process, handed to its sockets.

A Channels group with one member per socket makes channels_redis wake every
socket's own receive (a fresh queue, two tasks and a wait per socket per
message): at a thousand sockets a process that alone took about half a core
per broadcast, and every waiting fan hears one broadcast a second
(bench/load.py, py-spy). Instead each process puts one channel of its own in
the event group and hands each broadcast to its local sockets directly, with
the JSON encoded once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections import defaultdict

from channels.db import database_sync_to_async

from events.models import Event

from ..protocol import MessageType
from ..recent_events import MAX_AGE_SECONDS as EVENT_COPY_MAX_AGE
from ..recent_events import recent_events
from .publish import event_group

logger = logging.getLogger(__name__)

# Re-join the event groups this often: group membership expires, and a restarted Redis forgets it.
REFRESH_SECONDS = 30.0
RETRY_SECONDS = 1.0
SOCKETS_PER_SLICE = 250  # a broadcast to thousands of sockets yields to the event loop between slices
SWEEP_SECONDS = 1.0  # how often the sockets are asked whether they have been silent too long


class EventCache:
    """This process's copy of each event its sockets join, so a join reads no database.

    An entry is dropped when the fan-out hears any broadcast for its event (every change an operator makes
    is followed by one: the tick's `progress` every second, `paused`/`resumed`, `reset`), and is never older
    than MAX_AGE_SECONDS either (a process that is not yet in the event group hears nothing). Concurrent
    misses share one lookup: a storm's first thousand sockets make one database trip, not a thousand.
    """

    MAX_AGE_SECONDS = EVENT_COPY_MAX_AGE  # one rule for both of a process's copies

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.entries: dict[int, tuple[float, asyncio.Future]] = {}

    async def get(self, event_id: int):
        """The event (`events.models.Event`), or None if there is none with this id."""
        entry = self.entries.get(event_id)
        if entry is None or self.clock() - entry[0] > self.MAX_AGE_SECONDS:
            lookup = asyncio.ensure_future(_read_event(event_id))
            entry = self.entries[event_id] = (self.clock(), lookup)
        try:
            return await asyncio.shield(entry[1])
        except Exception:
            if self.entries.get(event_id) is entry:  # a failed lookup is not kept: the next join asks again
                del self.entries[event_id]
            raise

    def invalidate(self, event_id: int | None) -> None:
        self.entries.pop(event_id, None)


async def _read_event(event_id: int) -> Event | None:
    return await database_sync_to_async(lambda: Event.objects.filter(pk=event_id).first(),
                                        thread_sensitive=False)()


class ProcessFanout:
    """The sockets of each event in this process, and the one channel that hears the event groups for them."""

    def __init__(self, layer):
        self.layer = layer
        self.events = EventCache()
        self.audiences: dict[int, set] = defaultdict(set)  # event id -> consumers (each has `hear(message, text)`)
        self.channel: str | None = None
        self.listener: asyncio.Task | None = None
        self.deliverer: asyncio.Task | None = None
        self.sweeper: asyncio.Task | None = None
        self.pending: list[dict] = []  # heard, not yet handed to the sockets
        self.wakeup = asyncio.Event()

    async def add(self, event_id: int, consumer) -> None:
        if self.channel is None:
            # The default prefix: channels_redis reads all of a process's channels from one list
            # ("specific.<process>!"); a channel of another prefix would hold its receive lock on another.
            self.channel = await self.layer.new_channel()
            self.listener = asyncio.ensure_future(self.listen())
            self.deliverer = asyncio.ensure_future(self.deliver_pending())
            self.sweeper = asyncio.ensure_future(self.sweep_silence())
        if not self.audiences[event_id]:
            await self.layer.group_add(event_group(event_id), self.channel)
        self.audiences[event_id].add(consumer)

    def discard(self, event_id: int, consumer) -> None:
        """The channel stays in the group: a message for an empty audience costs nothing, and leaving it
        could race the next socket's join. The group's expiry drops it once no socket re-joins."""
        self.audiences[event_id].discard(consumer)

    async def listen(self) -> None:
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        while True:
            try:
                message = await asyncio.wait_for(self.layer.receive(self.channel), REFRESH_SECONDS)
            except TimeoutError:
                message = None
            except Exception:  # channel layer down (Redis restarting): sockets fall back to their silence pulls
                logger.warning("fan-out receive failed; retrying", exc_info=True)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if message is not None:
                self.enqueue(message)
            if loop.time() - refreshed >= REFRESH_SECONDS:
                refreshed = loop.time()
                await self.refresh()

    def enqueue(self, message: dict) -> None:
        """Queue a broadcast for the sockets. A newer `progress` replaces an older one of the same event still
        waiting: a server behind (a storm, a slow client) skips stale places instead of falling further behind.
        Every broadcast follows a change of the event or its queue: this process's copy of the event is dropped."""
        self.events.invalidate(message["message"].get("event"))
        recent_events.forget(message["message"].get("event"))  # the HTTP requests' copy in this process too
        if message["message"]["type"] == MessageType.PROGRESS:
            event_id = message["message"].get("event")
            self.pending = [m for m in self.pending if not (m["message"]["type"] == MessageType.PROGRESS
                                                            and m["message"].get("event") == event_id)]
        self.pending.append(message)
        self.wakeup.set()

    async def deliver_pending(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending:
                await self.deliver(self.pending.pop(0))

    async def deliver(self, message: dict) -> None:
        event_id = message["message"].get("event")
        audience = list(self.audiences.get(event_id, ()))
        if not audience:
            return
        text = json.dumps(message["message"])
        for index, consumer in enumerate(audience, 1):
            try:
                await consumer.hear(message, text)
            except Exception:  # one broken socket must not cost the others their broadcast
                logger.exception("broadcast to one socket failed")
            if index % SOCKETS_PER_SLICE == 0:
                await asyncio.sleep(0)  # let admissions, joins and newer broadcasts in meanwhile

    async def sweep_silence(self) -> None:
        """One timer for the process's sockets (each has `check_silence()`), not one task per socket.
        It needs no channel layer: it is what still works when the layer is lost."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            for audience in list(self.audiences.values()):
                for index, consumer in enumerate(list(audience), 1):
                    try:
                        consumer.check_silence()
                    except Exception:
                        logger.exception("silence check of one socket failed")
                    if index % (SOCKETS_PER_SLICE * 4) == 0:
                        await asyncio.sleep(0)

    async def refresh(self) -> None:
        for event_id, audience in list(self.audiences.items()):
            if not audience:
                continue
            try:
                await self.layer.group_add(event_group(event_id), self.channel)
            except Exception:
                logger.warning("fan-out refresh failed for event %s", event_id, exc_info=True)


_loop_locals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def loop_local(key, make):
    """One `make()` per event loop and key: state shared by a server process's sockets (tests run several
    event loops in one process, and asyncio objects belong to one loop)."""
    values = _loop_locals.setdefault(asyncio.get_running_loop(), {})
    if key not in values:
        values[key] = make()
    return values[key]


def process_fanout(layer) -> ProcessFanout:
    """This event loop's fan-out for this channel layer."""
    return loop_local(("fanout", id(layer)), lambda: ProcessFanout(layer))
