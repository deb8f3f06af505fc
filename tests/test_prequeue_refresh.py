""""Refreshing early gains nothing" (README): joining the pre-queue again keeps the first draw.

A fan in the pre-queue who re-joins (reloads the page, posts again, opens a
second socket) keeps the ticket and the random place drawn at the first join;
a store that drew again on every re-join would let a fan reroll until lucky.
Both stores, over HTTP and over the socket.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from events.models import Event
from tests.sockets import socket

pytestmark = pytest.mark.django_db(transaction=True)

FANS = 12  # 12! orders: a redraw that kept every place is out of reach
REJOINS = 2


def prequeue_event(make_event) -> Event:
    return make_event(sale_starts_at=timezone.now() + timedelta(hours=1), paused=True)


def hidden_order(store, event, fans) -> dict[int, int]:
    """The places drawn in the pre-queue: hidden from fans until the opening, but the store knows them."""
    return {fan.id: store.place(event.id, fan.id).position for fan in fans}


def open_sale(event: Event) -> None:
    # A save, as the admin's: this process's copy of the event (queues/recent_events.py) is dropped at once.
    event.sale_starts_at = timezone.now() - timedelta(seconds=1)
    event.save(update_fields=["sale_starts_at"])


def api_client(fan) -> APIClient:
    client = APIClient()
    client.force_authenticate(fan)
    return client


def test_rejoining_the_prequeue_over_http_keeps_the_first_draw(store, make_event, make_user):
    event = prequeue_event(make_event)
    fans = [make_user() for _ in range(FANS)]
    clients = [api_client(fan) for fan in fans]
    tickets = {}
    for fan, client in zip(fans, clients, strict=True):
        body = client.post(f"/api/events/{event.id}/queue/").json()
        assert body["state"] == "prequeue", body
        tickets[fan.id] = body["ticket"]
    drawn = hidden_order(store, event, fans)
    assert sorted(drawn.values()) == list(range(1, FANS + 1))

    for _ in range(REJOINS):
        for fan, client in zip(fans, clients, strict=True):
            again = client.post(f"/api/events/{event.id}/queue/")
            assert again.status_code == 200, again.content  # 200: not a new place (201)
            assert (again.json()["state"], again.json()["ticket"]) == ("prequeue", tickets[fan.id])
    assert hidden_order(store, event, fans) == drawn

    open_sale(event)
    for fan, client in zip(fans, clients, strict=True):
        status = client.get(f"/api/events/{event.id}/queue/").json()
        assert (status["state"], status["ticket"], status["position"]) == ("waiting", tickets[fan.id], drawn[fan.id])


async def queued_over_socket(event_id: int, fan_token: str) -> dict:
    comm = socket(event_id, query=f"token={fan_token}")
    connected, _ = await comm.connect(timeout=5)
    assert connected
    message = await comm.receive_json_from(timeout=5)
    await comm.disconnect()
    return message


def test_reconnecting_the_socket_in_the_prequeue_keeps_the_first_draw(realtime, make_event, make_user):
    from queues.store import get_store

    event = prequeue_event(make_event)
    fans = [make_user() for _ in range(FANS)]
    tokens = {fan.id: str(AccessToken.for_user(fan)) for fan in fans}
    connect = async_to_sync(queued_over_socket)
    tickets = {}
    for fan in fans:
        queued = connect(event.id, tokens[fan.id])
        assert (queued["type"], queued["state"]) == ("queued", "prequeue"), queued
        tickets[fan.id] = queued["ticket"]
    drawn = hidden_order(get_store(), event, fans)

    for _ in range(REJOINS):
        for fan in fans:
            queued = connect(event.id, tokens[fan.id])
            assert (queued["state"], queued["ticket"]) == ("prequeue", tickets[fan.id])
    assert hidden_order(get_store(), event, fans) == drawn

    open_sale(event)
    for fan in fans:
        queued = connect(event.id, tokens[fan.id])
        assert (queued["state"], queued["ticket"], queued["position"]) == ("waiting", tickets[fan.id],
                                                                           drawn[fan.id])
