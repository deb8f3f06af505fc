"""Joining an event's queue over the HTTP API, with a proof-of-work solution or without one."""

from __future__ import annotations

from events.models import Event


def queue_url(event: Event) -> str:
    return f"/api/events/{event.id}/queue/"


def join(client, event: Event, pow_body: dict | None = None):
    """POST the join, carrying `pow_body` (`{"challenge": ..., "solution": ...}`) when given."""
    return client.post(queue_url(event), {"pow": pow_body} if pow_body else {}, format="json")
