"""The provably fair draw (issue 19): pre-queue keys fixed by a committed seed, revealed at the opening, and an
order anyone can check with the published rule. The verifier here is written from the issue's formula and uses
nothing of queues.draw (whose recorder the opening's tests drive)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from events.models import Event
from queues import admission
from queues import draw as recorder
from queues.store import get_store
from queues.tasks import record_draws
from tests.fans import make_fans
from tests.sockets import open_socket, session_headers

pytestmark = pytest.mark.django_db

PREQUEUE = 40
REJOINS = 5


# --- the independent verifier -------------------------------------------------------------------------------

def verifier_key(seed: str, event_id: int, user_id: int) -> bytes:
    return hmac.new(bytes.fromhex(seed), f"{event_id}:{user_id}".encode(), hashlib.sha256).digest()[:8]


def verifier_order(seed: str, event_id: int, tickets: dict[int, int]) -> list[int]:
    """Users in the published order: ascending key (8 bytes over 2**64), ties by ticket."""
    def rule(user_id: int):
        return int.from_bytes(verifier_key(seed, event_id, user_id), "big") / 2**64, tickets[user_id]
    return sorted(tickets, key=rule)


def check_entries(seed: str, commitment: str, entries: list[dict]) -> None:
    """What a fan's ten lines check: the commitment, and that the list follows the keys."""
    assert hashlib.sha256(bytes.fromhex(seed)).hexdigest() == commitment
    assert [entry["rank"] for entry in entries] == list(range(1, len(entries) + 1))
    ordered = sorted(entries, key=lambda entry: (int(entry["key"], 16) / 2**64, entry["ticket"]))
    assert [entry["ticket"] for entry in ordered] == [entry["ticket"] for entry in entries]


# --- helpers -------------------------------------------------------------------------------------------------

def prequeue_event(make_event, **fields) -> Event:
    return make_event(sale_starts_at=timezone.now() + timedelta(hours=1), paused=True, **fields)


def open_sale(event: Event) -> None:
    """The sale opens now (saved: the process's copies of the event are dropped, as an operator's edit does)."""
    event.sale_starts_at = timezone.now() - timedelta(seconds=1)
    event.save(update_fields=["sale_starts_at"])


def anyone() -> APIClient:
    return APIClient()


def fan_client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def store_position(event: Event, user) -> int:
    """The fan's place in the store's order (the pre-queue's too, which fans are not shown)."""
    return get_store().place(event.id, user.id).position


# --- the same fan, the same key ------------------------------------------------------------------------------

def test_a_fan_rejoining_over_http_keeps_the_same_key_and_place(store, make_event):
    event = prequeue_event(make_event)
    crowd = make_fans(PREQUEUE)
    for fan in crowd:
        admission.join(event, fan)
    fan, client = crowd[7], fan_client(crowd[7])
    places = set()
    for _ in range(REJOINS):
        assert client.delete(f"/api/events/{event.id}/queue/").status_code == 204
        assert client.post(f"/api/events/{event.id}/queue/").json()["state"] == "prequeue"
        places.add(store_position(event, fan))
    tickets = {user.id: get_store().place(event.id, user.id).ticket for user in crowd}
    expected = verifier_order(Event.objects.get(pk=event.pk).draw_seed, event.id, tickets).index(fan.id) + 1
    assert places == {expected}  # a new ticket each time, the same place: the key is the fan's


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_fan_rejoining_over_the_socket_keeps_the_same_key_and_place(realtime, make_event):
    event = await database_sync_to_async(prequeue_event)(make_event)
    crowd = await database_sync_to_async(make_fans)(PREQUEUE)
    for fan in crowd[1:]:
        await database_sync_to_async(admission.join)(event, fan)
    fan, headers = crowd[0], await database_sync_to_async(session_headers)(crowd[0])
    places, tickets = set(), set()
    for _ in range(REJOINS):
        comm, queued = await open_socket(event.id, headers)
        assert queued["state"] == "prequeue"
        tickets.add(queued["ticket"])
        places.add(store_position(event, fan))
        await comm.send_json_to({"type": "leave"})
        assert (await comm.receive_json_from(timeout=5))["left"] is True
        await comm.disconnect()
    seed = (await database_sync_to_async(Event.objects.get)(pk=event.pk)).draw_seed
    everyone = {user.id: 0 for user in crowd}  # keys decide: no two keys of 40 fans tie
    assert len(tickets) == REJOINS  # each re-join was a new place...
    assert places == {verifier_order(seed, event.id, everyone).index(fan.id) + 1}  # ...at the same rank


