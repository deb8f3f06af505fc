"""Promises docs/API.md makes that no other test checks, over the real HTTP API and the ASGI socket.

Close 4409 (draining, pre-queue not open) and 4003 (reset), the `admitted`
frame's fields, the proof-of-work limits and the fresh challenge every 428
carries, English `detail`s whatever the Accept-Language, the page size bounds.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from events.models import Event
from queues import admission, challenge
from queues.models import Admission
from tests import sockets
from tests.pow import join, queue_url

pytestmark = pytest.mark.django_db(transaction=True)

DIFFICULTY = 8
MAX_SOLUTION = 64  # docs/API.md: "a string of at most 64 characters"


def socket(event_id: int, user, **query: str) -> sockets.Communicator:
    params = urlencode({"token": str(AccessToken.for_user(user)), **query})
    return sockets.socket(event_id, query=params)


async def refused(event_id: int, user, **query: str) -> tuple[dict, int]:
    """The `error` frame and close code a refused connection gets."""
    comm = socket(event_id, user, **query)
    connected, _ = await comm.connect(timeout=5)
    assert connected, "a refusal is explained in a frame, after the handshake"
    error = await comm.receive_json_from(timeout=5)
    closed = await comm.receive_output(timeout=5)
    assert closed["type"] == "websocket.close", closed
    return error, closed["code"]


def staff_client(make_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(make_user(is_staff=True, is_superuser=True))
    return client


# --- close codes -----------------------------------------------------------------------------------


def test_a_draining_event_refuses_a_new_socket_with_4409(realtime, make_event, make_user):
    event = make_event(paused=True, draining=True)
    error, code = async_to_sync(refused)(event.id, make_user())
    assert (error["type"], error["code"], code) == ("error", "queue_draining", 4409)
    assert error["detail"]


def test_a_prequeue_not_open_yet_refuses_a_socket_with_4409(realtime, make_event, make_user):
    event = make_event(prequeue_opens_at=timezone.now() + timedelta(minutes=10),
                       sale_starts_at=timezone.now() + timedelta(minutes=20))
    error, code = async_to_sync(refused)(event.id, make_user())
    assert (error["type"], error["code"], code) == ("error", "queue_not_open", 4409)
    assert datetime.fromisoformat(error["opens_at"]) == event.prequeue_opens_at  # the page retries then


def test_a_draining_event_keeps_the_sockets_of_fans_already_waiting(realtime, make_event, make_user):
    """4409 is for newcomers: a fan who holds a place reconnects and is queued."""
    event = make_event(paused=True)
    fan = make_user()
    admission.join(event, fan)
    Event.objects.filter(pk=event.pk).update(draining=True)

    async def reconnect() -> dict:
        comm = socket(event.id, fan)
        assert (await comm.connect(timeout=5))[0]
        queued = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return queued

    assert async_to_sync(reconnect)()["type"] == "queued"


def test_a_reset_tells_waiting_sockets_and_closes_them_with_4003(realtime, make_event, make_user):
    event = make_event(paused=True)
    fan = make_user()
    staff = staff_client(make_user)

    async def scenario() -> tuple[dict, int]:
        comm = socket(event.id, fan)
        assert (await comm.connect(timeout=5))[0]
        assert (await comm.receive_json_from(timeout=5))["type"] == "queued"
        answer = await database_sync_to_async(staff.post)(f"/api/events/{event.id}/queue/reset/")
        assert answer.status_code == 200, answer.content
        frame = await comm.receive_json_from(timeout=5)
        while frame["type"] == "progress":  # a broadcast may come first
            frame = await comm.receive_json_from(timeout=5)
        closed = await comm.receive_output(timeout=5)
        return frame, closed.get("code")

    frame, code = async_to_sync(scenario)()
    assert (frame["type"], frame["event"], code) == ("reset", event.id, 4003)
    assert admission.status(event, fan) is None  # the place is gone: reconnecting joins at the back


# --- the admitted frame ----------------------------------------------------------------------------


def test_the_admitted_frame_carries_ticket_token_expiry_redirect_and_issue_time(realtime, make_event, make_user):
    event = make_event(paused=True, admit_per_minute=6000)
    fan = make_user()

    async def scenario() -> tuple[dict, dict, int]:
        comm = socket(event.id, fan)
        assert (await comm.connect(timeout=5))[0]
        queued = await comm.receive_json_from(timeout=5)
        await database_sync_to_async(Event.objects.filter(pk=event.pk).update)(paused=False)
        await database_sync_to_async(event.refresh_from_db)()
        await database_sync_to_async(admission.tick)(event)
        frame = await comm.receive_json_from(timeout=5)
        while frame["type"] == "progress":
            frame = await comm.receive_json_from(timeout=5)
        closed = await comm.receive_output(timeout=5)
        return queued, frame, closed.get("code")

    queued, admitted, code = async_to_sync(scenario)()
    row = Admission.objects.get(event=event, user=fan)
    assert (admitted["type"], code) == ("admitted", 4000)
    assert admitted["ticket"] == queued["ticket"] == row.ticket
    assert admitted["token"] == row.token
    assert admitted["redirect_url"] == f"{event.reservation_url}?token={row.token}"
    assert isinstance(admitted["issued_at"], int | float)  # epoch seconds
    assert admitted["issued_at"] == pytest.approx(row.issued_at.timestamp(), abs=0.001)
    assert admitted["expires_at"]


# --- proof of work -----------------------------------------------------------------------------------


def solution_of_length(issued: dict, length: int) -> str:
    """A solution of exactly `length` characters (a zero-padded counter) that meets the difficulty."""
    counter = 0
    while not challenge.solves(issued["challenge"], f"{counter:0{length}d}", issued["difficulty"]):
        counter += 1
    return f"{counter:0{length}d}"


def assert_fresh_challenge(response, code: str, sent: str | None = None) -> dict:
    """A 428 with `code`, carrying a new challenge that has not expired."""
    assert response.status_code == 428, response.content
    body = response.json()
    assert body["code"] == code
    issued = body["challenge"]
    assert issued["challenge"] != sent
    assert issued["difficulty"] == DIFFICULTY and issued["algorithm"] == "sha256-leading-zero-bits"
    assert timezone.datetime.fromisoformat(issued["expires_at"].replace("Z", "+00:00")) > timezone.now()
    return issued


@pytest.fixture
def pow_event(make_event):
    return make_event(pow_difficulty=DIFFICULTY, paused=True)


@pytest.fixture
def pow_fan(make_user) -> tuple:
    fan = make_user()
    client = APIClient()
    client.force_authenticate(fan)
    return fan, client


def test_a_solution_of_at_most_64_characters_is_accepted(store, pow_event, pow_fan):
    _, client = pow_fan
    issued = assert_fresh_challenge(join(client, pow_event), "pow_required")
    answer = join(client, pow_event, {"challenge": issued["challenge"],
                                      "solution": solution_of_length(issued, MAX_SOLUTION)})
    assert answer.status_code == 201, answer.content


def test_a_longer_solution_is_refused_even_when_it_solves(store, pow_event, pow_fan):
    _, client = pow_fan
    issued = assert_fresh_challenge(join(client, pow_event), "pow_required")
    too_long = solution_of_length(issued, MAX_SOLUTION + 1)
    assert challenge.solves(issued["challenge"], too_long, DIFFICULTY)
    answer = join(client, pow_event, {"challenge": issued["challenge"], "solution": too_long})
    assert_fresh_challenge(answer, "pow_invalid", sent=issued["challenge"])


def test_an_expired_challenge_answers_a_fresh_one_that_then_takes_a_place(store, pow_event, pow_fan):
    fan, client = pow_fan
    old = challenge.issue_challenge(pow_event, fan, now=time.time() - challenge.TTL_SECONDS - 1)
    stale = {"challenge": old["challenge"], "solution": challenge.solve(old["challenge"], DIFFICULTY)}
    fresh = assert_fresh_challenge(join(client, pow_event, stale), "pow_expired", sent=old["challenge"])
    answer = join(client, pow_event, {"challenge": fresh["challenge"],
                                      "solution": challenge.solve(fresh["challenge"], DIFFICULTY)})
    assert answer.status_code == 201 and answer.json()["state"] == "waiting"


def test_every_proof_of_work_refusal_carries_a_fresh_challenge(store, pow_event, pow_fan):
    _, client = pow_fan
    issued = assert_fresh_challenge(join(client, pow_event), "pow_required")
    wrong = next(str(n) for n in range(10_000) if not challenge.solves(issued["challenge"], str(n), DIFFICULTY))
    again = assert_fresh_challenge(join(client, pow_event, {"challenge": issued["challenge"], "solution": wrong}),
                                   "pow_invalid", sent=issued["challenge"])
    forged = assert_fresh_challenge(join(client, pow_event, {"challenge": again["challenge"] + "x", "solution": "1"}),
                                    "pow_invalid", sent=again["challenge"] + "x")
    assert forged["challenge"] != again["challenge"]


def test_the_socket_refusal_carries_a_solvable_challenge_and_its_solution_is_accepted(realtime, pow_event, pow_fan):
    fan, _ = pow_fan
    error, code = async_to_sync(refused)(pow_event.id, fan)
    assert (error["code"], code) == ("pow_required", 4428)
    issued = error["challenge"]
    solution = challenge.solve(issued["challenge"], issued["difficulty"])

    async def solved() -> dict:
        comm = socket(pow_event.id, fan, pow_challenge=issued["challenge"], pow_solution=solution)
        assert (await comm.connect(timeout=5))[0]
        queued = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return queued

    assert solved_state(async_to_sync(solved)()) == "waiting"


def solved_state(frame: dict) -> str:
    assert frame["type"] == "queued", frame
    return frame["state"]


# --- language of API errors -----------------------------------------------------------------------


@pytest.mark.parametrize("case", ["unauthenticated", "unknown_event", "draining", "pow_required",
                                  "invalid_field", "not_found_route"])
def test_api_details_stay_english_under_a_german_accept_language(case, store, make_event, make_user):
    fan = make_user()
    client = APIClient()
    if case != "unauthenticated":
        client.force_authenticate(fan)
    event = make_event(paused=True, draining=case == "draining",
                       pow_difficulty=DIFFICULTY if case == "pow_required" else 0)
    request = {
        "unauthenticated": lambda **h: client.post(queue_url(event), **h),
        "unknown_event": lambda **h: client.post("/api/events/424242/queue/", **h),
        "draining": lambda **h: client.post(queue_url(event), **h),
        "pow_required": lambda **h: client.post(queue_url(event), **h),
        "invalid_field": lambda **h: client.post("/api/admissions/verify/", {"token": 7, "redeem": "vielleicht"},
                                                 format="json", **h),
        "not_found_route": lambda **h: client.get("/api/no-such-thing/", **h),
    }[case]
    english = request(HTTP_ACCEPT_LANGUAGE="en")
    german = request(HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    assert german.status_code == english.status_code >= 400
    assert german.json() | {"challenge": None} == english.json() | {"challenge": None}, german.json()
    assert english.json()["detail"].isascii()


# --- page size bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [2**63, 2**63 + 1, 2**64])
def test_a_huge_page_size_is_clamped_not_a_server_error(limit, make_event):
    """Regression: schemathesis found `?limit=2**63` answered 500 (PostgreSQL's bigint overflowed)."""
    for _ in range(3):
        make_event()
    response = APIClient().get(f"/api/events/?limit={limit}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["count"], len(body["results"])) == (3, 3)
