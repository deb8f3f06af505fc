"""Where real-time messages go (the channel-layer groups) and publishing what the engine decided."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from events.models import Event

from ..admission import TickResult
from .messages import admitted_message, envelope, pause_message, progress_message, reset_message


def event_group(event_id: int) -> str:
    """Every server process with a socket waiting for the event (queues/realtime/fanout.py): progress, paused,
    resumed, reset."""
    return f"event.{event_id}"


def fan_group(event_id: int, user_id: int) -> str:
    """The one socket of one fan: admitted, superseded."""
    return f"fan.{event_id}.{user_id}"


async def publish_tick(layer, event: Event, result: TickResult) -> None:
    """Send each admitted fan their token, then one progress broadcast for the event."""
    for admission in result.admitted:
        await layer.group_send(fan_group(event.id, admission.user_id), envelope(admitted_message(event, admission)))
    if result.progress is not None:
        await layer.group_send(event_group(event.id), envelope(progress_message(result.progress)))


def publish_tick_now(event: Event, result: TickResult) -> None:
    """`publish_tick` from synchronous code (Celery tasks, the embedded loop, a tick run inline by a join)."""
    if result.admitted or result.progress:
        async_to_sync(publish_tick)(get_channel_layer(), event, result)


def publish_pause_change(event: Event) -> None:
    """Tell everyone waiting that admission paused or resumed."""
    async_to_sync(get_channel_layer().group_send)(event_group(event.id), envelope(pause_message(event)))


def publish_reset(event: Event) -> None:
    """The operator emptied the queue: every waiting socket is told and closed."""
    async_to_sync(get_channel_layer().group_send)(event_group(event.id), envelope(reset_message(event)))