# --- the order at the opening ----------------------------------------------------------------------------------

def test_the_order_at_the_opening_is_the_one_the_revealed_seed_gives(store, make_event):
    event = prequeue_event(make_event, admit_per_minute=60000)
    crowd = make_fans(PREQUEUE)
    tickets = {fan.id: admission.join(event, fan).ticket for fan in crowd}
    early = anyone().get(f"/api/events/{event.id}/draw/entries/")
    assert (early.status_code, early.json()["code"]) == (409, "draw_not_revealed")
    open_sale(event)
    admission.tick(event)  # paused: freezes the draw, admits nobody
    record_draws()
    published = anyone().get(f"/api/events/{event.id}/draw/").json()
    entries = json.loads(b"".join(anyone().get(published["entries_url"]).streaming_content))["entries"]

    check_entries(published["seed"], published["commitment"], entries)
    assert published["prequeue_size"] == len(entries) == PREQUEUE
    assert all(set(entry) == {"rank", "ticket", "key"} for entry in entries)  # no user ids
    order = verifier_order(published["seed"], event.id, tickets)
    assert [entry["ticket"] for entry in entries] == [tickets[user] for user in order]
    for fan in crowd:  # each fan's place is their key's rank, and the status says so
        status = fan_client(fan).get(f"/api/events/{event.id}/queue/").json()
        assert status["position"] == status["draw_rank"] == order.index(fan.id) + 1
        assert verifier_key(published["seed"], event.id, fan.id).hex() == entries[status["draw_rank"] - 1]["key"]


def test_a_fan_keeps_the_draw_rank_after_admission(store, make_event):
    event = prequeue_event(make_event, admit_per_minute=60000)
    crowd = make_fans(5)
    for fan in crowd:
        admission.join(event, fan)
    open_sale(event)
    admission.tick(event)  # paused: the draw is frozen
    record_draws()
    ranks = {fan.id: fan_client(fan).get(f"/api/events/{event.id}/queue/").json()["draw_rank"] for fan in crowd}
    Event.objects.filter(pk=event.pk).update(paused=False)
    event.refresh_from_db()
    assert len(admission.tick(event).admitted) == len(crowd)
    statuses = [fan_client(fan).get(f"/api/events/{event.id}/queue/").json() for fan in crowd]
    assert {status["state"] for status in statuses} == {"admitted"}
    assert {fan.id: status["draw_rank"] for fan, status in zip(crowd, statuses, strict=True)} == ranks
    assert sorted(ranks.values()) == [1, 2, 3, 4, 5]


def test_fans_who_join_after_the_opening_have_no_draw_rank(store, make_event):
    event = make_event(paused=True)
    admission.tick(event)
    fan = make_fans(1)[0]
    status = fan_client(fan).post(f"/api/events/{event.id}/queue/").json()
    assert (status["ticket"], status["draw_rank"]) == (1, None)


def test_the_status_of_a_fan_who_joined_after_the_opening_reads_nothing_of_the_draw(store, make_event):
    """Polling clients ask every few seconds: a ticket above every drawn one costs no draw query; a drawn fan's
    still finds its rank."""
    event = prequeue_event(make_event)
    drawn, late = make_fans(2)
    admission.join(event, drawn)
    open_sale(event)
    admission.tick(event)  # paused: the draw (one fan) is frozen
    record_draws()
    admission.join(event, late)
    late_client, drawn_client = fan_client(late), fan_client(drawn)
    late_client.get(f"/api/events/{event.id}/queue/")  # this process learns the highest drawn ticket once
    with CaptureQueriesContext(connection) as queries:
        status = late_client.get(f"/api/events/{event.id}/queue/").json()
    assert status["draw_rank"] is None
    assert not [query for query in queries if "queues_draw" in query["sql"]]
    assert drawn_client.get(f"/api/events/{event.id}/queue/").json()["draw_rank"] == 1


