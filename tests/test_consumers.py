"""The waiting-room socket, on both channel layers (in-memory and real channels_redis)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import AccessToken

from events.models import Event
from queues import admission
from queues.protocol import CloseCode
from queues.realtime.messages import envelope, progress_message
from queues.realtime.publish import event_group
from queues.store import get_store
from tests.sockets import ORIGIN, closed_with, open_socket, session_headers, socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

async def tick_and_publish(event: Event):
    """One admission tick, which publishes `admitted` and `progress` itself."""
    await database_sync_to_async(event.refresh_from_db)()
    return await database_sync_to_async(admission.tick)(event)


@pytest.fixture
def waiting_event(make_event):
    return make_event(paused=True, admit_per_minute=6000)


@pytest.fixture
def fans(make_user):
    return [make_user() for _ in range(3)]


@pytest.fixture
def logged_in(fans):
    """Session cookie headers of each fan, as the waiting-room page's browser sends them."""
    return [session_headers(fan) for fan in fans]


async def test_connect_joins_and_sends_queued(realtime, waiting_event, fans, logged_in):
    first, queued = await open_socket(waiting_event.id, logged_in[0])
    second, queued2 = await open_socket(waiting_event.id, logged_in[1])
    assert queued["type"] == "queued"
    assert {k: queued2[k] for k in ("state", "ticket", "position", "ahead", "waiting", "paused")} == {
        "state": "waiting", "ticket": 2, "position": 2, "ahead": 1, "waiting": 2, "paused": True}
    assert queued2["eta_seconds"] >= 1 and queued2["served"] == 0
    await first.disconnect()
    await second.disconnect()


