"""Entry policies in Chromium: the page asks for an access code, carries an invitation's `?enqueue_token=` into
the join, and shows the organiser's text instead of joining when the sale is closed (`reject`)."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from playwright.sync_api import expect

from tests.e2e.servers import http_json

from .harness import FAN, FAN2, FILLER, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SECRET = "browser-presale-secret-" + "q" * 32


def status_of(qms, login, event) -> tuple[int, dict]:
    return http_json("GET", f"{qms.base}/api/events/{event['id']}/queue/", None, qms.token(login))


def test_the_page_asks_for_the_code_refuses_a_wrong_one_and_queues_with_the_right_one(qms, open_tab):
    event = qms.create_event(name="Fan-club presale", paused=True, entry_policy="codes",
                             reservation_url="https://tickets.example/r")
    qms.api("POST", f"/api/events/{event['id']}/access-codes/", {"codes": ["CLUB-1234"]})
    page = open_tab(FAN, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "code")
    expect(page.locator("#wr-code-error")).to_be_hidden()  # asked, not yet wrong
    assert status_of(qms, FAN, event)[0] == 404  # no place before a code

    page.locator("#wr-code").fill("CLUB-0000")
    page.locator("#wr-code-submit").click()
    expect(page.locator("#wr-code-error")).to_be_visible()
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "code")

    page.locator("#wr-code").fill("CLUB-1234")
    page.locator("#wr-code-submit").click()
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "paused")
    expect(page.locator("#wr-position")).to_have_text("1")

    page.reload()  # a fan holding a place is not asked again
    expect(page.locator("#wr-position")).to_have_text("1")
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "paused")

    other = open_tab(FAN2, room(event))  # the code is spent: another fan cannot use it
    expect(other.locator("#waiting-room")).to_have_attribute("data-state", "code")
    other.locator("#wr-code").fill("CLUB-1234")
    other.locator("#wr-code-submit").click()
    expect(other.locator("#wr-code-error")).to_be_visible()
    assert status_of(qms, FAN2, event)[0] == 404


def test_the_page_carries_the_invitation_token_from_its_url(qms, open_tab):
    event = qms.create_event(name="Invite-only presale", paused=True, entry_policy="invite_only",
                             enqueue_key=SECRET, reservation_url="https://tickets.example/r")
    page = open_tab(FILLER, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "invite")
    token = jwt.encode({"evt": event["id"], "exp": int(time.time()) + 300, "jti": uuid.uuid4().hex}, SECRET,
                       algorithm="HS256")
    page.goto(f"{qms.base}{room(event)}?enqueue_token={token}")
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "paused")
    expect(page.locator("#wr-position")).to_have_text("1")


def test_a_closed_sale_shows_the_organisers_text_and_nobody_joins(qms, open_tab):
    event = qms.create_event(name="Maintenance", entry_policy="reject",
                             closed_message="Back tomorrow at 10:00.\nThank you for your patience.",
                             reservation_url="https://tickets.example/r")
    lobby = qms.create_event(name="Lobby for the closed sale", paused=True, reservation_url="https://tickets.example/r")
    page = open_tab(FAN2, room(lobby))  # logged in, not yet on the closed page
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url) if f"/events/{event['id']}/" in socket.url else None)
    page.goto(f"{qms.base}{room(event)}")
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "entryclosed")
    expect(page.locator("#wr-closed-message")).to_have_text("Back tomorrow at 10:00.\nThank you for your patience.")
    expect(page.locator("[data-view=connecting]")).to_be_hidden()
    assert sockets == []  # the page never tried to join
    assert status_of(qms, FAN2, event)[0] == 404