# --- the opening costs the first admissions nothing: the record is written after them ----------------------

def published_entries(event: Event) -> tuple[dict, list[dict]]:
    published = anyone().get(f"/api/events/{event.id}/draw/").json()
    return published, json.loads(b"".join(anyone().get(published["entries_url"]).streaming_content))["entries"]


def assert_recorded_as_verified(event: Event, tickets: dict[int, int]) -> list[int]:
    """The complete record is the verifier's order of every pre-queue fan; returns that order (users)."""
    published, entries = published_entries(event)
    check_entries(published["seed"], published["commitment"], entries)
    order = verifier_order(published["seed"], event.id, tickets)
    assert published["prequeue_size"] == len(entries) == len(tickets)
    assert [entry["ticket"] for entry in entries] == [tickets[user] for user in order]
    assert [entry["key"] for entry in entries] == [verifier_key(published["seed"], event.id, u).hex() for u in order]
    return order


def test_the_opening_tick_admits_before_the_draw_is_recorded(store, make_event):
    event = prequeue_event(make_event, admit_per_minute=600)
    crowd = make_fans(PREQUEUE)
    tickets = {fan.id: admission.join(event, fan).ticket for fan in crowd}
    event.paused = False
    event.save(update_fields=["paused"])
    open_sale(event)
    first = admission.tick(event).admitted
    assert first  # the opening tick admitted...
    unrecorded = anyone().get(f"/api/events/{event.id}/draw/entries/")
    assert (unrecorded.status_code, unrecorded.json()["code"]) == (409, "draw_not_recorded")  # ...with no record yet
    assert anyone().get(f"/api/events/{event.id}/draw/").json()["prequeue_size"] == PREQUEUE
    assert fan_client(crowd[0]).get(f"/api/events/{event.id}/queue/").json()["draw_rank"] is None
    record_draws()
    order = assert_recorded_as_verified(event, tickets)  # the admitted fans too: the draw as it stood before them
    assert sorted(row.user_id for row in first) == sorted(order[:len(first)])  # and they were the draw's first
    for fan in crowd:
        assert fan_client(fan).get(f"/api/events/{event.id}/queue/").json()["draw_rank"] == order.index(fan.id) + 1


def test_a_recording_cut_short_and_run_again_leaves_one_complete_record(store, make_event, monkeypatch):
    event = prequeue_event(make_event, admit_per_minute=600)
    seed = Event.objects.get(pk=event.pk).draw_seed  # fans join in key order: the half record lacks the top ticket
    crowd = sorted(make_fans(PREQUEUE), key=lambda fan: verifier_key(seed, event.id, fan.id))
    tickets = {fan.id: admission.join(event, fan).ticket for fan in crowd}
    event.paused = False
    event.save(update_fields=["paused"])
    open_sale(event)
    admission.tick(event)
    monkeypatch.setattr(recorder, "ENTRIES_WRITE_BATCH", 7)
    assert [recorder.record_batch(event) for _ in range(2)] == [False, False]  # the recorder dies here
    assert (anyone().get(f"/api/events/{event.id}/draw/entries/").status_code, recorder.rank_of(event, crowd[0].id)) \
        == (409, None)  # half a record is no record
    assert fan_client(crowd[-1]).get(f"/api/events/{event.id}/queue/").json()["draw_rank"] is None  # nor its top ticket
    admission.tick(event)  # admissions go on meanwhile, and do not touch the frozen draw
    record_draws()  # the next run goes on where the last stopped
    record_draws()  # and a run after the end writes nothing
    order = assert_recorded_as_verified(event, tickets)
    for fan in crowd:  # the highest drawn ticket a status learns is the complete record's, not the half's
        assert fan_client(fan).get(f"/api/events/{event.id}/queue/").json()["draw_rank"] == order.index(fan.id) + 1


# --- the seed stays secret until the opening -------------------------------------------------------------------