async def test_ping_is_answered_with_pong(realtime, waiting_event, fans, logged_in):
    comm, _ = await open_socket(waiting_event.id, logged_in[0])
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "malformed_json"),
        (json.dumps(["ping"]), "invalid_message"),
        (json.dumps({"type": 5}), "invalid_message"),
        (json.dumps({"type": "teleport"}), "unknown_type"),
        (json.dumps({"type": "ping", "pad": "x" * 5000}), "frame_too_large"),
        (b"\x00\x01binary", "binary_not_supported"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_usable(realtime, waiting_event, logged_in, frame, code):
    comm, _ = await open_socket(waiting_event.id, logged_in[0])
    if isinstance(frame, bytes):
        await comm.send_to(bytes_data=frame)
    else:
        await comm.send_to(text_data=frame)
    error = await comm.receive_json_from(timeout=5)
    assert (error["type"], error["code"]) == ("error", code)
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"
    await comm.disconnect()


async def test_anonymous_socket_is_refused_with_4401(realtime, waiting_event):
    comm = socket(waiting_event.id, [ORIGIN])
    await comm.connect(timeout=5)
    refused = await comm.receive_json_from(timeout=5)
    assert (refused["type"], refused["code"]) == ("error", "not_authenticated")
    assert await closed_with(comm) == CloseCode.NOT_AUTHENTICATED


async def test_invalid_jwt_is_refused_with_4401(realtime, waiting_event):
    comm = socket(waiting_event.id, query="token=not.a.jwt")
    await comm.connect(timeout=5)
    assert await comm.receive_json_from(timeout=5) == {"type": "error", "code": "not_authenticated",
                                                       "detail": "Log in first."}
    assert await closed_with(comm) == CloseCode.NOT_AUTHENTICATED


async def test_unknown_event_is_refused_with_4404(realtime, fans, logged_in):
    comm = socket(987654, logged_in[0])
    await comm.connect(timeout=5)
    assert (await comm.receive_json_from(timeout=5))["code"] == "event_not_found"
    assert await closed_with(comm) == CloseCode.UNKNOWN_EVENT


async def test_foreign_origin_is_refused_with_4403(realtime, waiting_event, fans, logged_in):
    headers = [h for h in logged_in[0] if h[0] != b"origin"] + [(b"origin", b"https://evil.example")]
    comm = socket(waiting_event.id, headers)
    await comm.connect(timeout=5)
    assert (await comm.receive_json_from(timeout=5))["code"] == "origin_refused"
    assert await closed_with(comm) == CloseCode.ORIGIN_REFUSED


async def test_jwt_in_query_authenticates(realtime, waiting_event, fans):
    access = await database_sync_to_async(lambda: str(AccessToken.for_user(fans[0])))()
    comm, queued = await open_socket(waiting_event.id, None, query=f"token={access}")
    assert queued["type"] == "queued" and queued["ticket"] == 1
    await comm.disconnect()


async def test_jwt_as_subprotocol_authenticates(realtime, waiting_event, fans):
    access = await database_sync_to_async(lambda: str(AccessToken.for_user(fans[0])))()
    comm = socket(waiting_event.id, subprotocols=["qms.jwt", access])
    connected, subprotocol = await comm.connect(timeout=5)
    assert connected and subprotocol == "qms.jwt"
    assert (await comm.receive_json_from(timeout=5))["type"] == "queued"
    await comm.disconnect()


async def test_second_device_supersedes_the_first_and_keeps_the_place(realtime, waiting_event, fans, logged_in):
    await open_socket(waiting_event.id, logged_in[1])
    old, first = await open_socket(waiting_event.id, logged_in[0])
    new, second = await open_socket(waiting_event.id, logged_in[0])
    assert (await old.receive_json_from(timeout=5))["type"] == "superseded"
    assert await closed_with(old) == CloseCode.SUPERSEDED
    assert (second["ticket"], second["position"]) == (first["ticket"], first["position"])
    await new.send_json_to({"type": "ping"})
    assert (await new.receive_json_from(timeout=5))["type"] == "pong"
    await new.disconnect()


async def test_reconnect_within_grace_keeps_the_ticket(realtime, waiting_event, fans, logged_in):
    await open_socket(waiting_event.id, logged_in[1])
    comm, first = await open_socket(waiting_event.id, logged_in[0])
    await comm.disconnect()
    comm, again = await open_socket(waiting_event.id, logged_in[0])
    assert (again["ticket"], again["position"]) == (first["ticket"], 2)
    await comm.disconnect()


async def test_after_the_grace_period_the_place_is_skipped(realtime, waiting_event, fans, logged_in, settings):
    settings.QMS_ABANDON_GRACE_SECONDS = 0
    gone, _ = await open_socket(waiting_event.id, logged_in[0])
    stays, _ = await open_socket(waiting_event.id, logged_in[1])
    await gone.disconnect()
    await asyncio.sleep(0.05)
    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(paused=False)
    result = await tick_and_publish(waiting_event)
    assert [row.user_id for row in result.admitted] == [fans[1].id]
    assert result.abandoned == 1
    assert (await stays.receive_json_from(timeout=5))["type"] == "admitted"


async def test_tick_sends_the_token_closes_the_socket_and_broadcasts_progress(realtime, waiting_event, logged_in):
    front, _ = await open_socket(waiting_event.id, logged_in[0])
    behind, queued = await open_socket(waiting_event.id, logged_in[1])
    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(paused=False, max_active=1)
    await tick_and_publish(waiting_event)

    admitted = await front.receive_json_from(timeout=5)
    assert admitted["type"] == "admitted"
    assert set(admitted) >= {"token", "expires_at", "redirect_url"}
    assert admitted["redirect_url"].endswith("token=" + admitted["token"])
    assert await closed_with(front) == CloseCode.ADMITTED

    progress = await behind.receive_json_from(timeout=5)
    assert progress["type"] == "progress"
    assert (progress["serving"], progress["waiting"], progress["paused"]) == (1, 1, False)
    # The client derives its own place from the watermark: ahead at join minus those served since.
    assert queued["ahead"] - (progress["serving"] - queued["served"]) == 0
    await behind.disconnect()


async def test_admitted_fan_reconnecting_gets_the_same_token_at_once(realtime, waiting_event, fans, logged_in):
    comm, _ = await open_socket(waiting_event.id, logged_in[0])
    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(paused=False)
    await tick_and_publish(waiting_event)
    first = await comm.receive_json_from(timeout=5)
    await closed_with(comm)
    again_comm, again = await open_socket(waiting_event.id, logged_in[0])
    assert again["type"] == "admitted" and again["token"] == first["token"]
    assert await closed_with(again_comm) == CloseCode.ADMITTED


async def test_leave_gives_up_the_place_and_closes(realtime, waiting_event, fans, logged_in):
    comm, _ = await open_socket(waiting_event.id, logged_in[0])
    await comm.send_json_to({"type": "leave"})
    assert await comm.receive_json_from(timeout=5) == {"type": "left", "left": True}
    assert await closed_with(comm) == CloseCode.LEFT
    assert await database_sync_to_async(get_store().place)(waiting_event.id, fans[0].id) is None


async def test_pause_and_resume_are_announced(realtime, waiting_event, fans, logged_in):
    comm, _ = await open_socket(waiting_event.id, logged_in[0])

    def set_paused(value: bool) -> None:
        event = Event.objects.get(pk=waiting_event.pk)
        event.paused = value
        event.save()

    await database_sync_to_async(set_paused)(False)
    assert (await comm.receive_json_from(timeout=5))["type"] == "resumed"
    await database_sync_to_async(set_paused)(True)
    assert (await comm.receive_json_from(timeout=5))["type"] == "paused"
    await comm.disconnect()


async def test_first_in_line_on_an_open_event_is_admitted_on_connect(realtime, make_event, fans, logged_in):
    event = await database_sync_to_async(make_event)()
    comm, message = await open_socket(event.id, logged_in[0])
    assert message["type"] == "admitted"
    assert await closed_with(comm) == CloseCode.ADMITTED


async def test_api_and_socket_share_one_ticket(realtime, waiting_event, fans, logged_in):
    from rest_framework.test import APIClient

    def join_over_http():
        client = APIClient()
        client.force_authenticate(fans[0])
        return client.post(f"/api/events/{waiting_event.id}/queue/").json()

    over_http = await database_sync_to_async(join_over_http)()
    comm, over_socket = await open_socket(waiting_event.id, logged_in[0])
    assert over_socket["ticket"] == over_http["ticket"]
    assert over_socket["waiting"] == 1
    await comm.disconnect()


async def test_a_lost_admitted_push_is_recovered_from_the_ledger(realtime, waiting_event, logged_in):
    from channels.layers import get_channel_layer


    comm, queued = await open_socket(waiting_event.id, logged_in[0])
    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(paused=False)
    await database_sync_to_async(waiting_event.refresh_from_db)()
    # The tick admits the fan but its `admitted` push never arrives (as when the channel layer drops it).
    result = await database_sync_to_async(admission.tick)(waiting_event, publish=False)
    assert len(result.admitted) == 1
    await get_channel_layer().group_send(event_group(waiting_event.id),
                                         envelope(progress_message(result.progress)))
    assert (await comm.receive_json_from(timeout=5))["type"] == "progress"
    recovered = await comm.receive_json_from(timeout=5)
    assert recovered["type"] == "admitted" and recovered["token"] == result.admitted[0].token
    assert await closed_with(comm) == CloseCode.ADMITTED


async def test_after_the_opening_the_socket_learns_its_drawn_place(realtime, make_event, logged_in):
    from datetime import timedelta

    from channels.layers import get_channel_layer
    from django.utils import timezone


    event = await database_sync_to_async(make_event)(sale_starts_at=timezone.now() + timedelta(hours=1), paused=True)
    comm, queued = await open_socket(event.id, logged_in[0])
    assert (queued["state"], queued["position"]) == ("prequeue", None)
    await database_sync_to_async(Event.objects.filter(pk=event.pk).update)(sale_starts_at=timezone.now())
    await database_sync_to_async(event.refresh_from_db)()
    result = await database_sync_to_async(admission.tick)(event, publish=False)
    await get_channel_layer().group_send(event_group(event.id), envelope(progress_message(result.progress)))
    assert (await comm.receive_json_from(timeout=5))["type"] == "progress"
    placed = await comm.receive_json_from(timeout=5)
    assert (placed["type"], placed["state"], placed["position"]) == ("queued", "waiting", 1)
    await comm.disconnect()


async def test_a_socket_that_hears_nothing_pulls_its_admission(realtime, waiting_event, logged_in, monkeypatch):
    from queues.realtime import place

    monkeypatch.setattr(place, "SILENCE_SECONDS", 0.3)
    comm, _ = await open_socket(waiting_event.id, logged_in[0])
    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(paused=False)
    await database_sync_to_async(waiting_event.refresh_from_db)()
    # Admitted, but neither the push nor any progress broadcast reaches this server (channel layer lost).
    result = await database_sync_to_async(admission.tick)(waiting_event, publish=False)
    pulled = await comm.receive_json_from(timeout=5)
    assert pulled["type"] == "admitted" and pulled["token"] == result.admitted[0].token
    assert await closed_with(comm) == CloseCode.ADMITTED


async def test_a_failing_status_pull_keeps_the_socket_open(realtime, waiting_event, logged_in, monkeypatch, caplog):
    """A pull that meets a store outage is logged and let go; the socket stays open, and once the store is
    back the next broadcast's pull brings the admission whose push was lost."""
    from channels.layers import get_channel_layer

    import queues.store
    from queues.realtime import place

    monkeypatch.setattr(place, "CHECK_INTERVAL_SECONDS", 0.0)  # the second broadcast may pull at once
    caplog.set_level(logging.WARNING, logger="queues.realtime.consumer")

    async def broadcast_front_reached() -> None:
        """A progress decided now in which this fan (the only one) is at the front: the socket pulls."""
        progress = {"type": "progress", "event": waiting_event.id, "serving": 0, "waiting": 1, "paused": False,
                    "sale_open": True, "at": round(time.time() + 1, 3)}
        await get_channel_layer().group_send(event_group(waiting_event.id),
                                             {"type": "queue.progress", "message": progress})
        assert (await comm.receive_json_from(timeout=5))["type"] == "progress"

    comm, queued = await open_socket(waiting_event.id, logged_in[0])
    assert queued["ahead"] == 0
    with monkeypatch.context() as outage:  # the process's store answers nowhere; the working one comes back after
        outage.setattr(queues.store, "_store", queues.store.build_store(
            {"BACKEND": "queues.store.redis.RedisQueueStore", "URL": "redis://127.0.0.1:1/0"}))
        await broadcast_front_reached()
        deadline = time.monotonic() + 10
        while not any(record.getMessage().startswith("status pull failed") for record in caplog.records):
            assert time.monotonic() < deadline, "the status pull did not run and fail"
            await asyncio.sleep(0.05)
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=5))["type"] == "pong"  # still open and serving

    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(paused=False)
    await database_sync_to_async(waiting_event.refresh_from_db)()
    result = await database_sync_to_async(admission.tick)(waiting_event, publish=False)  # the push is lost
    await broadcast_front_reached()
    pulled = await comm.receive_json_from(timeout=5)
    assert pulled["type"] == "admitted" and pulled["token"] == result.admitted[0].token
    assert await closed_with(comm) == CloseCode.ADMITTED


