"""`manage.py qms_pause <event>`: stop admitting; fans keep their places and are told."""

from __future__ import annotations

from queues import admission

from .qms_status import EventCommand


class Command(EventCommand):
    help = "Pause admission for an event (joins still queue)."

    def handle(self, *args, event: str, **options):
        found = admission.set_paused(self.event(event), True)
        self.stdout.write(f"paused {found.name} (id {found.id})")
