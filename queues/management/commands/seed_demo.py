"""`manage.py seed_demo`: a demo event, a demo fan and a demo operator, and how to log in."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from events.models import Event

FAN = ("fan", "fan-password-123")
OPERATOR = ("admin", "admin-password-123")


def _is_demo_desk(url: str) -> bool:
    """The URL is this project's demo reservation page (of any run), not an operator's service."""
    path = urlsplit(url).path
    return path == "/demo/reservation/" or path.startswith("/api/events/")


class Command(BaseCommand):
    help = "Create (or keep) the demo event and logins used by `make run`."

    def handle(self, *args, **options):
        users = get_user_model()
        fan, created = users.objects.get_or_create(username=FAN[0])
        if created:
            fan.set_password(FAN[1])
            fan.save()
        operator, created = users.objects.get_or_create(
            username=OPERATOR[0], defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            operator.set_password(OPERATOR[1])
            operator.save()
        base = f"http://{settings.QMS_HOST}:{settings.QMS_PORT}"
        event, _ = Event.objects.get_or_create(
            slug="stadium-tour",
            defaults={
                "name": "Stadium Tour — demo on-sale",
                "sale_starts_at": timezone.now() + timedelta(minutes=1),
                "admit_per_minute": 30,
                "max_active": 100,
                "reservation_url": f"{base}/demo/reservation/",
                "created_by": operator,
            },
        )
        desk = f"{base}/demo/reservation/"
        if event.reservation_url != desk and _is_demo_desk(event.reservation_url):
            # Seeded by an earlier start on another host or port (`PORT=9000 make run`), or by an older version
            # before the demo desk existed: admitted fans would be sent where nobody listens. An operator's own
            # reservation URL is left alone. (Absolute, not relative: reservation_url is a URL field.)
            event.reservation_url = desk
            event.save(update_fields=["reservation_url", "updated_at"])
        self.stdout.write(
            "\n".join([
                f"Demo event #{event.id}: {event.name} (sale starts {event.sale_starts_at:%H:%M:%S} UTC)",
                f"  fan login:      {FAN[0]} / {FAN[1]}",
                f"  waiting room:   {base}/events/{event.id}/waiting-room/   (all events: {base}/)",
                f"  operator login: {OPERATOR[0]} / {OPERATOR[1]}  ->  {base}/admin/events/event/{event.id}/change/",
                f"  join over HTTP: curl -X POST -H 'Authorization: Bearer <access>' "
                f"{base}/api/events/{event.id}/queue/",
                f"  API docs:       {base}/api/docs/   health: {base}/healthz   JWKS: {base}/.well-known/jwks.json",
            ])
        )
