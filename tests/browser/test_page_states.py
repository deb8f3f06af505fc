"""What the waiting-room page says as the queue changes: the opening, leaving, pauses and random draws."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.servers import http_json
from tests.sites import ProtectedSite

from .harness import FAN, FAN2, FILLER, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_the_sale_line_says_opened_once_the_sale_opens(qms, open_tab):
    event = qms.create_event(name="Opening soon", sale_starts_in=timedelta(seconds=6), paused=True,
                             reservation_url="https://tickets.example/r")
    page = open_tab(FAN, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
    expect(page.locator("#wr-sale-label")).to_have_text("Sale opens")

    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "paused")  # the opening, no reload
    expect(page.locator("#wr-sale-label")).to_have_text("Sale opened")


def test_after_leaving_a_reload_shows_the_left_state_instead_of_joining_again(qms, open_tab):
    event = qms.create_event(name="Leaving", paused=True, reservation_url="https://tickets.example/r")
    page = open_tab(FAN2, room(event))
    expect(page.locator("#wr-position")).to_have_text("1")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Leave the queue").click()
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "left")

    page.reload()
    expect(page.get_by_role("heading", name="You left the queue")).to_be_visible()
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "left")
    status, body = http_json("GET", f"{qms.base}/api/events/{event['id']}/queue/", token=qms.token(FAN2))
    assert (status, body["code"]) == (404, "not_in_queue")  # no place taken behind the fan's back

    page.get_by_role("button", name="Join again").click()  # only when asked
    expect(page.locator("#wr-position")).to_have_text("1")
    page.reload()  # and a reload after joining again keeps the place, as always
    expect(page.locator("#wr-position")).to_have_text("1")


def test_an_organisers_pause_after_a_busy_site_shows_the_organisers_note(qms, open_tab):
    """`paused` / `resumed` carry no reason: the page must not keep the busy-site reason of an older progress."""
    site = ProtectedSite()
    try:
        site.status = 503
        event = qms.create_event(name="Busy then paused", reservation_url="https://tickets.example/r",
                                 health_check_url=site.url)
        page = open_tab(FILLER, room(event))
        expect(page.get_by_text("Paused: the ticket site is busy.")).to_be_visible()
        busy_seen = threading.Event()

        def progress_stops_after_busy(ws):
            """A server that is behind: after one busy-site progress, no progress arrives for a while."""
            server = ws.connect_to_server()

            def to_page(message):
                frame = json.loads(message)
                if frame.get("type") == "progress":
                    if busy_seen.is_set():
                        return
                    if frame.get("paused_reason") == "site_busy":
                        busy_seen.set()
                ws.send(message)
            server.on_message(to_page)

        page.route_web_socket(re.compile(r"/ws/events/"), progress_stops_after_busy)
        page.reload()
        busy = page.get_by_text("Paused: the ticket site is busy.")
        expect(busy).to_be_visible()
        assert busy_seen.wait(10)

        qms.api("POST", f"/api/events/{event['id']}/queue/pause/")
        expect(page.get_by_text("The organiser has paused the queue for a moment.")).to_be_visible()
        expect(busy).to_be_hidden()
        qms.api("POST", f"/api/events/{event['id']}/queue/resume/")
        expect(page.locator("#waiting-room")).to_have_attribute("data-state", "waiting")
        expect(busy).to_be_hidden()
    finally:
        site.close()


def test_in_random_mode_the_page_shows_no_place_number_only_the_servers_numbers(qms, open_tab):
    event = qms.create_event(name="Random draw", queueing_method="random", paused=True,
                             reservation_url="https://tickets.example/r")
    for login in (FILLER, FAN2):  # two fans arrived first: in fifo order the page would say "#3"
        qms.api("POST", f"/api/events/{event['id']}/queue/", login=login)
    page = open_tab(FAN, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "paused")
    expect(page.locator("#wr-waiting")).to_have_text("3")
    expect(page.get_by_text("Admission by random draw")).to_be_visible()
    expect(page.locator("#wr-position")).to_be_hidden()
    expect(page.locator("#wr-ahead")).to_be_hidden()
    expect(page.locator("#wr-progress")).to_be_hidden()

    qms.api("POST", f"/api/events/{event['id']}/queue/admit/", {"count": 1})  # one drawn: maybe this fan
    page.wait_for_function("document.getElementById('wr-waiting').textContent === '2'"
                           " || document.getElementById('waiting-room').dataset.state === 'admitted'")
    if page.locator("#waiting-room").get_attribute("data-state") != "admitted":
        expect(page.locator("#wr-position")).to_be_hidden()  # the watermark moved: still no derived place


def test_an_unknown_event_gets_a_page_in_words_with_a_way_back(qms, open_tab):
    page = open_tab(FAN, "/events/999999/waiting-room/")
    expect(page.get_by_role("heading", name="This event does not exist")).to_be_visible()
    page.get_by_role("link", name="See all events").click()
    expect(page).to_have_url(f"{qms.base}/")


def test_a_fan_refused_while_draining_joins_by_itself_once_the_drain_is_undone(qms, open_tab):
    event = qms.create_event(name="Drained", paused=True, reservation_url="https://tickets.example/r")
    qms.api("POST", f"/api/events/{event['id']}/queue/drain/")
    page = open_tab(FAN, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "closed")
    expect(page.locator('[data-view="closed"] [data-retry-note]')).to_contain_text("This page tries again by itself at")
    expect(page.get_by_role("button", name="Try again")).to_be_visible()

    qms.api("POST", f"/api/events/{event['id']}/queue/undrain/")
    # No reload: the page's next try (15 s at most after the refusal, jittered) takes the place.
    expect(page.locator("#wr-position")).to_have_text("1", timeout=45_000)
    expect(page.locator("#wr-connection")).to_have_attribute("data-connection", "live")


def test_a_fan_early_for_the_pre_queue_joins_it_by_itself_at_the_announced_opening(qms, open_tab):
    now = datetime.now(UTC)
    event = qms.create_event(name="Pre-queue soon", sale_starts_in=timedelta(hours=1), paused=True,
                             prequeue_opens_at=(now + timedelta(seconds=6)).isoformat(),
                             reservation_url="https://tickets.example/r")
    page = open_tab(FAN2, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "notopen")
    expect(page.locator('[data-view="notopen"] [data-retry-note]')).to_contain_text("tries again by itself")

    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue", timeout=30_000)


def test_try_again_joins_at_once_when_the_organiser_opens_the_pre_queue_early(qms, open_tab):
    now = datetime.now(UTC)
    event = qms.create_event(name="Pre-queue early", sale_starts_in=timedelta(hours=2), paused=True,
                             prequeue_opens_at=(now + timedelta(hours=1)).isoformat(),
                             reservation_url="https://tickets.example/r")
    page = open_tab(FILLER, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "notopen")  # next try in 10 minutes

    qms.api("PATCH", f"/api/events/{event['id']}/", {"prequeue_opens_at": now.isoformat()})
    page.get_by_role("button", name="Try again").click()
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
