"""Tell waiting fans when an operator pauses or resumes an event, whichever way the flag changed."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from events.models import Event

from .notify import publish_pause_change


@receiver(pre_save, sender=Event)
def remember_paused(sender, instance: Event, **kwargs) -> None:
    instance._paused_before = (
        Event.objects.filter(pk=instance.pk).values_list("paused", flat=True).first() if instance.pk else None
    )


@receiver(post_save, sender=Event)
def announce_pause_change(sender, instance: Event, created: bool, **kwargs) -> None:
    before = getattr(instance, "_paused_before", None)
    if not created and before is not None and before != instance.paused:
        transaction.on_commit(lambda: publish_pause_change(instance))
