"""Every frame the server sends on the waiting-room socket, each shaped here once (docs/API.md), and the
channel-layer envelope that carries a frame to the sockets."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime

from events import crowd_message
from events.models import Event

from ..admission import Progress, QueueStatus, redirect_url
from ..models import Admission
from ..protocol import MessageType


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def queued_message(status: QueueStatus) -> dict:
    """The fan's place on connect; later places are derived from `progress` broadcasts."""
    return {
        "type": MessageType.QUEUED,
        "state": status.state,
        "ticket": status.ticket,
        "position": status.position,
        "ahead": status.ahead,
        "waiting": status.waiting,
        "eta_seconds": status.eta_seconds,
        "served": status.served,
        "paused": status.paused,
        "sale_starts_at": _iso(status.sale_starts_at) if status.sale_starts_at else None,
        # Set when the join went through the service (not the event loop's store-only join); the HTTP status has it.
        "draw_rank": status.draw_rank,
    }


def admitted_message(event: Event, admission: Admission) -> dict:
    return {
        "type": MessageType.ADMITTED,
        "ticket": admission.ticket,
        "token": admission.token,
        "expires_at": _iso(admission.expires_at),
        "redirect_url": redirect_url(event, admission.token),
        "issued_at": round(admission.issued_at.timestamp(), 3),  # when the tick decided (latency, debugging)
    }


def progress_message(progress: Progress) -> dict:
    """The one broadcast per tick from which every waiting fan derives their own place."""
    return {"type": MessageType.PROGRESS, **asdict(progress)}


def pause_message(event: Event) -> dict:
    """Admission paused or resumed by the operator (the flag as it is now)."""
    return {"type": MessageType.PAUSED if event.paused else MessageType.RESUMED, "event": event.id}


def reset_message(event: Event) -> dict:
    """The operator emptied the queue; the socket closes after it."""
    return {"type": MessageType.RESET, "event": event.id}


def announcement_message(event: Event) -> dict:
    """The operator's message to the waiting crowd as it is now (`message` None: cleared). One frame for the
    whole event: it carries every translation and the page picks its own language's."""
    return {"type": MessageType.ANNOUNCEMENT, "event": event.id, "message": crowd_message.public(event)}


def superseded_message() -> dict:
    return {"type": MessageType.SUPERSEDED, "detail": "This queue is open on another device."}


def left_message(left: bool) -> dict:
    return {"type": MessageType.LEFT, "left": left}


def pong_message() -> dict:
    return {"type": MessageType.PONG, "at": round(time.time(), 3)}


def error_message(code: str, detail: str, **extra) -> dict:
    """`{type: error, code, detail, ...}`: a refusal's body (`Refusal.body()`) or a bad frame's."""
    return {"type": MessageType.ERROR, "code": code, "detail": detail, **extra}


def envelope(message: dict) -> dict:
    """A frame as a channel-layer message: its handler on the consumer is `queue_<type>`."""
    return {"type": f"queue.{message['type']}", "message": message}
