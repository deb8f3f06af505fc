"""Messages to fans over the channel layer: group names and what a tick publishes."""

from __future__ import annotations

from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from events.models import Event

from .admission import QueueStatus, TickResult, redirect_url
from .models import Admission


def event_group(event_id: int) -> str:
    """Every socket waiting for the event: progress, paused, resumed."""
    return f"event.{event_id}"


def fan_group(event_id: int, user_id: int) -> str:
    """The one socket of one fan: admitted, superseded."""
    return f"fan.{event_id}.{user_id}"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def queued_message(status: QueueStatus) -> dict:
    """The fan's place on connect; later places are derived from `progress` broadcasts."""
    return {
        "type": "queued",
        "state": status.state,
        "ticket": status.ticket,
        "position": status.position,
        "ahead": status.ahead,
        "waiting": status.waiting,
        "eta_seconds": status.eta_seconds,
        "served": status.served,
        "paused": status.paused,
        "sale_starts_at": _iso(status.sale_starts_at) if status.sale_starts_at else None,
    }


def admitted_message(event: Event, admission: Admission) -> dict:
    return {
        "type": "admitted",
        "ticket": admission.ticket,
        "token": admission.token,
        "expires_at": _iso(admission.expires_at),
        "redirect_url": redirect_url(event, admission.token),
        "issued_at": round(admission.issued_at.timestamp(), 3),  # when the tick decided (latency, debugging)
    }


async def publish_tick(layer, event: Event, result: TickResult) -> None:
    """Send each admitted fan their token, then one progress broadcast for the event."""
    for admission in result.admitted:
        await layer.group_send(
            fan_group(event.id, admission.user_id),
            {"type": "queue.admitted", "message": admitted_message(event, admission)},
        )
    if result.progress is not None:
        await layer.group_send(event_group(event.id), {"type": "queue.progress", "message": result.progress})


def publish_tick_now(event: Event, result: TickResult) -> None:
    """`publish_tick` from synchronous code (Celery tasks, a tick run inline by a join)."""
    if result.admitted or result.progress:
        async_to_sync(publish_tick)(get_channel_layer(), event, result)


def publish_pause_change(event: Event) -> None:
    """Tell everyone waiting that admission paused or resumed."""
    kind = "paused" if event.paused else "resumed"
    async_to_sync(get_channel_layer().group_send)(
        event_group(event.id), {"type": f"queue.{kind}", "message": {"type": kind, "event": event.id}}
    )


def publish_reset(event: Event) -> None:
    """The operator emptied the queue: every waiting socket is told and closed."""
    async_to_sync(get_channel_layer().group_send)(
        event_group(event.id), {"type": "queue.reset", "message": {"type": "reset", "event": event.id}}
    )
