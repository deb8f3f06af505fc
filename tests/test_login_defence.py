"""Login defence that keeps shared addresses working (queues/login_defence.py): failed logins are counted per
username and per address on the shared cache, successful logins and joins are not counted per address at all."""

from __future__ import annotations

import time

import pytest
import redis
from django.test import Client
from rest_framework.test import APIClient

from tests.fans import make_fans
from tests.threads import DEADLINE_SECONDS

pytestmark = pytest.mark.django_db

PASSWORD = "pw-123456"  # the conftest's make_user password
STADIUM = "203.0.113.7"  # one NAT address in front of a whole crowd
ELSEWHERE = "198.51.100.9"


def token_login(username: str, password: str, address: str = STADIUM) -> tuple[str, object]:
    """`POST /api/auth/token/` from `address`: ("ok" | "wrong" | the lock's code, the response)."""
    response = APIClient(REMOTE_ADDR=address).post("/api/auth/token/", {"username": username, "password": password},
                                                   format="json")
    if response.status_code == 429:
        return response.json()["code"], response
    return {200: "ok", 401: "wrong"}[response.status_code], response


# The page speaks English without an Accept-Language; its lock message names which count locked.
PAGE_LOCKS = {"for this username": "login_locked", "from your network": "login_address_locked"}


def page_login(username: str, password: str, address: str = STADIUM, **headers) -> tuple[str, object]:
    """`POST /accounts/login/` from `address`: ("ok" | "wrong" | the lock's code, the response)."""
    response = Client(REMOTE_ADDR=address, **headers).post("/accounts/login/",
                                                           {"username": username, "password": password})
    if response.status_code == 429:
        text = response.content.decode()
        return next((code for words, code in PAGE_LOCKS.items() if words in text), "locked"), response
    return {302: "ok", 200: "wrong"}[response.status_code], response


LOGINS = pytest.mark.parametrize("login", [token_login, page_login], ids=["token", "page"])


def defence_keys(settings) -> list[bytes]:
    """The login defence's counters and locks as they sit in the shared Redis cache."""
    cache = settings.CACHES["default"]
    return list(redis.Redis.from_url(cache["LOCATION"]).scan_iter(f"{cache['KEY_PREFIX']}:*login_defence:*"))


def fail(login, username: str, times: int, address: str = STADIUM) -> list[str]:
    return [login(username, "wrong", address)[0] for _ in range(times)]


@LOGINS
def test_200_successful_logins_from_one_address_all_pass(login, redis_cache, settings):
    """A stadium's NAT: every fan who types the password right gets in, and nothing is counted for it."""
    fans = make_fans(200, password=PASSWORD)
    outcomes = [login(fan.username, PASSWORD)[0] for fan in fans]
    assert outcomes == ["ok"] * 200
    assert defence_keys(settings) == []


def test_200_joins_from_one_address_all_pass(redis_store, make_event, redis_cache, settings):
    """No per-address join throttle: the per-user one still runs, on the shared Redis."""
    event = make_event(paused=True)
    client = APIClient(REMOTE_ADDR=STADIUM)
    statuses = []
    for fan in make_fans(200):
        client.force_authenticate(fan)
        statuses.append(client.post(f"/api/events/{event.id}/queue/").status_code)
    assert statuses == [201] * 200
    cache = settings.CACHES["default"]
    assert any(redis.Redis.from_url(cache["LOCATION"]).scan_iter(f"{cache['KEY_PREFIX']}:*throttle_join_user_*"))


@LOGINS
def test_ten_failures_lock_the_username_everywhere_even_for_the_right_password(login, make_user, shared_cache,
                                                                               settings):
    user, neighbour = make_user(), make_user()
    limit = settings.QMS_LOGIN_FAILURES_PER_USERNAME
    assert fail(login, user.username, limit) == ["wrong"] * (limit - 1) + ["login_locked"]
    code, response = login(user.username, PASSWORD)
    assert code == "login_locked"
    assert int(response["Retry-After"]) == settings.QMS_LOGIN_USERNAME_LOCK_SECONDS
    assert login(user.username.upper(), PASSWORD, ELSEWHERE)[0] == "login_locked"  # any address, any case
    assert login(neighbour.username, PASSWORD)[0] == "ok"  # the address is not locked by one username
    if shared_cache == "redis":
        assert defence_keys(settings)  # every Daphne reads the same lock


def test_the_locked_token_login_answers_429_with_the_code(make_user, settings):
    user = make_user()
    fail(token_login, user.username, settings.QMS_LOGIN_FAILURES_PER_USERNAME)
    _, response = token_login(user.username, PASSWORD)
    assert response.status_code == 429
    assert response.json() == {"code": "login_locked", "detail": response.json()["detail"]}
    assert "access" not in response.json()


def test_a_successful_login_resets_the_username_count(make_user, settings):
    user = make_user()
    below = settings.QMS_LOGIN_FAILURES_PER_USERNAME - 1
    assert fail(token_login, user.username, below) == ["wrong"] * below
    assert token_login(user.username, PASSWORD)[0] == "ok"
    assert fail(token_login, user.username, below) == ["wrong"] * below
    assert token_login(user.username, PASSWORD)[0] == "ok"


