"""Proof of work on join: the 428 challenge over HTTP, close 4428 over the socket, no replay, no lost places."""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlencode

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from queues import admission, challenge
from queues.protocol import CloseCode
from tests.pow import join, queue_url
from tests.sockets import closed_with, open_socket, session_headers, socket

DIFFICULTY = 8  # cheap for the tests; the rule is the same at any difficulty


@pytest.fixture
def fan(make_user):
    return make_user("powfan")


@pytest.fixture
def client(fan):
    api = APIClient()
    api.force_authenticate(fan)
    return api


def solved(issued: dict) -> dict:
    return {"challenge": issued["challenge"], "solution": challenge.solve(issued["challenge"], issued["difficulty"])}


def unsolved(issued: dict) -> dict:
    """A solution that misses the difficulty (the first counter whose hash has a one bit too early)."""
    counter = 0
    while challenge.solves(issued["challenge"], str(counter), issued["difficulty"]):
        counter += 1
    return {"challenge": issued["challenge"], "solution": str(counter)}


@pytest.mark.django_db
class TestHTTP:
    def test_join_without_a_solution_answers_428_with_a_challenge(self, client, make_event, store, fan):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        response = join(client, event)
        assert response.status_code == 428
        body = response.json()
        assert body["code"] == "pow_required"
        assert body["detail"]
        assert body["challenge"]["difficulty"] == DIFFICULTY
        assert body["challenge"]["algorithm"] == "sha256-leading-zero-bits"
        assert body["challenge"]["expires_at"].endswith("Z")
        assert admission.status(event, fan) is None  # no place was taken

    def test_a_valid_solution_takes_a_place(self, client, make_event, store, fan):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        issued = join(client, event).json()["challenge"]
        pow_body = solved(issued)
        digest = hashlib.sha256(f"{pow_body['challenge']}:{pow_body['solution']}".encode()).digest()
        assert challenge.leading_zero_bits(digest) >= DIFFICULTY  # the documented rule, computed independently
        response = join(client, event, pow_body)
        assert response.status_code == 201, response.json()
        assert response.json()["state"] == "waiting"
        assert admission.status(event, fan) is not None

    def test_a_wrong_solution_is_pow_invalid_with_a_new_challenge(self, client, make_event, store):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        issued = join(client, event).json()["challenge"]
        response = join(client, event, unsolved(issued))
        assert response.status_code == 428
        assert response.json()["code"] == "pow_invalid"
        assert response.json()["challenge"]["challenge"] != issued["challenge"]

    def test_a_tampered_challenge_is_pow_invalid(self, client, make_event, store):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        issued = join(client, event).json()["challenge"]
        forged = issued["challenge"].replace(".", ".9", 1)  # another event id, same signature
        response = join(client, event, {"challenge": forged, "solution": challenge.solve(forged, DIFFICULTY)})
        assert response.json()["code"] == "pow_invalid"

    def test_a_challenge_of_another_fan_is_refused(self, client, make_event, make_user, store):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        other = APIClient()
        other.force_authenticate(make_user())
        issued = join(other, event).json()["challenge"]
        response = join(client, event, solved(issued))
        assert response.status_code == 428
        assert response.json()["code"] == "pow_invalid"

    def test_an_expired_challenge_is_pow_expired(self, client, make_event, store, fan):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        old = challenge.issue_challenge(event, fan, now=time.time() - challenge.TTL_SECONDS - 1)
        response = join(client, event, solved(old))
        assert response.status_code == 428
        assert response.json()["code"] == "pow_expired"

    def test_a_used_challenge_cannot_be_replayed(self, client, make_event, store, fan, shared_cache):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        pow_body = solved(join(client, event).json()["challenge"])
        assert join(client, event, pow_body).status_code == 201
        assert client.delete(queue_url(event)).status_code == 204  # no place any more: a solution is needed again
        response = join(client, event, pow_body)
        assert response.status_code == 428
        assert response.json()["code"] == "pow_invalid"

    def test_a_queued_fan_rejoins_without_a_solution(self, client, make_event, store):
        event = make_event(pow_difficulty=DIFFICULTY, paused=True)
        first = join(client, event, solved(join(client, event).json()["challenge"])).json()
        again = join(client, event)
        assert again.status_code == 200
        assert again.json()["ticket"] == first["ticket"]

    def test_an_admitted_fan_rejoins_without_a_solution(self, client, make_event, store):
        event = make_event(pow_difficulty=DIFFICULTY)  # open, nobody ahead: admitted on join
        first = join(client, event, solved(join(client, event).json()["challenge"])).json()
        assert first["state"] == "admitted"
        again = join(client, event)
        assert again.status_code == 200
        assert again.json()["state"] == "admitted"

    def test_no_difficulty_no_challenge(self, client, make_event, store):
        event = make_event(pow_difficulty=0, paused=True)
        response = join(client, event)
        assert response.status_code == 201
        assert "challenge" not in response.json()

    def test_a_draining_event_says_so_rather_than_asking_for_work(self, client, make_event, store):
        event = make_event(pow_difficulty=DIFFICULTY, draining=True)
        response = join(client, event)
        assert response.status_code == 409
        assert response.json()["code"] == "queue_draining"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
class TestWebSocket:
    async def test_without_a_solution_the_socket_sends_a_challenge_and_closes_4428(self, make_event, fan, realtime):
        event = await database_sync_to_async(make_event)(pow_difficulty=DIFFICULTY, paused=True)
        headers = await database_sync_to_async(session_headers)(fan)
        comm, message = await open_socket(event.id, headers)
        assert message["type"] == "error"
        assert message["code"] == "pow_required"
        assert message["challenge"]["difficulty"] == DIFFICULTY
        assert await closed_with(comm) == CloseCode.POW_REQUIRED
        assert await database_sync_to_async(admission.status)(event, fan) is None

    async def test_with_a_valid_solution_the_fan_is_queued(self, make_event, fan, realtime):
        event = await database_sync_to_async(make_event)(pow_difficulty=DIFFICULTY, paused=True)
        issued = await database_sync_to_async(challenge.issue_challenge)(event, fan)
        pow_body = solved(issued)
        headers = await database_sync_to_async(session_headers)(fan)
        query = urlencode({"pow_challenge": pow_body["challenge"], "pow_solution": pow_body["solution"]})
        comm, message = await open_socket(event.id, headers, query=query)
        assert message["type"] == "queued"
        assert message["position"] == 1
        await comm.disconnect()

        # The place exists now: the next socket needs no solution (and keeps the ticket).
        comm, again = await open_socket(event.id, headers)
        assert again["type"] == "queued"
        assert again["ticket"] == message["ticket"]
        await comm.disconnect()

    async def test_a_wrong_solution_closes_4428_pow_invalid(self, make_event, fan, realtime):
        event = await database_sync_to_async(make_event)(pow_difficulty=DIFFICULTY, paused=True)
        issued = await database_sync_to_async(challenge.issue_challenge)(event, fan)
        headers = await database_sync_to_async(session_headers)(fan)
        bad = unsolved(issued)
        comm = socket(event.id, headers, query=urlencode({"pow_challenge": bad["challenge"],
                                                          "pow_solution": bad["solution"]}))
        assert (await comm.connect(timeout=5))[0]
        message = await comm.receive_json_from(timeout=5)
        assert message["code"] == "pow_invalid"
        assert await closed_with(comm) == CloseCode.POW_REQUIRED
