"""The waiting-room socket: an adapter between the client and `queues.admission`.

It authenticates, calls the service (`admission.enter`, `status`, `leave`), joins the groups and forwards
what is published as JSON frames (queues/realtime/messages.py). What a broadcast means for this fan, and
when to pull the status, is `PlaceTracker`'s (queues/realtime/place.py). Close codes are
`queues.protocol.CloseCode` (documented in docs/API.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from events.models import Event

from .. import admission, entry, metrics
from ..client_address import socket_request
from ..failure_counts import address_key
from ..protocol import CloseCode, FanState, MessageType
from ..refusals import EventNotFound, Refusal
from ..store import get_store
from .auth import JWT_SUBPROTOCOL, origin_allowed
from .fanout import loop_local, process_fanout
from .messages import (
    admitted_message,
    announcement_message,
    error_message,
    left_message,
    pong_message,
    queued_message,
    superseded_message,
)
from .place import PlaceTracker

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4096
# Silence pulls at once per server process. When a busy server delivers broadcasts late, every socket
# falls silent together: unbounded, their pulls would add thousands of database trips to that load.
SILENCE_PULLS_AT_ONCE = 4


def gate(name: str, size: int) -> asyncio.Semaphore:
    """A limit shared by this process's sockets."""
    return loop_local(("gate", name), lambda: asyncio.Semaphore(size))


def joins_gate() -> asyncio.Semaphore:
    """Joins and leaves in flight at once per process. Each holds channel-layer connections: in a storm of
    thousands of sockets, unbounded, they emptied the pool and redis-py raised MaxConnectionsError, which
    closed the socket without a frame (7,571 of 10,000 in bench/load.py). Past the limit, sockets wait."""
    return gate("joins", settings.QMS_JOINS_AT_ONCE)


