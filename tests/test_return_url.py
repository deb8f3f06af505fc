"""The waiting room sends an admitted fan back to where the gate stopped them (issue 15): `?return=<url>` on the
page and on the HTTP API, only on the event's own protected routes (no open redirect), with `qms_token=<jwt>`.

The API refuses a return URL off those routes (400 `invalid_return_url`: a client's bug, said at once); the page
ignores it with a visible note and keeps the reservation URL (a fan who followed a bad link still queues).
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from events.models import ProtectedRoute
from queues import admission
from queues.realtime.messages import admitted_message

pytestmark = pytest.mark.django_db

GOOD = "https://shop.example/tickets/seat?id=3"
BAD = [
    "//evil.example/tickets/",
    "https://evil.example/tickets/",
    "https://evil.example@shop.example/tickets/",
    "https://shop.example@evil.example/tickets/",
    "https://shop.example\\@evil.example/tickets/",
    "https:\\\\evil.example/tickets/",
    "/\\evil.example/tickets/",
    "javascript:alert(1)//shop.example/tickets/",
    "JavaScript://shop.example/tickets/%0aalert(1)",
    "ftp://shop.example/tickets/",
    "https://shop.example/merch/",  # another event's route on the same host
    "https://shop.example/tickets/../merch/",  # resolves into it
    "/tickets/",  # not absolute
    "https://shop.example:8443/tickets/",  # another host (the port is part of it)
]


@pytest.fixture
def event(make_event):
    """An event guarding shop.example/tickets/; another event guards the rest of the host."""
    guarded = make_event(queue_enabled=False)  # admitted on join
    ProtectedRoute.objects.create(event=guarded, host="shop.example", path_prefix="/tickets/")
    ProtectedRoute.objects.create(event=make_event(), host="shop.example", path_prefix="/")
    return guarded


@pytest.fixture
def fan(make_user):
    return make_user()


@pytest.fixture
def api(fan) -> APIClient:
    client = APIClient()
    client.force_authenticate(fan)
    return client


def queue_url(event, back: str | None = None) -> str:
    return f"/api/events/{event.id}/queue/" + (f"?return={quote(back, safe='')}" if back is not None else "")


# --- the HTTP API ------------------------------------------------------------------------------------------

def test_an_admitted_fan_is_sent_to_the_return_url_with_the_token(api, event):
    joined = api.post(queue_url(event, GOOD)).json()
    token = joined["admission"]["token"]
    assert joined["admission"]["redirect_url"] == f"{GOOD}&qms_token={token}"
    status = api.get(queue_url(event, "https://shop.example/tickets/")).json()
    assert status["admission"]["redirect_url"] == f"https://shop.example/tickets/?qms_token={token}"


def test_without_a_return_url_the_fan_goes_to_the_reservation_url(api, event):
    token = api.post(queue_url(event)).json()["admission"]["token"]
    assert api.get(queue_url(event)).json()["admission"]["redirect_url"] == f"{event.reservation_url}?token={token}"


def test_a_stale_token_in_the_return_url_is_replaced_and_the_fragment_dropped(api, event):
    admitted = api.post(queue_url(event, GOOD + "&qms_token=old#seat-map")).json()["admission"]
    assert admitted["redirect_url"] == f"{GOOD}&qms_token={admitted['token']}"


@pytest.mark.parametrize("back", BAD)
def test_the_api_refuses_a_return_url_off_the_events_routes(api, event, back):
    joined = api.post(queue_url(event, back))
    assert (joined.status_code, joined.json()["code"]) == (400, "invalid_return_url")
    assert api.get(queue_url(event)).json()["code"] == "not_in_queue"  # a refused join joins nobody
    api.post(queue_url(event))
    status = api.get(queue_url(event, back))
    assert (status.status_code, status.json()["code"]) == (400, "invalid_return_url")


# --- the page ----------------------------------------------------------------------------------------------

@pytest.fixture
def browser(client, fan):
    client.force_login(fan)
    return client


def page_config(page) -> str:
    """The page's `data-return-to` (what the script appends an admitted fan's token to)."""
    assert page.status_code == 200
    return html.unescape(re.search(r'data-return-to="([^"]*)"', page.content.decode()).group(1))


def test_the_page_sends_a_socket_admitted_fan_to_the_return_url(browser, api, event, fan):
    """The page's config plus the socket's `admitted` frame's token is exactly the API's redirect_url."""
    prefix = page_config(browser.get(f"/events/{event.id}/waiting-room/?return={quote(GOOD, safe='')}"))
    assert prefix == f"{GOOD}&qms_token="
    api.post(queue_url(event))
    frame = admitted_message(event, admission.status(event, fan).admission)
    assert prefix + frame["token"] == api.get(queue_url(event, GOOD)).json()["admission"]["redirect_url"]


def test_the_page_without_a_return_url_keeps_the_reservation_url(browser, event):
    page = browser.get(f"/events/{event.id}/waiting-room/")
    assert page_config(page) == ""
    assert "wr-return-refused" not in page.content.decode()


@pytest.mark.parametrize("back", BAD)
def test_the_page_ignores_a_return_url_off_the_events_routes_and_says_so(browser, event, back):
    page = browser.get(f"/events/{event.id}/waiting-room/?return={quote(back, safe='')}")
    assert page_config(page) == ""  # the script falls back to the admission's reservation URL
    assert 'id="wr-return-refused"' in page.content.decode()


def test_the_note_is_in_german_for_a_german_browser(browser, event):
    page = browser.get(f"/events/{event.id}/waiting-room/?return=https%3A%2F%2Fevil.example%2F",
                       HTTP_ACCEPT_LANGUAGE="de")
    assert "stattdessen zur Buchung" in page.content.decode()


def test_logging_in_keeps_the_return_url(client, event):
    page = f"/events/{event.id}/waiting-room/?return={quote(GOOD, safe='')}"
    answer = client.get(page)
    assert answer.status_code == 302 and quote(page, safe="/") in answer["Location"]
