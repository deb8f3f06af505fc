"""`manage.py qms_resume <event>`: admit again at the configured rate."""

from __future__ import annotations

from queues import admission

from .qms_status import EventCommand


class Command(EventCommand):
    help = "Resume admission for a paused event."

    def handle(self, *args, event: str, **options):
        found = admission.set_paused(self.event(event), False)
        self.stdout.write(f"resumed {found.name} (id {found.id})")