async def test_the_event_group_holds_one_channel_per_process_not_one_per_socket(realtime, waiting_event, logged_in):
    """Broadcasts reach a process once and its sockets from there (queues/realtime/fanout.py), each socket once."""
    from channels.layers import get_channel_layer


    sockets = [(await open_socket(waiting_event.id, headers))[0] for headers in logged_in]
    layer = get_channel_layer()
    group = event_group(waiting_event.id)
    if realtime == "redis":
        connection = layer.connection(layer.consistent_hash(group))
        assert await connection.zcard(layer._group_key(group)) == 1
    else:
        assert len(layer.groups[group]) == 1
    result = await tick_and_publish(waiting_event)
    for comm in sockets:
        progress = await comm.receive_json_from(timeout=5)
        assert (progress["type"], progress["waiting"]) == ("progress", result.progress.waiting)
        assert await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()


@pytest.mark.parametrize("realtime", ["redis"], indirect=True)
async def test_a_storm_larger_than_the_channel_layer_pool_waits_instead_of_failing(realtime, waiting_event, make_user,
                                                                                   settings):
    """Each join holds channel-layer connections; past the pool, redis-py raises MaxConnectionsError and the
    socket closed without a frame. Joins in flight are bounded (QMS_JOINS_AT_ONCE), so everyone is queued."""
    layers = settings.CHANNEL_LAYERS
    config = layers["default"]["CONFIG"]
    settings.CHANNEL_LAYERS = {"default": {**layers["default"], "CONFIG": {
        **config, "hosts": [{**config["hosts"][0], "max_connections": 4}]}}}
    settings.QMS_JOINS_AT_ONCE = 1
    users = await database_sync_to_async(lambda: [make_user() for _ in range(30)])()
    opened = await asyncio.gather(*(open_socket(waiting_event.id, [ORIGIN], query=f"token={AccessToken.for_user(u)}")
                                    for u in users))
    assert sorted(first["ticket"] for _, first in opened) == list(range(1, 31))
    for comm, _ in opened:
        await comm.disconnect()


