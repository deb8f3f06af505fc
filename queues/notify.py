"""Messages to fans over the channel layer: group names and what a tick publishes."""

from __future__ import annotations

from datetime import datetime

from events.models import Event

from .admission import TickResult, redirect_url
from .models import Admission


def event_group(event_id: int) -> str:
    """Every socket waiting for the event: progress, paused, resumed."""
    return f"event.{event_id}"


def fan_group(event_id: int, user_id: int) -> str:
    """The one socket of one fan: admitted, superseded."""
    return f"fan.{event_id}.{user_id}"


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def admitted_message(event: Event, admission: Admission) -> dict:
    return {
        "type": "admitted",
        "ticket": admission.ticket,
        "token": admission.token,
        "expires_at": _iso(admission.expires_at),
        "redirect_url": redirect_url(event, admission.token),
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
