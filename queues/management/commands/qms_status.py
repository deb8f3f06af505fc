"""`manage.py qms_status <event>`: an event's live queue numbers, for operators (and `EventCommand`)."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from events.models import Event
from queues import admission


class EventCommand(BaseCommand):
    """A command about one event, named by id or slug."""

    # The in-memory store lives inside the server process: another process sees an empty one.
    needs_shared_store = False

    def add_arguments(self, parser):
        parser.add_argument("event", help="event id or slug")

    def event(self, reference: str) -> Event:
        if self.needs_shared_store and settings.QMS_STORE["BACKEND"].endswith("MemoryQueueStore"):
            raise CommandError("The queue store is in memory, inside the server process (embedded default): "
                               "use the event's admin page or the staff API, or run with QMS_REDIS_URL.")
        found = Event.objects.filter(pk=int(reference)) if reference.isdigit() else Event.objects.none()
        event = found.first() or Event.objects.filter(slug=reference).first()
        if event is None:
            raise CommandError(f"No event with id or slug {reference!r}.")
        return event


class Command(EventCommand):
    help = "Show an event's live queue: waiting, served, admissions, rates, ETA of the last in line."
    needs_shared_store = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--json", action="store_true", dest="as_json", help="print one JSON object")

    def handle(self, *args, event: str, as_json: bool = False, **options):
        found = self.event(event)
        numbers = admission.stats(found)
        if as_json:
            self.stdout.write(json.dumps(numbers, default=str))
            return
        self.stdout.write(f"{found.name} (id {found.id}, slug {found.slug})")
        width = max(map(len, numbers))
        for key, value in numbers.items():
            self.stdout.write(f"  {key.ljust(width)}  {value}")
