"""A tick cut off between its ledger write and its confirmation (worker killed, Redis failover): the fans it
left pending get their committed token from the ledger through the status, without waiting for the next tick;
nothing new is issued, and fans without a row still wait for the next tick to requeue them."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from queues import admission
from queues.models import Admission
from queues.protocol import CloseCode, FanState
from queues.store import get_store
from tests.sockets import closed_with, open_socket, session_headers

pytestmark = pytest.mark.django_db(transaction=True)


def cut_off_tick(event, fans_popped: int) -> list[Admission]:
    """What a tick killed after its ledger commit leaves: fans popped (pending in the store) and their rows
    written as `_issue` writes them, never published nor confirmed."""
    popped = get_store().admit_batch(event.id, limit=fans_popped, rate_per_second=100, burst=100, now=2.0,
                                     abandon_before=0)
    return admission._issue(event, popped.admitted)


def died_before_the_ledger(event, fans_popped: int) -> None:
    """What a tick killed between its pop and its ledger write leaves: fans pending, no rows."""
    get_store().admit_batch(event.id, limit=fans_popped, rate_per_second=100, burst=100, now=2.0, abandon_before=0)


def http_status(event, fan) -> dict:
    client = APIClient()
    client.force_login(fan)
    response = client.get(f"/api/events/{event.id}/queue/")
    assert response.status_code == 200
    return response.json()


def test_http_status_of_a_pending_fan_answers_the_ledger_rows_token(store, make_event, make_user):
    event = make_event(paused=True)
    first, second = make_user(), make_user()
    admission.join(event, first)
    admission.join(event, second)
    [row] = cut_off_tick(event, 1)
    assert store.place(event.id, first.id).state == FanState.PENDING
    body = http_status(event, first)
    assert body["state"] == "admitted"
    assert (body["admission"]["token"], body["ticket"]) == (row.token, row.ticket)
    assert body["admission"]["redirect_url"].endswith(f"token={row.token}")
    assert Admission.objects.filter(event=event).count() == 1  # answered from the row: nothing issued
    assert (http_status(event, second)["state"], http_status(event, second)["position"]) == ("waiting", 1)


def test_the_next_tick_sends_the_token_the_status_answered(store, make_event, make_user):
    event = make_event(paused=True, admit_per_minute=60000)
    fan = make_user()
    admission.join(event, fan)
    [row] = cut_off_tick(event, 1)
    answered = http_status(event, fan)["admission"]["token"]
    event.paused = False
    event.save()
    recovered = admission.tick(event).admitted
    assert [(found.user_id, found.token) for found in recovered] == [(fan.id, answered)]
    assert answered == row.token
    assert list(Admission.objects.filter(event=event).values_list("jti", flat=True)) == [row.jti]
    assert store.place(event.id, fan.id).state == FanState.ADMITTED
    assert admission.status(event, fan).admission.token == answered


def test_a_pending_fan_without_a_ledger_row_waits_and_is_requeued(store, make_event, make_user):
    event = make_event(paused=True)
    fan = make_user()
    admission.join(event, fan)
    died_before_the_ledger(event, 1)
    assert store.place(event.id, fan.id).state == FanState.PENDING
    body = http_status(event, fan)
    assert (body["state"], body["position"], body["admission"]) == ("waiting", 1, None)
    assert not Admission.objects.filter(event=event).exists()  # the status issued nothing
    admission.tick(event)  # paused: it only finishes what the dead tick left
    assert store.place(event.id, fan.id).state == FanState.WAITING
    assert (admission.status(event, fan).state, admission.status(event, fan).position) == ("waiting", 1)
    assert not Admission.objects.filter(event=event).exists()


@pytest.mark.asyncio
async def test_a_waiting_socket_gets_its_pending_token_at_its_next_status_check(realtime, make_event, make_user,
                                                                                monkeypatch):
    """No tick runs after the cut-off (the worker is down): the socket's silence pull finds the row."""
    from queues.realtime import place

    monkeypatch.setattr(place, "SILENCE_SECONDS", 0.3)
    event = await database_sync_to_async(make_event)(paused=True)
    fan = await database_sync_to_async(make_user)()
    comm, queued = await open_socket(event.id, await database_sync_to_async(session_headers)(fan))
    assert (queued["type"], queued["state"]) == ("queued", "waiting")
    [row] = await database_sync_to_async(cut_off_tick)(event, 1)
    pulled = await comm.receive_json_from(timeout=10)  # the deadline: several silence periods and sweeps
    assert (pulled["type"], pulled["token"]) == ("admitted", row.token)
    assert await closed_with(comm) == CloseCode.ADMITTED
    assert await database_sync_to_async(Admission.objects.filter(event=event).count)() == 1


@pytest.mark.asyncio
async def test_a_pending_fan_who_reconnects_gets_the_ledger_rows_token_at_once(realtime, make_event, make_user):
    event = await database_sync_to_async(make_event)(paused=True)
    fan = await database_sync_to_async(make_user)()
    await database_sync_to_async(admission.join)(event, fan)
    [row] = await database_sync_to_async(cut_off_tick)(event, 1)
    comm, first = await open_socket(event.id, await database_sync_to_async(session_headers)(fan))
    assert (first["type"], first["token"]) == ("admitted", row.token)
    assert await closed_with(comm) == CloseCode.ADMITTED
