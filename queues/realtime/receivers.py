"""The real-time layer listening to the engine: what a tick decided, a reset, a pause change and the crowd
message reach the sockets from here. The engine only sends signals (queues/admission.py), so it never imports
this package; `QueuesConfig.ready` connects these receivers."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver
from django.utils import timezone

from events import crowd_message
from events.models import Event

from ..admission import TickResult, queue_reset, tick_decided
from .publish import publish_announcement, publish_pause_change, publish_reset, publish_tick_now

CROWD_FIELDS = ("crowd_message", "crowd_message_translations")


@receiver(tick_decided)
def publish_decided_tick(sender, event: Event, result: TickResult, **kwargs) -> None:
    """Tokens and progress go out inside the tick, before the fans are confirmed: if this raises, they stay
    pending and the next tick publishes them again."""
    publish_tick_now(event, result)


@receiver(queue_reset)
def close_reset_sockets(sender, event: Event, **kwargs) -> None:
    publish_reset(event)


@receiver(pre_save, sender=Event)
def remember_before(sender, instance: Event, update_fields=None, **kwargs) -> None:
    """The pause flag and the crowd message as stored (one query), for `post_save` to tell what changed. The
    crowd message is normalised and stamped here, so every front that saves it stores it alike."""
    before = Event.objects.filter(pk=instance.pk).values(*CROWD_FIELDS, "paused").first() if instance.pk else None
    instance._paused_before = before["paused"] if before else None
    instance._crowd_message_changed = False
    if update_fields is not None and not set(CROWD_FIELDS) & set(update_fields):
        return  # a save of other fields (a pause, say) from a copy that may hold an older message
    instance.crowd_message, instance.crowd_message_translations = crowd_message.normalised(
        instance.crowd_message, instance.crowd_message_translations)
    stored = (before["crowd_message"], before["crowd_message_translations"] or {}) if before else ("", {})
    if stored != (instance.crowd_message, instance.crowd_message_translations):
        instance._crowd_message_changed = True
        instance.crowd_message_updated_at = timezone.now()  # saved with it: the fronts name all three fields


@receiver(post_save, sender=Event)
def announce_pause_change(sender, instance: Event, created: bool, **kwargs) -> None:
    """Pause and resume reach waiting fans whichever way the flag changed (admin, API, command)."""
    before = getattr(instance, "_paused_before", None)
    if not created and before is not None and before != instance.paused:
        transaction.on_commit(lambda: publish_pause_change(instance))


@receiver(post_save, sender=Event)
def announce_crowd_message(sender, instance: Event, created: bool, **kwargs) -> None:
    """A message set, changed or cleared reaches every waiting fan at once, whichever front saved it (the
    `announce` operation, the admin's event page, the events API). A new event has nobody waiting yet."""
    if not created and getattr(instance, "_crowd_message_changed", False):
        transaction.on_commit(lambda: publish_announcement(instance))
