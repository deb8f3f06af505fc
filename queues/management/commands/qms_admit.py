"""`manage.py qms_admit <event> N`: admit up to N fans now, beyond the rate, within `max_active`."""

from __future__ import annotations

from django.core.management.base import CommandError

from queues import admission

from .qms_status import EventCommand


class Command(EventCommand):
    help = "Admit up to N waiting fans at once (they are notified); max_active still holds."
    needs_shared_store = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("count", type=int, help="how many fans to admit at most")

    def handle(self, *args, event: str, count: int, **options):
        if count < 1:
            raise CommandError("N must be at least 1.")
        found = self.event(event)
        result = admission.admit_now(found, count)
        if not result.ran:
            raise CommandError("Another tick held the event's lease for 5 s; try again.")
        self.stdout.write(f"admitted {len(result.admitted)} of {count} requested for {found.name} (id {found.id})")
