"""`manage.py seed_demo` at every start: the demo event's reservation desk follows the current host and port."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from events.models import Event

pytestmark = pytest.mark.django_db


def test_a_start_on_another_port_moves_the_demo_desk_but_not_an_operators_url(settings):
    settings.QMS_HOST, settings.QMS_PORT = "127.0.0.1", 8000
    call_command("seed_demo", stdout=None)
    event = Event.objects.get(slug="stadium-tour")
    assert event.reservation_url == "http://127.0.0.1:8000/demo/reservation/"

    settings.QMS_PORT = 9000  # `PORT=9000 make run`
    call_command("seed_demo", stdout=None)
    event.refresh_from_db()
    assert event.reservation_url == "http://127.0.0.1:9000/demo/reservation/"

    event.reservation_url = "https://tickets.example/reserve"  # the operator's own service
    event.save()
    settings.QMS_PORT = 9100
    call_command("seed_demo", stdout=None)
    event.refresh_from_db()
    assert event.reservation_url == "https://tickets.example/reserve"