@LOGINS
def test_a_spray_from_one_address_is_held_for_the_address_window(login, make_user, redis_cache, settings):
    """Many usernames, a few guesses each (no username reaches its lock): the address's own count stops it."""
    settings.QMS_LOGIN_FAILURES_PER_ADDRESS = 30
    fan = make_user()
    outcomes = [login(f"victim{i}", "Summer2026!")[0] for i in range(30)]
    assert outcomes == ["wrong"] * 29 + ["login_address_locked"]
    code, response = login(fan.username, PASSWORD)
    assert code == "login_address_locked"  # the password is not even checked from this address now
    assert 0 < int(response["Retry-After"]) <= settings.QMS_LOGIN_ADDRESS_LOCK_SECONDS
    assert login(fan.username, PASSWORD, ELSEWHERE)[0] == "ok"  # the lock is the address's, not the fans'


def test_a_sprayer_cannot_spread_its_failures_over_forged_forwarded_addresses(make_user, settings):
    """X-Forwarded-For is read from trusted proxies only (queues/client_address.py): from anyone else, every
    failure counts against the peer's own address, whatever the header says."""
    settings.QMS_LOGIN_FAILURES_PER_ADDRESS = 10
    outcomes = [APIClient(REMOTE_ADDR=STADIUM, HTTP_X_FORWARDED_FOR=f"10.9.8.{i}").post(
        "/api/auth/token/", {"username": f"victim{i}", "password": "wrong"}, format="json").status_code
        for i in range(10)]
    assert outcomes == [401] * 9 + [429]


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted_not_the_proxy(make_user, settings):
    settings.QMS_LOGIN_FAILURES_PER_ADDRESS = 10
    proxy = {"REMOTE_ADDR": "127.0.0.1"}  # QMS_TRUSTED_PROXIES' default
    for i in range(12):  # twelve clients behind one nginx, one failure each: none is held
        response = APIClient(**proxy, HTTP_X_FORWARDED_FOR=f"203.0.113.{i}").post(
            "/api/auth/token/", {"username": f"victim{i}", "password": "wrong"}, format="json")
        assert response.status_code == 401


def test_a_success_does_not_reset_the_address_count(make_user, settings):
    """Else a sprayer with one valid account would log in with it between rounds and start over."""
    settings.QMS_LOGIN_FAILURES_PER_ADDRESS = 10
    settings.QMS_LOGIN_FAILURES_PER_USERNAME = 100
    sprayer = make_user()
    assert fail(token_login, "victim", 9) == ["wrong"] * 9
    assert token_login(sprayer.username, PASSWORD)[0] == "ok"
    assert token_login("victim", "wrong")[0] == "login_address_locked"


def test_the_lock_ends_by_itself(make_user, redis_cache, settings):
    """The lock is a key with the cache's own expiry (Redis's, here), not a record someone must clear."""
    user = make_user()
    fail(token_login, user.username, settings.QMS_LOGIN_FAILURES_PER_USERNAME - 1)
    settings.QMS_LOGIN_USERNAME_LOCK_SECONDS = 1
    code, response = token_login(user.username, "wrong")
    assert (code, response["Retry-After"]) == ("login_locked", "1")
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (outcome := token_login(user.username, PASSWORD)[0]) == "login_locked" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert outcome == "ok"


def test_the_login_page_says_so_in_german(make_user, settings):
    user = make_user()
    fail(page_login, user.username, settings.QMS_LOGIN_FAILURES_PER_USERNAME)
    code, response = page_login(user.username, PASSWORD, HTTP_ACCEPT_LANGUAGE="de")
    page = response.content.decode()
    assert response.status_code == 429
    assert "Zu viele fehlgeschlagene Anmeldungen für diesen Benutzernamen" in page
    assert "15 Minuten" in page
    assert "_auth_user_id" not in response.wsgi_request.session  # not logged in


@pytest.mark.parametrize("body", [[None, None], "alice", 7])
def test_a_login_body_that_is_no_object_is_a_clear_400(body):
    """The fuzzer's find: the defence read the username from a JSON list before the serializer refused it."""
    response = APIClient(REMOTE_ADDR=STADIUM).post("/api/auth/token/", body, format="json")
    assert response.status_code == 400


def admin_login(username: str, password: str, address: str = STADIUM) -> tuple[str, object]:
    """`POST /admin/login/` from `address`: ("ok" | "wrong" | "locked", the response)."""
    response = Client(REMOTE_ADDR=address).post("/admin/login/?next=/admin/", {"username": username,
                                                                               "password": password})
    if response.status_code == 302:
        return "ok", response
    return ("locked" if "Too many failed logins" in response.content.decode() else "wrong"), response


def test_the_admin_login_counts_failures_as_every_login_does(make_user, settings):
    """One count per username whatever the login: failures at the admin lock the token and page logins too,
    and the admin refuses a locked username's right password without checking it."""
    operator = make_user(is_staff=True, is_superuser=True)
    limit = settings.QMS_LOGIN_FAILURES_PER_USERNAME
    assert [admin_login(operator.username, "wrong")[0] for _ in range(limit - 1)] == ["wrong"] * (limit - 1)
    assert admin_login(operator.username, PASSWORD)[0] == "ok"  # a success resets the username
    assert [admin_login(operator.username, "wrong")[0] for _ in range(limit)] == ["wrong"] * (limit - 1) + ["locked"]
    outcome, response = admin_login(operator.username, PASSWORD, ELSEWHERE)
    assert outcome == "locked" and "_auth_user_id" not in response.wsgi_request.session
    assert token_login(operator.username, PASSWORD)[0] == "login_locked"
