"""The page tells the truth about its connection: offline, or silent past the ping deadline, is never "Live"."""

from __future__ import annotations

import re
import threading

import pytest
from playwright.sync_api import expect

from .harness import FAN, FAN2, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_offline_browser_shows_offline_not_live_and_a_failed_leave_keeps_the_place(qms, open_tab):
    event = qms.create_event(name="Offline fan", paused=True, reservation_url="https://tickets.example/r")
    page = open_tab(FAN, room(event))
    connection = page.locator("#wr-connection")
    expect(page.locator("#wr-position")).to_have_text("1")
    expect(connection).to_have_attribute("data-connection", "live")

    page.context.set_offline(True)
    expect(connection).to_have_attribute("data-connection", "offline")
    expect(page.locator("#wr-connection-text")).to_have_text("Offline — waiting for the network")

    # Leaving needs the network: the page says it failed and the fan still holds the place.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Leave the queue").click()
    expect(page.locator("#wr-leave-error")).to_contain_text("We could not take you out of the queue")
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "paused")
    assert qms.api("GET", f"/api/events/{event['id']}/queue/", login=FAN)["ticket"] == 1

    page.context.set_offline(False)  # back online: connected again at once, same place
    expect(connection).to_have_attribute("data-connection", "live")
    expect(page.locator("#wr-position")).to_have_text("1")


def test_a_socket_that_goes_silent_is_marked_stale_and_replaced(qms, open_tab):
    """The network dies under an open socket (no close, no `offline` event): pings go unanswered."""
    event = qms.create_event(name="Silent socket", paused=True, reservation_url="https://tickets.example/r")
    page = open_tab(FAN2, room(event))
    expect(page.locator("#wr-position")).to_have_text("1")
    silent = threading.Event()
    sockets: list[object] = []

    def through_a_lossy_network(ws):
        sockets.append(ws)
        server = ws.connect_to_server()
        server.on_message(lambda message: None if silent.is_set() else ws.send(message))

    page.route_web_socket(re.compile(r"/ws/events/"), through_a_lossy_network)
    page.reload()
    connection = page.locator("#wr-connection")
    expect(connection).to_have_attribute("data-connection", "live")

    silent.set()  # nothing reaches the page any more: not progress, not pong
    expect(connection).to_have_attribute("data-connection", "stale", timeout=30_000)
    expect(page.locator("#wr-connection-text")).not_to_have_text("Live")

    silent.clear()  # the network is back: a fresh socket brings the place again
    expect(connection).to_have_attribute("data-connection", "live", timeout=30_000)
    expect(page.locator("#wr-position")).to_have_text("1")
    assert len(sockets) >= 2  # the stale socket was replaced, not waited on
