"""A fan's arrival pays no lookup it does not need. Its HTTP requests (status poll, join, leave) read their user
and their event from this process's copies: one query each per minute (user) and per 2 s (event), not one per
request. A deactivated user is refused once the memory ages (at once when deactivated in this process); a pause
made by another process reaches fans within the event copy's max age; operators always read the row itself.
A token socket skips Channels' cookie and session layers; a browser's cookie socket keeps them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from events.models import Event
from queues.known_users import known_users
from queues.realtime.auth import SessionOrJwtAuthMiddlewareStack
from queues.recent_events import recent_events
from tests.sockets import Communicator, session_headers

pytestmark = pytest.mark.django_db


class Clock:
    """The caches' clock, moved by the test: ages without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    """Both per-process copies empty, on a clock of the test's own."""
    clock = Clock()
    monkeypatch.setattr(known_users, "clock", clock)
    monkeypatch.setattr(recent_events, "clock", clock)
    known_users.clear()
    recent_events.clear()
    yield clock
    known_users.clear()
    recent_events.clear()


def bearer(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def queries_of(context: CaptureQueriesContext, table: str) -> list[str]:
    return [q["sql"] for q in context.captured_queries if f'FROM "{table}"' in q["sql"]]


def test_polls_and_joins_with_one_token_read_the_user_and_the_event_once(redis_store, clock, make_event, make_user):
    event, fan = make_event(paused=True), make_user()
    client, url = bearer(fan), f"/api/events/{event.id}/queue/"
    with CaptureQueriesContext(connection) as context:
        assert client.post(url).status_code == 201
        for _ in range(5):
            assert client.get(url).status_code == 200
            assert client.post(url).status_code == 200  # joining again keeps the ticket
    assert len(queries_of(context, get_user_model()._meta.db_table)) <= 1
    assert len(queries_of(context, Event._meta.db_table)) <= 1


def test_a_user_deactivated_by_another_process_is_refused_once_the_memory_ages(redis_store, clock, make_event,
                                                                                 make_user):
    event, fan = make_event(paused=True), make_user()
    client, url = bearer(fan), f"/api/events/{event.id}/queue/"
    assert client.post(url).status_code == 201
    get_user_model().objects.filter(pk=fan.pk).update(is_active=False)  # no signal here: as another process does
    clock.now += known_users.ttl + 1
    refused = client.get(url)
    assert (refused.status_code, refused.json()["code"]) == (401, "user_inactive")


def test_a_user_deactivated_in_this_process_is_refused_at_once(redis_store, clock, make_event, make_user):
    event, fan = make_event(paused=True), make_user()
    client, url = bearer(fan), f"/api/events/{event.id}/queue/"
    assert client.post(url).status_code == 201
    fan.is_active = False
    fan.save()
    refused = client.get(url)
    assert (refused.status_code, refused.json()["code"]) == (401, "user_inactive")


def test_a_token_of_a_deleted_user_is_refused(redis_store, clock, make_event, make_user):
    event, fan = make_event(paused=True), make_user()
    client = bearer(fan)
    fan.delete()
    refused = client.get(f"/api/events/{event.id}/queue/")
    assert (refused.status_code, refused.json()["code"]) == (401, "user_not_found")


def test_a_pause_by_another_process_reaches_fans_within_the_max_age(redis_store, clock, make_event, make_user):
    event = make_event(paused=False)
    client, url = bearer(make_user()), f"/api/events/{event.id}/queue/"
    client.post(url)
    assert client.get(url).json()["paused"] is False
    Event.objects.filter(pk=event.pk).update(paused=True)  # no signal here: as another process does
    clock.now += recent_events.max_age + 0.1
    assert client.get(url).json()["paused"] is True


def test_a_pause_saved_in_this_process_reaches_fans_at_once(redis_store, clock, make_event, make_user):
    event = make_event(paused=False)
    client, url = bearer(make_user()), f"/api/events/{event.id}/queue/"
    client.post(url)
    assert client.get(url).json()["paused"] is False
    event.paused = True
    event.save(update_fields=["paused"])
    assert client.get(url).json()["paused"] is True


def test_a_join_that_may_admit_at_once_reads_the_event_itself(redis_store, clock, make_event, make_user):
    event = make_event(paused=False, queue_enabled=False)  # everyone in at once: a join runs the tick
    url = f"/api/events/{event.id}/queue/"
    assert bearer(make_user()).post(url).json()["state"] == "admitted"  # this process now holds a copy
    Event.objects.filter(pk=event.pk).update(paused=True)  # no signal here: as another process does
    assert bearer(make_user()).post(url).json()["state"] == "waiting"  # paused: nobody admitted


def test_operators_read_the_event_itself(redis_store, clock, make_event, make_user):
    event = make_event(paused=True, max_active=10)
    fan, operator = make_user(), make_user(is_staff=True)
    bearer(fan).post(f"/api/events/{event.id}/queue/")  # this process now holds a copy of the event
    Event.objects.filter(pk=event.pk).update(max_active=20)  # no signal here: as another process does
    assert recent_events.get(event.pk).max_active == 10  # the fans' copy has not aged yet
    stats = bearer(operator).get(f"/api/events/{event.id}/queue/stats/")
    assert (stats.status_code, stats.json()["max_active"]) == (200, 20)


async def scope_seen_by_the_consumer(path: str, headers=()) -> dict:
    """The scope the authentication stack hands on, for a socket connecting to `path` with `headers`."""
    seen = []

    async def consumer(scope, receive, send):
        seen.append(scope)
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await receive()  # websocket.disconnect

    comm = Communicator(SessionOrJwtAuthMiddlewareStack(consumer), path, headers=list(headers))
    connected, _ = await comm.connect(timeout=5)
    assert connected
    await comm.disconnect(timeout=5)
    return seen[0]


@pytest.fixture
def socket_fan(make_user):
    return make_user()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_token_socket_opens_no_session(socket_fan):
    scope = await scope_seen_by_the_consumer(f"/ws/events/1/queue/?token={AccessToken.for_user(socket_fan)}")
    assert "session" not in scope
    assert scope["user"].pk == socket_fan.pk


@pytest.fixture
def socket_fan_cookie(socket_fan):
    return session_headers(socket_fan)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_cookie_socket_is_authenticated_by_its_session(socket_fan, socket_fan_cookie):
    scope = await scope_seen_by_the_consumer("/ws/events/1/queue/", socket_fan_cookie)
    assert scope["session"].session_key
    assert scope["user"].pk == socket_fan.pk
