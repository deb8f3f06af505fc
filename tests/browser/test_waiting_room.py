"""The fan's waiting-room page in Chromium against a real server: pre-queue, live place, admission, devices."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from .harness import FAN, FAN2, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_fans_wait_in_the_prequeue_then_follow_their_place_live_and_are_admitted_in_order(qms, desk, open_tab):
    # Paused at the opening, so the exact places can be read before anyone moves.
    event = qms.create_event(name="Prequeue on-sale", sale_starts_in=timedelta(seconds=8), paused=True,
                             admit_per_minute=30, reservation_url=desk.url)
    tabs = {login: open_tab(login, room(event)) for login in (FAN, FAN2)}
    for tab in tabs.values():
        expect(tab.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
        expect(tab.get_by_text("order is drawn at random when the sale opens")).to_be_visible()
        expect(tab.locator("#wr-countdown")).to_have_text(re.compile(r"^00:0[1-9]$"))

    for tab in tabs.values():  # the sale opens: each page learns its drawn place
        expect(tab.locator("#waiting-room")).to_have_attribute("data-state", "paused")
        expect(tab.locator("#wr-position")).to_have_text(re.compile(r"^[12]$"))
    places = {login: int(tab.locator("#wr-position").inner_text()) for login, tab in tabs.items()}
    assert sorted(places.values()) == [1, 2]
    first, second = sorted(places, key=places.get)
    expect(tabs[second].locator("#wr-ahead")).to_have_text("1")

    qms.api("POST", f"/api/events/{event['id']}/queue/resume/")
    expect(tabs[second].locator("#wr-position")).to_have_text("1")  # moved up, live
    expect(tabs[second].locator("#wr-ahead")).to_have_text("Nobody — you are next")

    for tab in tabs.values():  # redirected to the desk, which verified the token against the JWKS
        expect(tab.locator("#verified")).to_be_visible(timeout=20_000)
    [claims_first] = desk.claims_for(qms.user_id(first), event["id"])
    [claims_second] = desk.claims_for(qms.user_id(second), event["id"])
    assert claims_first["iat"] < claims_second["iat"]  # admitted in the order of their places


def test_second_tab_supersedes_the_first_which_can_take_the_place_back(qms, open_tab):
    event = qms.create_event(name="Two tabs", paused=True, reservation_url="https://tickets.example/r")
    first = open_tab(FAN, room(event))
    expect(first.locator("#wr-position")).to_have_text("1")

    second = open_tab(FAN, room(event))
    expect(second.locator("#wr-position")).to_have_text("1")
    expect(first.locator("#waiting-room")).to_have_attribute("data-state", "superseded")
    expect(first.get_by_role("heading", name="This queue is open on another device")).to_be_visible()

    first.get_by_role("button", name="Use this tab instead").click()
    expect(first.locator("#waiting-room")).to_have_attribute("data-state", "paused")
    expect(first.locator("#wr-position")).to_have_text("1")
    expect(second.locator("#waiting-room")).to_have_attribute("data-state", "superseded")
    assert qms.api("GET", f"/api/events/{event['id']}/queue/", login=FAN)["ticket"] == 1  # the same place


def test_reloading_keeps_the_place(qms, open_tab):
    event = qms.create_event(name="Reloads", paused=True, reservation_url="https://tickets.example/r")
    ahead = open_tab(FAN, room(event))
    expect(ahead.locator("#wr-position")).to_have_text("1")
    tab = open_tab(FAN2, room(event))
    expect(tab.locator("#wr-position")).to_have_text("2")
    ticket = qms.api("GET", f"/api/events/{event['id']}/queue/", login=FAN2)["ticket"]

    tab.reload()
    expect(tab.locator("#waiting-room")).to_have_attribute("data-state", "paused")
    expect(tab.locator("#wr-position")).to_have_text("2")
    expect(tab.locator("#wr-waiting")).to_have_text("2")  # no second place taken
    assert qms.api("GET", f"/api/events/{event['id']}/queue/", login=FAN2)["ticket"] == ticket


def test_waiting_room_requires_login_and_landing_lists_events(qms, browser):
    event = qms.create_event(name="Listed on the landing page", reservation_url="https://tickets.example/r")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{qms.base}/")
        page.get_by_role("link", name=re.compile("Enter waiting room for Listed on the landing page")).click()
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=" + re.escape(room(event))))
        page.get_by_label("Username").fill(FAN[0])
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_contain_text("enter a correct username and password")
    finally:
        context.close()
