"""Guessing defence of access codes and enqueue tokens (queues/entry_guessing.py): refused codes and tokens are
counted per fan and per address on the shared cache, over HTTP and the socket alike; right ones never are."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlencode

import jwt
import pytest
import redis
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from events.models import AccessCode
from queues import admission, entry
from queues.protocol import CloseCode
from tests.fans import make_fans
from tests.pow import queue_url
from tests.sockets import closed_with, open_socket, session_headers
from tests.threads import DEADLINE_SECONDS

STADIUM = "203.0.113.7"  # one NAT address in front of a whole crowd
ELSEWHERE = "198.51.100.9"
RIGHT = "ALPHA-1"
SECRET = "presale-secret-" + "k" * 32


def attempt(fan, event, address: str = STADIUM, **body) -> tuple[str, object]:
    """`POST` a join from `address`: ("ok" | the refusal's code, the response)."""
    client = APIClient(REMOTE_ADDR=address)
    client.force_authenticate(fan)
    response = client.post(queue_url(event), body, format="json")
    return ("ok" if response.status_code in (200, 201) else response.json()["code"]), response


def guess(fan, event, times: int, address: str = STADIUM) -> list[str]:
    return [attempt(fan, event, address, access_code=f"GUESS-{uuid.uuid4().hex[:8]}")[0] for _ in range(times)]


def guessing_keys(settings) -> list[bytes]:
    """The defence's counters and locks as they sit in the shared Redis cache."""
    cache = settings.CACHES["default"]
    return list(redis.Redis.from_url(cache["LOCATION"]).scan_iter(f"{cache['KEY_PREFIX']}:*entry_guessing:*"))


@pytest.fixture
def with_codes(make_event):
    event = make_event(entry_policy="codes", paused=True)
    entry.add_codes(event, [RIGHT, "BRAVO-2", "CHARLIE-3"])
    return event


def invitation(event, **claims) -> str:
    body = {"evt": event.id, "exp": int(time.time()) + 300, "jti": uuid.uuid4().hex, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256")


@pytest.mark.django_db
class TestHTTP:
    def test_ten_wrong_codes_lock_the_fan_even_for_the_right_code(self, with_codes, make_user, store,
                                                                  shared_cache, settings):
        fan = make_user()
        limit = settings.QMS_ENTRY_FAILURES_PER_USER
        assert guess(fan, with_codes, limit) == ["access_code_invalid"] * (limit - 1) + ["entry_attempts_locked"]
        code, response = attempt(fan, with_codes, ELSEWHERE, access_code=RIGHT)  # any address
        assert (code, response.status_code) == ("entry_attempts_locked", 429)
        assert int(response["Retry-After"]) == response.json()["retry_after"] == settings.QMS_ENTRY_USER_LOCK_SECONDS
        assert admission.status(with_codes, fan) is None
        assert AccessCode.objects.get(code=RIGHT).used_by is None  # not looked at, not spent
        if shared_cache == "redis":
            assert guessing_keys(settings)  # every Daphne reads the same lock

    def test_the_lock_ends_by_itself_and_the_right_code_then_joins(self, with_codes, make_user, store, redis_cache,
                                                                   settings):
        fan = make_user()
        guess(fan, with_codes, settings.QMS_ENTRY_FAILURES_PER_USER - 1)
        settings.QMS_ENTRY_USER_LOCK_SECONDS = 1
        code, response = attempt(fan, with_codes, access_code="STILL-WRONG")
        assert (code, response["Retry-After"]) == ("entry_attempts_locked", "1")
        deadline = time.monotonic() + DEADLINE_SECONDS
        while (outcome := attempt(fan, with_codes, access_code=RIGHT)[0]) == "entry_attempts_locked" \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert outcome == "ok"

    def test_a_neighbour_on_the_same_address_is_unaffected(self, with_codes, make_user, store, settings):
        guesser, neighbour = make_user(), make_user()
        guess(guesser, with_codes, settings.QMS_ENTRY_FAILURES_PER_USER)
        assert attempt(neighbour, with_codes, access_code="TYPO")[0] == "access_code_invalid"
        assert attempt(neighbour, with_codes, access_code=RIGHT)[0] == "ok"

    def test_a_spray_over_many_fans_locks_the_address(self, with_codes, make_user, store, redis_cache, settings):
        """Each account guesses once (none reaches its own lock): the address's count stops the spray."""
        settings.QMS_ENTRY_FAILURES_PER_ADDRESS = 30
        outcomes = [guess(fan, with_codes, 1)[0] for fan in make_fans(30)]
        assert outcomes == ["access_code_invalid"] * 29 + ["entry_attempts_address_locked"]
        late = make_user()
        code, response = attempt(late, with_codes, access_code=RIGHT)
        assert code == "entry_attempts_address_locked"  # the code is not looked at from this address now
        assert 0 < int(response["Retry-After"]) <= settings.QMS_ENTRY_ADDRESS_LOCK_SECONDS
        assert attempt(late, with_codes, ELSEWHERE, access_code=RIGHT)[0] == "ok"  # the address's lock, not hers

    def test_no_address_count_when_it_is_set_to_zero(self, with_codes, store, settings):
        settings.QMS_ENTRY_FAILURES_PER_ADDRESS = 0
        assert [guess(fan, with_codes, 1)[0] for fan in make_fans(40)] == ["access_code_invalid"] * 40

    def test_right_codes_from_one_address_are_never_counted(self, make_event, store, redis_cache, settings):
        settings.QMS_ENTRY_FAILURES_PER_ADDRESS = 5
        event = make_event(entry_policy="codes", paused=True)
        codes = [f"FAN-{i}" for i in range(30)]
        entry.add_codes(event, codes)
        outcomes = [attempt(fan, event, access_code=code)[0] for fan, code in zip(make_fans(30), codes, strict=True)]
        assert outcomes == ["ok"] * 30
        assert guessing_keys(settings) == []

    def test_a_right_code_resets_neither_count(self, with_codes, make_user, store, settings):
        """Else a guesser would spend a round of guesses, rejoin with the own code, leave, and start over."""
        settings.QMS_ENTRY_FAILURES_PER_ADDRESS = settings.QMS_ENTRY_FAILURES_PER_USER + 2
        fan = make_user()
        below = settings.QMS_ENTRY_FAILURES_PER_USER - 1
        assert guess(fan, with_codes, below) == ["access_code_invalid"] * below
        assert attempt(fan, with_codes, access_code=RIGHT)[0] == "ok"
        assert admission.leave(with_codes, fan)
        assert guess(fan, with_codes, 1) == ["entry_attempts_locked"]
        other = make_user()
        assert guess(other, with_codes, 2) == ["access_code_invalid", "entry_attempts_address_locked"]

    def test_sending_no_code_is_not_a_guess(self, with_codes, make_user, store, settings):
        """The page's first join asks without a code to learn that one is needed."""
        fan = make_user()
        times = settings.QMS_ENTRY_FAILURES_PER_USER + 2
        assert [attempt(fan, with_codes)[0] for _ in range(times)] == ["access_code_required"] * times
        assert attempt(fan, with_codes, access_code=RIGHT)[0] == "ok"

    def test_a_locked_fan_keeps_and_rejoins_the_place_held_elsewhere(self, with_codes, make_event, make_user, store,
                                                                     settings):
        """The lock is on code attempts, at every event; a fan who holds a place is never asked for one."""
        other_sale = make_event(entry_policy="codes", paused=True)
        entry.add_codes(other_sale, ["OTHER-1"])
        fan = make_user()
        first = attempt(fan, other_sale, access_code="OTHER-1")[1].json()
        guess(fan, with_codes, settings.QMS_ENTRY_FAILURES_PER_USER)
        code, response = attempt(fan, other_sale)
        assert (code, response.json()["ticket"]) == ("ok", first["ticket"])

    @pytest.mark.parametrize("bad", ["invalid", "wrong event", "expired", "used"])
    def test_refused_enqueue_tokens_count_too(self, make_event, make_user, store, settings, bad):
        event = make_event(entry_policy="invite_only", enqueue_key=SECRET, paused=True)
        other = make_event(entry_policy="invite_only", enqueue_key=SECRET, paused=True)
        used = invitation(event)
        assert attempt(make_user(), event, ELSEWHERE, enqueue_token=used)[0] == "ok"
        token = {"invalid": lambda: "hello", "wrong event": lambda: invitation(other),
                 "expired": lambda: invitation(event, exp=int(time.time()) - 600), "used": lambda: used}[bad]
        fan, limit = make_user(), settings.QMS_ENTRY_FAILURES_PER_USER
        outcomes = [attempt(fan, event, enqueue_token=token())[0] for _ in range(limit)]
        assert outcomes[-1] == "entry_attempts_locked"
        assert len(set(outcomes[:-1])) == 1 and outcomes[0].startswith("enqueue_token_")
        assert attempt(fan, event, enqueue_token=invitation(event))[0] == "entry_attempts_locked"


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
class TestWebSocket:
    async def refused(self, event, fan, code: str | None = None) -> tuple[dict, int]:
        headers = await database_sync_to_async(session_headers)(fan)
        comm, message = await open_socket(event.id, headers, query=urlencode({"access_code": code} if code else {}))
        return message, await closed_with(comm)

    async def test_ten_wrong_codes_over_the_socket_lock_the_fan(self, make_event, make_user, realtime, redis_cache,
                                                                settings):
        event = await database_sync_to_async(make_event)(entry_policy="codes", paused=True)
        await database_sync_to_async(entry.add_codes)(event, [RIGHT])
        fan = await database_sync_to_async(make_user)()
        limit = settings.QMS_ENTRY_FAILURES_PER_USER
        closes = [await self.refused(event, fan, f"GUESS-{i}") for i in range(limit)]
        assert [(message["code"], code) for message, code in closes] == \
            [("access_code_invalid", CloseCode.ENTRY_REFUSED)] * (limit - 1) + \
            [("entry_attempts_locked", CloseCode.ENTRY_REFUSED)]
        message, code = await self.refused(event, fan, RIGHT)
        assert (message["type"], message["code"], code) == ("error", "entry_attempts_locked", CloseCode.ENTRY_REFUSED)
        assert message["retry_after"] == settings.QMS_ENTRY_USER_LOCK_SECONDS
        assert await database_sync_to_async(admission.status)(event, fan) is None
        assert guessing_keys(settings)

    async def test_http_and_socket_guesses_add_up(self, make_event, make_user, realtime, settings):
        event = await database_sync_to_async(make_event)(entry_policy="codes", paused=True)
        fan = await database_sync_to_async(make_user)()
        half = settings.QMS_ENTRY_FAILURES_PER_USER // 2
        await database_sync_to_async(guess)(fan, event, half)
        closes = [(await self.refused(event, fan, f"GUESS-{i}"))[0]["code"]
                  for i in range(settings.QMS_ENTRY_FAILURES_PER_USER - half)]
        assert closes[-1] == "entry_attempts_locked"