async def test_a_drain_announced_by_the_tick_refuses_the_next_socket_in_that_process(realtime, waiting_event,
                                                                                      logged_in):
    """A process keeps a copy of the event for its joins (no database per socket in a storm); the broadcast
    that follows every change drops it, so the next join sees the operator's drain."""
    first, _ = await open_socket(waiting_event.id, logged_in[0])  # this process now holds the event
    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(draining=True)
    await tick_and_publish(waiting_event)  # paused, so only the progress broadcast
    assert (await first.receive_json_from(timeout=5))["type"] == "progress"
    late, error = await open_socket(waiting_event.id, logged_in[1])
    assert (error["type"], error["code"]) == ("error", "queue_draining")
    assert await closed_with(late) == CloseCode.QUEUE_CLOSED
    await first.disconnect()


async def test_the_admitted_push_goes_to_the_socket_that_replaced_the_first(realtime, waiting_event, logged_in):
    """One device per user without a group per fan: the tick sends `admitted` to the socket the store names."""
    old, _ = await open_socket(waiting_event.id, logged_in[0])
    new, _ = await open_socket(waiting_event.id, logged_in[0])
    assert (await old.receive_json_from(timeout=5))["type"] == "superseded"
    assert await closed_with(old) == CloseCode.SUPERSEDED
    await database_sync_to_async(Event.objects.filter(pk=waiting_event.pk).update)(paused=False)
    await tick_and_publish(waiting_event)
    assert (await new.receive_json_from(timeout=5))["type"] == "admitted"
    assert await closed_with(new) == CloseCode.ADMITTED