class BadFrame(Exception):
    """A client frame the socket cannot use: answered with an `error` frame, the socket stays open."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


class QueueConsumer(AsyncJsonWebsocketConsumer):
    event: Event | None = None
    user = None
    finished = False  # admitted, left or superseded: no grace clock on close
    closing = False  # we sent the close, or the socket is gone: nothing more is sent
    place: PlaceTracker | None = None  # set once queued
    pull: asyncio.Task | None = None  # a status pull started by a broadcast or by silence
    event_id: int | None = None  # in this process's fan-out for this event
    early: list | None = None  # broadcasts heard while the join was still running, replayed after `queued`
    counted_open = False  # counted in the open-sockets gauge, so counted out on disconnect

    async def connect(self):
        subprotocol = JWT_SUBPROTOCOL if JWT_SUBPROTOCOL in (self.scope.get("subprotocols") or []) else None
        await self.accept(subprotocol)
        metrics.OPEN_WEBSOCKETS.inc()
        self.counted_open = True
        if not origin_allowed(self.scope):
            return await self.end(error_message("origin_refused", "This origin may not open the queue."),
                                  CloseCode.ORIGIN_REFUSED)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.end(error_message("not_authenticated", "Log in first."), CloseCode.NOT_AUTHENTICATED)
        self.user = user
        async with joins_gate():
            await self.join_queue(self.scope["url_route"]["kwargs"]["event_id"])

    async def join_queue(self, event_id: int) -> None:
        # The event's broadcasts come before the join, so nothing published right after it can miss this socket.
        self.early, self.event_id = [], event_id
        fanout = process_fanout(self.channel_layer)
        await fanout.add(event_id, self)
        try:
            event = await fanout.events.get(event_id)  # this process's copy: no database in a storm
            if event is None:
                raise EventNotFound()
            joined = None
            if not admission.socket_join_needs_service(event):
                # On the event loop, one store round trip: queued and marked as the fan's socket.
                joined = await admission.join_socket(event, self.user, self.channel_name)
            if joined is None or joined.status is None:
                # The full service in one trip to a worker thread (off the shared thread: a storm's joins run
                # in parallel): proof of work, refusals, the ledger of an admitted fan, the admit-on-join tick.
                event, status, replaced = await database_sync_to_async(self._join, thread_sensitive=False)(event_id)
                replaced = joined.replaced if joined is not None else replaced
            else:
                status, replaced = joined.status, joined.replaced
        except Refusal as refusal:  # every "no" of the service, mapped to the socket here once
            return await self.end(error_message(**refusal.body()), refusal.close_code)
        self.event = event
        if replaced is not None:
            # One device per user: the store named the fan's previous socket; it is told to go, on whichever
            # process holds it. Its late close does not start the grace clock (the store's socket is this one).
            await self.channel_layer.send(replaced, {"type": "queue.superseded", "by": self.channel_name})
        if status.state == FanState.ADMITTED:
            return await self.end(admitted_message(event, status.admission), CloseCode.ADMITTED)
        await self.send_json(queued_message(status))
        if event.crowd_message:  # the operator's message, broadcast before this socket came: in its first frames
            await self.send_json(announcement_message(event))
        self.place = PlaceTracker(status)
        early, self.early = self.early, None
        for message, text in early:
            await self.hear(message, text)

    def _join(self, event_id: int):
        """(event, status, replaced socket): the fan through the event's front door (`admission.enter`, with
        the proof of work from `?pow_challenge&pow_solution` and the entry policy's `?enqueue_token` or
        `?access_code`) and this socket marked as theirs."""
        event = Event.objects.filter(pk=event_id).first()  # fresh: the service decides on the event as it is
        if event is None:
            raise EventNotFound()
        query = {name: values[0] for name, values in
                 parse_qs(self.scope.get("query_string", b"").decode("latin-1")).items()}
        status = admission.enter(event, self.user, pow_challenge=query.get("pow_challenge"),
                                 pow_solution=query.get("pow_solution"),
                                 credentials=entry.Credentials.read(query, address_key(socket_request(self.scope))))
        replaced = get_store().mark_connected(event.id, self.user.id, self.channel_name)
        return event, status, replaced

    async def dispatch(self, message):
        """Channels' dispatch without its `aclose_old_connections()` before every message.

        That call is a trip to Channels' one shared sync thread per message per socket: 5,000 of them, one
        after another, for each progress broadcast to 5,000 sockets (measured in bench/load.py). Every
        database access of this consumer goes through `database_sync_to_async`, which closes stale
        connections itself, so the per-message call bought nothing here.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- server -> client: every frame through one guard ----------------------------------

    async def send(self, text_data=None, bytes_data=None, close=False):
        """Every frame leaves here (`send_json` and forwarded broadcasts too): none after our close, and one
        racing the client's close is dropped instead of raising into a broadcast or a pull."""
        if self.closing:
            return
        try:
            await super().send(text_data=text_data, bytes_data=bytes_data, close=close)
        except Exception as exc:  # the server's "send on a closed protocol": the disconnect is on its way
            logger.debug("dropped a frame for a closed socket: %s", exc)
            self.closing = True

    async def close(self, code=None, reason=None):
        self.closing = True
        # A plain int: Daphne refuses an IntEnum (CloseCode) as a close code and fails the socket with 1011.
        await super().close(code if code is None else int(code), reason)

    async def end(self, message: dict, close_code: int) -> None:
        """The last message of this socket (admitted, superseded, an error...), then the close that says why.
        Once: a status pull and a push may both bring the admission."""
        if self.finished:
            return
        self.finished = True
        await self.send_json(message)
        await self.close(close_code)

    async def disconnect(self, close_code):
        if self.pull is not None:
            self.pull.cancel()
        if self.event_id is not None:
            process_fanout(self.channel_layer).discard(self.event_id, self)
        if self.counted_open:
            metrics.OPEN_WEBSOCKETS.dec()
            self.counted_open = False
        if self.event is not None and not self.finished:
            async with joins_gate():
                await get_store().amark_disconnected(self.event.id, self.user.id, self.channel_name, time.time())

    # --- client -> server: Channels' receive_json path -----------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Channels' JSON receive (decode_json, then receive_json), with a bad frame answered by an `error`
        frame instead of an exception that would close the socket."""
        if self.place is None or self.finished:  # not queued (yet), or done: frames mean nothing
            return
        try:
            if text_data is None:
                raise BadFrame("binary_not_supported", "Send JSON text frames.")
            await self.receive_json(await self.decode_json(text_data), **kwargs)
        except BadFrame as bad:
            await self.send_json(error_message(bad.code, bad.detail))

    @classmethod
    async def decode_json(cls, text_data: str) -> dict:
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            raise BadFrame("frame_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
        try:
            content = json.loads(text_data)
        except ValueError:
            raise BadFrame("malformed_json", "The frame is not JSON.") from None
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            raise BadFrame("invalid_message", "Send an object with a string `type`.")
        return content

    async def receive_json(self, content: dict, **kwargs):
        handler = {"ping": self.on_ping, "leave": self.on_leave}.get(content["type"])
        if handler is None:
            raise BadFrame("unknown_type", "Known types: ping, leave.")
        await handler(content)

    async def on_ping(self, content):
        await self.send_json(pong_message())

    async def on_leave(self, content):
        left = await database_sync_to_async(admission.leave)(self.event, self.user)
        await self.end(left_message(left), CloseCode.LEFT)

    # --- group events -> client --------------------------------------------------

    async def queue_admitted(self, message):
        if not self.closing:
            await self.end(message["message"], CloseCode.ADMITTED)

    async def queue_superseded(self, message):
        if message["by"] == self.channel_name or self.closing:
            return
        logger.info("supersede", extra={"event_id": self.scope["url_route"]["kwargs"]["event_id"],
                                        "user_id": self.user.id})
        await self.end(superseded_message(), CloseCode.SUPERSEDED)

    async def hear(self, message: dict, text: str) -> None:
        """An event broadcast (progress, paused, resumed, reset, announcement) from this process's fan-out
        (queues/realtime/fanout.py); `text` is its JSON, encoded once for all sockets."""
        if self.early is not None:  # still joining (or refused): `queued` goes first
            self.early.append((message, text))
            return
        if self.closing:  # `early` is None only once queued, so the place is known
            return
        kind = message["message"]["type"]
        if kind == MessageType.RESET:
            return await self.end(message["message"], CloseCode.RESET)
        if kind == MessageType.PROGRESS:
            self.place.heard()
        await self.send(text_data=text)
        if (kind == MessageType.PROGRESS and self.pull is None and not self.closing
                and self.place.turn_may_have_come(message["message"])):
            # In the background: the fan-out hands this broadcast to every other socket meanwhile.
            self.pull = asyncio.ensure_future(self.pull_status())

    def check_silence(self) -> None:
        """Called by the process's silence sweep (queues/realtime/fanout.py) rather than by a timer task per
        socket (1.6 KiB each). A socket that hears nothing (its server lost the channel layer, e.g. Redis
        restarted) still learns its admission: it pulls its status from the store and ledger, which need no
        channel layer."""
        if self.place is not None and not self.closing and self.pull is None and self.place.silent():
            self.pull = asyncio.ensure_future(self.pull_status(after_silence=True))

    async def pull_status(self, after_silence: bool = False) -> None:
        try:
            if not after_silence:
                return await self.check_admission()
            async with gate("silence", SILENCE_PULLS_AT_ONCE):
                if not self.closing and self.place.silent():
                    await self.check_admission()
                    self.place.heard()  # the next silence pull a silence period later
        finally:
            self.pull = None

    async def check_admission(self) -> None:
        """Pull the fan's status: the `admitted` push may have been lost by the channel layer.

        channels_redis can drop a message when another consumer's receive is
        cancelled mid-BZPOPMIN (channels_redis#366); the ledger cannot lose it,
        so a fan whose turn has come reads it from there.
        """
        self.place.checked()
        try:
            self.event, status = await database_sync_to_async(self._status, thread_sensitive=False)()
        except Exception:  # database or store down for a moment: keep the socket, ask again later
            logger.warning("status pull failed event=%s user=%s", self.event.id, self.user.id, exc_info=True)
            return
        if status is None or self.closing:
            return
        if status.state == FanState.ADMITTED:
            await self.end(admitted_message(self.event, status.admission), CloseCode.ADMITTED)
        elif status.state == FanState.WAITING and self.place.remember(status):
            await self.send_json(queued_message(status))  # the exact place, to re-anchor the client

    def _status(self):
        event = Event.objects.get(pk=self.event.pk)  # fresh: the operator may have opened or paused it
        return event, admission.status(event, self.user)

