"""What the waiting-room page promises when the socket cannot be held (docs/API.md, README): it reconnects
with a growing backoff, falls back to polling the HTTP status so a fan is still admitted and sent on, and
tells screen readers (the `aria-live` region) when the place moves and when it is the fan's turn.

The sockets are refused or dropped by Playwright's `route_web_socket`, whose handler sees each connection
attempt the page makes (a `WebSocket` constructor wrapped by an init script is replaced by Playwright's own
when sockets are routed, so the attempts are counted where the browser hands them over)."""

from __future__ import annotations

import re
import threading
import time

import pytest
from playwright.sync_api import expect

from .harness import FAN, FAN2, FILLER, log_in, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SOCKETS = re.compile(r"/ws/events/")

# Each text the live region takes, sent to the test (`qmsHeard`): it outlives the redirect to booking.
LISTEN_TO_THE_LIVE_REGION = """
document.addEventListener("DOMContentLoaded", () => {
  const region = document.getElementById("wr-announcer");
  if (!region) { return; }
  new MutationObserver(() => window.qmsHeard(region.textContent))
    .observe(region, { childList: true, characterData: true, subtree: true });
});
"""


@pytest.fixture
def fan_page(browser, qms):
    """`fan_page(login, event, route, init_scripts, bindings)`: a fresh browser for the fan that logs in and opens
    the event's waiting room; `route` handles its sockets, the scripts and functions are there from the start."""
    contexts = []

    def open_page(login: tuple[str, str], event: dict, route=None, init_scripts=(), bindings=None):
        context = browser.new_context(viewport={"width": 1024, "height": 800})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        for name, function in (bindings or {}).items():
            page.expose_function(name, function)
        for script in init_scripts:
            page.add_init_script(script)
        if route is not None:
            page.route_web_socket(SOCKETS, route)
        log_in(page, qms.base, login, room(event))
        return page

    yield open_page
    for context in contexts:
        context.close()


def test_a_dropped_socket_is_reconnected_with_growing_gaps_and_the_place_comes_back(qms, fan_page):
    event = qms.create_event(name="Dropped socket", paused=True, reservation_url="https://tickets.example/r")
    refuse = threading.Event()
    held: list[object] = []
    tried: list[float] = []  # when each socket the page opened reached the route

    def route(ws):
        tried.append(time.monotonic())
        if refuse.is_set():
            ws.close(code=1011)  # the server is unreachable: every new socket ends at once
            return
        ws.connect_to_server()
        held.append(ws)

    page = fan_page(FAN, event, route)
    connection = page.locator("#wr-connection")
    expect(page.locator("#wr-position")).to_have_text("1")
    expect(connection).to_have_attribute("data-connection", "live")
    assert len(tried) == 1

    refuse.set()
    held[-1].close(code=1011)  # the connection drops under the page (the server's side is closed too)
    deadline = time.monotonic() + 45
    while len(tried) < 5:  # four refused reconnects in a row
        assert time.monotonic() < deadline, tried
        page.wait_for_timeout(200)  # lets Playwright hand over the page's attempts
    gaps = [later - earlier for earlier, later in zip(tried[1:5], tried[2:5], strict=False)]
    # Backoff doubles each wait (jittered between half and all of it: 1-2 s, 2-4 s, 4-8 s); a page
    # that retried at a fixed pace would show three similar gaps of a second or two.
    assert gaps[2] >= 1.5 * gaps[0] and gaps[2] >= 3, gaps

    refuse.clear()  # the server is back: the next attempt holds, and the place is shown live again
    expect(connection).to_have_attribute("data-connection", "live", timeout=40_000)
    expect(page.locator("#wr-position")).to_have_text("1")


def test_without_a_socket_the_page_polls_the_status_and_the_fan_is_still_admitted(qms, desk, fan_page):
    event = qms.create_event(name="No sockets", paused=True, reservation_url=desk.url)
    refused: list[object] = []

    def route(ws):
        refused.append(ws)
        ws.close(code=1011)  # a proxy that cannot hold WebSockets: every socket ends at once

    page = fan_page(FAN2, event, route)
    # After three failed sockets the page asks GET (and POST) /api/events/<id>/queue/ itself.
    expect(page.locator("#wr-connection")).to_have_attribute("data-connection", "polling", timeout=30_000)
    expect(page.locator("#wr-position")).to_have_text("1")
    assert qms.api("GET", f"/api/events/{event['id']}/queue/", login=FAN2)["state"] == "waiting"

    qms.api("POST", f"/api/events/{event['id']}/queue/admit/", {"count": 1})  # the staff admit op
    expect(page.locator("#verified")).to_be_visible(timeout=30_000)  # a poll saw it and sent the fan on
    assert len(desk.claims_for(qms.user_id(FAN2), event["id"])) == 1
    assert len(refused) >= 3  # no socket ever reached the server


def test_the_live_region_announces_place_changes_and_the_admission(qms, desk, fan_page):
    event = qms.create_event(name="Heard", paused=True, reservation_url=desk.url)
    assert qms.api("POST", f"/api/events/{event['id']}/queue/", login=FILLER)["ticket"] == 1
    heard: list[str] = []
    page = fan_page(FAN, event, init_scripts=(LISTEN_TO_THE_LIVE_REGION,),
                    bindings={"qmsHeard": lambda text: heard.append(text)})
    region = page.locator("#wr-announcer")
    expect(region).to_have_attribute("aria-live", "polite")
    expect(region).to_have_text("Admission is paused. You keep your place: number 2 in line.")

    qms.api("POST", f"/api/events/{event['id']}/queue/admit/", {"count": 1})  # the fan ahead goes in
    expect(region).to_have_text("Admission is paused. You keep your place: number 1 in line.")

    qms.api("POST", f"/api/events/{event['id']}/queue/admit/", {"count": 1})  # this fan's turn
    expect(page.locator("#verified")).to_be_visible()  # on to booking; what the region said was recorded
    said = [text for text in heard if text]
    assert said[-1] == "It is your turn. Taking you to booking.", said
    assert said.index("Admission is paused. You keep your place: number 2 in line.") \
        < said.index("Admission is paused. You keep your place: number 1 in line.") < len(said) - 1, said
