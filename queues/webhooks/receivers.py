"""queue.paused / resumed / drained / undrained: written when the event's flag changes, whichever way it was
changed (the operations, the admin's list, the events API, a command), in the save's transaction when it has
one (the operations and the admin save in one). And an endpoint deactivated has its pending rows cancelled at
once (the sweep catches the rest). `QueuesConfig.ready` connects these receivers."""

from __future__ import annotations

from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from events.models import Event

from ..models import WebhookEndpoint, WebhookEventType
from . import outbox, retention

# flag -> (type when it turns on, type when it turns off)
FLAG_TYPES = {
    "paused": (WebhookEventType.QUEUE_PAUSED, WebhookEventType.QUEUE_RESUMED),
    "draining": (WebhookEventType.QUEUE_DRAINED, WebhookEventType.QUEUE_UNDRAINED),
}


@receiver(pre_save, sender=Event, dispatch_uid="webhooks.flags_before")
def remember_flags(sender, instance: Event, **kwargs) -> None:
    instance._webhook_flags_before = (
        Event.objects.filter(pk=instance.pk).values(*FLAG_TYPES).first() if instance.pk else None)


@receiver(post_save, sender=Event, dispatch_uid="webhooks.flags_after")
def record_flag_changes(sender, instance: Event, created: bool, **kwargs) -> None:
    before = getattr(instance, "_webhook_flags_before", None)
    if created or not before:
        return
    for flag, (on, off) in FLAG_TYPES.items():
        if before[flag] != getattr(instance, flag):
            outbox.queue_changed(instance, on if getattr(instance, flag) else off)


@receiver(post_save, sender=WebhookEndpoint, dispatch_uid="webhooks.endpoint_deactivated")
def cancel_when_deactivated(sender, instance: WebhookEndpoint, created: bool, **kwargs) -> None:
    if not instance.active:
        retention.cancel_inactive(instance.id)
