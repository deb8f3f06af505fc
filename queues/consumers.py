"""The waiting-room socket: an adapter between the client and `queues.admission`.

Close codes (documented in docs/API.md): 4000 admitted, 4001 left, 4002
superseded by another device, 4003 queue reset by the operator, 4401 not
authenticated, 4403 origin refused, 4404 unknown event, 4409 the event takes
no new joins (draining), 4428 proof of work required (the `error` frame before
it carries a challenge; queues/challenge.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from events.models import Event

from . import admission, challenge, metrics
from .auth import JWT_SUBPROTOCOL
from .fanout import loop_local, process_fanout
from .notify import admitted_message, fan_group, queued_message
from .store import get_store

logger = logging.getLogger(__name__)

CLOSE_ADMITTED = 4000
CLOSE_LEFT = 4001
CLOSE_SUPERSEDED = 4002
CLOSE_RESET = 4003
CLOSE_QUEUE_CLOSED = 4409
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_ORIGIN_REFUSED = 4403
CLOSE_UNKNOWN_EVENT = 4404
CLOSE_POW_REQUIRED = 4428

MAX_FRAME_BYTES = 4096
CHECK_INTERVAL_SECONDS = 2.0  # at most one status pull per socket this often
SILENCE_SECONDS = 5.0  # no broadcast for this long (one is due every tick): pull the status instead
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


def origin_allowed(scope) -> bool:
    """Browsers send Origin: it must name one of ALLOWED_HOSTS. Clients without Origin carry no cookie risk."""
    origin = dict(scope.get("headers", [])).get(b"origin")
    if origin is None:
        return True
    value = origin.decode("latin-1")
    if "://" not in value:
        return False
    host, _port = split_domain_port(value.split("://", 1)[1].split("/", 1)[0])
    return bool(host) and validate_host(host, settings.ALLOWED_HOSTS)


class QueueConsumer(AsyncJsonWebsocketConsumer):
    event: Event | None = None
    user = None
    joined_groups: tuple[str, ...] = ()
    finished = False  # admitted, left or superseded: no grace clock on close
    closing = False  # we sent the close: group events still queued for us are dropped
    # The place as last known exactly (from `queued` or a status check), to follow `progress` with.
    known_ahead: int | None = None
    known_served: int = 0
    place_read_at: float = 0.0  # wall clock (like a broadcast's `at`) when that place was read
    last_check: float = 0.0
    last_heard: float = 0.0
    silence_after: float = 0.0  # this socket's jittered share of SILENCE_SECONDS
    pull: asyncio.Task | None = None  # a status pull started by a broadcast
    event_id: int | None = None  # in this process's fan-out for this event
    early: list | None = None  # broadcasts heard while the join was still running, replayed after `queued`
    counted_open = False  # counted in the open-sockets gauge, so counted out on disconnect

    async def connect(self):
        subprotocol = JWT_SUBPROTOCOL if JWT_SUBPROTOCOL in (self.scope.get("subprotocols") or []) else None
        await self.accept(subprotocol)
        metrics.OPEN_WEBSOCKETS.inc()
        self.counted_open = True
        if not origin_allowed(self.scope):
            return await self.refuse("origin_refused", "This origin may not open the queue.", CLOSE_ORIGIN_REFUSED)
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse("not_authenticated", "Log in first.", CLOSE_NOT_AUTHENTICATED)
        self.user = user
        async with joins_gate():
            await self.join_queue(self.scope["url_route"]["kwargs"]["event_id"])

    async def join_queue(self, event_id: int) -> None:
        user = self.user
        fan = fan_group(event_id, user.id)
        # One device per user: whoever holds the fan group now is told to go. The fan group and the event's
        # broadcasts come before the join, so nothing published right after the join can miss this socket.
        await self.channel_layer.group_send(fan, {"type": "queue.superseded", "by": self.channel_name})
        self.joined_groups = (fan,)
        await self.channel_layer.group_add(fan, self.channel_name)
        self.early, self.event_id = [], event_id
        await process_fanout(self.channel_layer).add(event_id, self)
        try:
            # One trip to a worker thread (event, proof of work, join), off the shared thread: during an
            # on-sale storm joins run in parallel.
            event, refusal, status = await database_sync_to_async(self._join, thread_sensitive=False)(event_id)
        except Event.DoesNotExist:
            return await self.refuse("event_not_found", "No such event.", CLOSE_UNKNOWN_EVENT)
        except admission.QueueClosed as closed:
            return await self.refuse(closed.code, closed.detail, CLOSE_QUEUE_CLOSED)
        if refusal is not None:
            return await self.end({"type": "error", **refusal}, CLOSE_POW_REQUIRED)
        self.event = event
        if status.state == "admitted":
            return await self.end(admitted_message(event, status.admission), CLOSE_ADMITTED)
        await self.send_json(queued_message(status))
        self.remember_place(status)
        self.last_heard = time.monotonic()
        # Jittered, so sockets that connected together do not fall silent (and pull) together.
        self.silence_after = random.uniform(1.0, 1.5)
        early, self.early = self.early, None
        for message, text in early:
            await self.hear(message, text)

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

    def silent(self) -> bool:
        return time.monotonic() - self.last_heard > SILENCE_SECONDS * self.silence_after

    def check_silence(self) -> None:
        """Called by the process's silence sweep (queues/fanout.py) rather than by a timer task per socket
        (1.6 KiB each). A socket that hears nothing (its server lost the channel layer, e.g. Redis restarted)
        still learns its admission: it pulls its status from the store and ledger, which need no channel layer."""
        if self.early is None and not self.closing and self.pull is None and self.silent():
            self.pull = asyncio.ensure_future(self.pull_status(after_silence=True))

    def remember_place(self, status) -> None:
        self.known_ahead = status.ahead if status.state == "waiting" else None
        self.known_served = status.served
        self.place_read_at = time.time()

    def _join(self, event_id: int):
        """(event, refusal, status): the fan queued and this socket marked as theirs, or a proof-of-work refusal
        if the fan has no place at a proof-of-work event and sent no solved challenge (`?pow_challenge&pow_solution`).
        """
        event = Event.objects.get(pk=event_id)
        if challenge.required(event) and not event.draining and admission.status(event, self.user) is None:
            query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
            try:
                challenge.verify_solution(event, self.user, query.get("pow_challenge", [""])[0],
                                          query.get("pow_solution", [""])[0])
            except challenge.ChallengeFailed as exc:
                return event, {"code": exc.code, "detail": exc.detail,
                               "challenge": challenge.issue_challenge(event, self.user)}, None
        status = admission.join(event, self.user)
        get_store().mark_connected(event.id, self.user.id, self.channel_name)
        return event, None, status

    async def close(self, code=None, reason=None):
        self.closing = True
        await super().close(code, reason)

    async def forward(self, message: dict) -> None:
        """Send a message on, unless the socket is gone (a close may race a broadcast)."""
        await self.forward_text(json.dumps(message))

    async def forward_text(self, text: str) -> None:
        if self.closing:
            return
        try:
            await self.send(text_data=text)
        except Exception as exc:  # the server's "send on a closed protocol": the disconnect is on its way
            logger.debug("dropped a frame for a closed socket: %s", exc)
            self.closing = True

    def _status(self):
        event = Event.objects.get(pk=self.event.pk)  # fresh: the operator may have opened or paused it
        return event, admission.status(event, self.user)

    async def end(self, message: dict, close_code: int) -> None:
        """The last message of this socket (admitted, superseded, ...), then the close that says why. Once:
        a status pull and a push may both bring the admission."""
        if self.finished:
            return
        self.finished = True
        await self.forward(message)
        await self.close(close_code)

    async def refuse(self, code: str, detail: str, close_code: int):
        await self.end({"type": "error", "code": code, "detail": detail}, close_code)

    async def disconnect(self, close_code):
        if self.pull is not None:
            self.pull.cancel()
        if self.event_id is not None:
            process_fanout(self.channel_layer).discard(self.event_id, self)
        if self.counted_open:
            metrics.OPEN_WEBSOCKETS.dec()
            self.counted_open = False
        async with joins_gate():
            for group in self.joined_groups:
                await self.channel_layer.group_discard(group, self.channel_name)
            if self.event is not None and not self.finished:
                await database_sync_to_async(get_store().mark_disconnected, thread_sensitive=False)(
                    self.event.id, self.user.id, self.channel_name, time.time())

    # --- client -> server ---------------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if self.event is None or self.finished:
            return
        if bytes_data is not None:
            return await self.error("binary_not_supported", "Send JSON text frames.")
        if len(text_data.encode()) > MAX_FRAME_BYTES:
            return await self.error("frame_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes.")
        try:
            content = json.loads(text_data)
        except ValueError:
            return await self.error("malformed_json", "The frame is not JSON.")
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            return await self.error("invalid_message", "Send an object with a string `type`.")
        handler = {"ping": self.on_ping, "leave": self.on_leave}.get(content["type"])
        if handler is None:
            return await self.error("unknown_type", "Known types: ping, leave.")
        await handler(content)

    async def error(self, code: str, detail: str):
        await self.send_json({"type": "error", "code": code, "detail": detail})

    async def on_ping(self, content):
        await self.send_json({"type": "pong", "at": round(time.time(), 3)})

    async def on_leave(self, content):
        left = await database_sync_to_async(admission.leave)(self.event, self.user)
        await self.end({"type": "left", "left": left}, CLOSE_LEFT)

    # --- group events -> client --------------------------------------------------

    async def queue_admitted(self, message):
        if not self.closing:
            await self.end(message["message"], CLOSE_ADMITTED)

    async def hear(self, message: dict, text: str) -> None:
        """An event broadcast (progress, paused, resumed, reset) from this process's fan-out
        (queues/fanout.py); `text` is its JSON, encoded once for all sockets."""
        if self.early is not None:  # still joining (or refused): `queued` goes first
            self.early.append((message, text))
            return
        if self.closing:  # `early` is None only once queued, so the event is known
            return
        kind = message["type"]
        if kind == "queue.reset":
            return await self.end(message["message"], CLOSE_RESET)
        if kind == "queue.progress":
            self.last_heard = time.monotonic()
        await self.forward_text(text)
        if kind == "queue.progress" and self.turn_may_have_come(message["message"]) and self.pull is None:
            # In the background: the fan-out hands this broadcast to every other socket meanwhile.
            self.pull = asyncio.ensure_future(self.pull_status())

    async def pull_status(self, after_silence: bool = False) -> None:
        try:
            if not after_silence:
                return await self.check_admission()
            async with gate("silence", SILENCE_PULLS_AT_ONCE):
                if not self.closing and self.silent():
                    await self.check_admission()
                    self.last_heard = time.monotonic()  # the next silence pull a silence period later
        finally:
            self.pull = None

    def turn_may_have_come(self, progress: dict) -> bool:
        """From the broadcast alone: is this fan at the front, or is what we know of the place stale?

        Only fans near the head (or whose place is unknown since the opening) ask,
        so the check costs O(admitted per tick), not O(waiting).
        """
        if self.closing or time.monotonic() - self.last_check < CHECK_INTERVAL_SECONDS:
            return False
        if progress.get("at", 0.0) <= self.place_read_at:
            # Decided before this fan's place was read (usual during a storm: joins outrun the tick):
            # it says nothing new, and taking its smaller `waiting` for a stale place made every
            # newcomer pull.
            return False
        if self.known_ahead is None:
            return bool(progress.get("sale_open"))  # the pre-queue order was just drawn
        ahead_now = self.known_ahead - (progress["serving"] - self.known_served)
        return ahead_now <= 0 or progress["waiting"] <= ahead_now

    async def check_admission(self) -> None:
        """Pull the fan's status: the `admitted` push may have been lost by the channel layer.

        channels_redis can drop a message when another consumer's receive is
        cancelled mid-BZPOPMIN (channels_redis#366); the ledger cannot lose it,
        so a fan whose turn has come reads it from there.
        """
        self.last_check = time.monotonic()
        try:
            self.event, status = await database_sync_to_async(self._status, thread_sensitive=False)()
        except Exception:  # database or store down for a moment: keep the socket, ask again later
            logger.warning("status pull failed event=%s user=%s", self.event.id, self.user.id, exc_info=True)
            return
        if status is None or self.closing:
            return
        if status.state == "admitted":
            await self.end(admitted_message(self.event, status.admission), CLOSE_ADMITTED)
        elif status.state == "waiting":
            moved = status.ahead != self.known_ahead
            self.remember_place(status)
            if moved:
                await self.forward(queued_message(status))  # the exact place, to re-anchor the client

    async def queue_superseded(self, message):
        if message["by"] == self.channel_name or self.closing:
            return
        logger.info("supersede", extra={"event_id": self.scope["url_route"]["kwargs"]["event_id"],
                                        "user_id": self.user.id})
        await self.end({"type": "superseded", "detail": "This queue is open on another device."}, CLOSE_SUPERSEDED)
