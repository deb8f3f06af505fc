"""The real-time layer listening to the engine: what a tick decided, a reset and a pause change reach the
sockets from here. The engine only sends signals (queues/admission.py), so it never imports this package;
`QueuesConfig.ready` connects these receivers."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from events.models import Event

from ..admission import TickResult, queue_reset, tick_decided
from .publish import publish_pause_change, publish_reset, publish_tick_now


@receiver(tick_decided)
def publish_decided_tick(sender, event: Event, result: TickResult, **kwargs) -> None:
    """Tokens and progress go out inside the tick, before the fans are confirmed: if this raises, they stay
    pending and the next tick publishes them again."""
    publish_tick_now(event, result)


@receiver(queue_reset)
def close_reset_sockets(sender, event: Event, **kwargs) -> None:
    publish_reset(event)


@receiver(pre_save, sender=Event)
def remember_paused(sender, instance: Event, **kwargs) -> None:
    instance._paused_before = (
        Event.objects.filter(pk=instance.pk).values_list("paused", flat=True).first() if instance.pk else None
    )


@receiver(post_save, sender=Event)
def announce_pause_change(sender, instance: Event, created: bool, **kwargs) -> None:
    """Pause and resume reach waiting fans whichever way the flag changed (admin, API, command)."""
    before = getattr(instance, "_paused_before", None)
    if not created and before is not None and before != instance.paused:
        transaction.on_commit(lambda: publish_pause_change(instance))