def test_the_seed_is_not_readable_before_the_opening_and_is_after(store, make_event, make_user, caplog):
    event = prequeue_event(make_event)
    seed = Event.objects.get(pk=event.pk).draw_seed
    staff = make_user(is_staff=True, is_superuser=True)
    fan = make_user()
    with caplog.at_level(logging.DEBUG):
        admission.join(event, fan)
        admission.tick(event)

    def everything_readable() -> dict[str, str]:
        page = Client()
        page.force_login(fan)
        admin = Client()
        admin.force_login(staff)
        return {
            "event API (staff)": fan_client(staff).get(f"/api/events/{event.id}/").content.decode(),
            "event API (fan)": fan_client(fan).get(f"/api/events/{event.id}/").content.decode(),
            "events list": fan_client(fan).get("/api/events/").content.decode(),
            "draw API": anyone().get(f"/api/events/{event.id}/draw/").content.decode(),
            "queue status": fan_client(fan).get(f"/api/events/{event.id}/queue/").content.decode(),
            "waiting room": page.get(f"/events/{event.id}/waiting-room/").content.decode(),
            "admin": admin.get(f"/admin/events/event/{event.id}/change/").content.decode(),
            "logs": caplog.text + "".join(repr(vars(record)) for record in caplog.records),  # extras too
        }

    before = everything_readable()
    commitment = hashlib.sha256(bytes.fromhex(seed)).hexdigest()
    assert [where for where, text in before.items() if seed in text] == []
    assert commitment in before["event API (fan)"] and commitment in before["draw API"]
    assert commitment in before["admin"]
    open_sale(event)
    after = everything_readable()
    assert seed in after["draw API"] and seed in after["admin"]  # the same reads do show a revealed seed


def test_the_seed_cannot_be_set_or_changed_through_the_api(store, make_event, make_user):
    event = prequeue_event(make_event)
    seed = Event.objects.get(pk=event.pk).draw_seed
    staff = fan_client(make_user(is_staff=True, is_superuser=True))
    staff.patch(f"/api/events/{event.id}/", {"draw_seed": "00" * 32}, format="json")
    assert Event.objects.get(pk=event.pk).draw_seed == seed


def test_every_event_has_a_seed_of_its_own(make_event):
    seeds = {make_event().draw_seed for _ in range(3)}
    assert len(seeds) == 3 and all(len(bytes.fromhex(seed)) == 32 for seed in seeds)


# --- the random method -----------------------------------------------------------------------------------------

def fresh_queue(event: Event, crowd: list) -> int:
    """The store's queue of `event` emptied and joined by `crowd` in order; returns the serving watermark (a reset
    keeps it)."""
    get_store().reset(event.id)
    for fan in crowd:
        admission.join(event, fan)
    return get_store().snapshot(event.id).served


def rule_seed(seed: str, event_id: int, draw_number: int) -> int:
    """The issue's rule for a `random` tick: HMAC-SHA256(seed, "<event>:tick:<serving watermark>")[:8] mod 2**31."""
    mac = hmac.new(bytes.fromhex(seed), f"{event_id}:tick:{draw_number}".encode(), hashlib.sha256).digest()
    return int.from_bytes(mac[:8], "big") % 2**31


def test_random_method_draws_are_reproducible_from_the_seed_and_the_draw_number(store, make_event):
    event = make_event(paused=True, queueing_method="random", admit_per_minute=60000)
    crowd = make_fans(30)
    drawn = {}
    for _ in range(2):  # two draws, at two watermarks
        number = fresh_queue(event, crowd)
        drawn[number] = sorted(row.user_id for row in admission.tick(event, extra=5).admitted)
    assert len(drawn) == 2 and list(drawn.values())[0] != list(drawn.values())[1]
    for number, fans in drawn.items():  # anyone holding the seed redraws each: the same queue, the rule's seed
        fresh_queue(event, crowd)
        batch = get_store().admit_batch(event.id, limit=5, rate_per_second=1e9, burst=5.0, now=0.0,
                                        abandon_before=-1.0, draw_seed=rule_seed(event.draw_seed, event.id, number))
        assert sorted(popped.user_id for popped in batch.admitted) == fans
