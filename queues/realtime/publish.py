"""Where real-time messages go (the event group; a fan's own socket, as the store records it) and publishing what
the engine decided."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from events.models import Event

from ..admission import TickResult
from ..store import get_store
from .messages import (
    admitted_message,
    announcement_message,
    envelope,
    pause_message,
    progress_message,
    reset_message,
)


def event_group(event_id: int) -> str:
    """Every server process with a socket waiting for the event (queues/realtime/fanout.py): progress, paused,
    resumed, reset, announcement."""
    return f"event.{event_id}"


async def publish_tick(layer, event: Event, result: TickResult, sockets: dict[int, str]) -> None:
    """Send each admitted fan their token, on their current socket (`sockets`: user → channel, from the store),
    then one progress broadcast for the event.

    A fan with no socket right now (between two connections) is sent nothing: their next socket's join reads
    the admission from the ledger. A push the channel layer loses is found by the socket's own status pull
    (queues/realtime/place.py)."""
    for admission in result.admitted:
        socket = sockets.get(admission.user_id)
        if socket is not None:
            await layer.send(socket, envelope(admitted_message(event, admission)))
    if result.progress is not None:
        await layer.group_send(event_group(event.id), envelope(progress_message(result.progress)))


def publish_tick_now(event: Event, result: TickResult) -> None:
    """`publish_tick` from synchronous code (Celery tasks, the embedded loop, a tick run inline by a join)."""
    if result.admitted or result.progress:
        sockets = get_store().connections(event.id, [admission.user_id for admission in result.admitted])
        async_to_sync(publish_tick)(get_channel_layer(), event, result, sockets)


def publish_pause_change(event: Event) -> None:
    """Tell everyone waiting that admission paused or resumed."""
    async_to_sync(get_channel_layer().group_send)(event_group(event.id), envelope(pause_message(event)))


def publish_reset(event: Event) -> None:
    """The operator emptied the queue: every waiting socket is told and closed."""
    async_to_sync(get_channel_layer().group_send)(event_group(event.id), envelope(reset_message(event)))


def publish_announcement(event: Event) -> None:
    """The operator set or cleared the message to the waiting crowd: one broadcast for the event, which each
    server process hands to its sockets (queues/realtime/fanout.py)."""
    async_to_sync(get_channel_layer().group_send)(event_group(event.id), envelope(announcement_message(event)))
