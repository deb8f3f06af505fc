"""The organiser's message on the waiting-room page, in Chromium: it appears and disappears live, in the page's
language, and markup in it is shown as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .harness import FAN, FAN2, log_in, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MARKUP = '<script>window.pwned = 1</script> Doors at <b>8</b> & <img src=x onerror="window.pwned = 2">'


def test_a_waiting_fan_sees_the_message_appear_and_go_without_a_reload_and_markup_as_text(qms, browser, open_tab):
    event = qms.create_event(name="Crowd message", paused=True, reservation_url="https://tickets.example/r")
    announce = f"/api/events/{event['id']}/queue/announce/"
    english = open_tab(FAN, room(event))
    expect(english.locator("#waiting-room")).to_have_attribute("data-state", "paused")  # waiting, held in line
    expect(english.locator("#wr-crowd")).to_be_hidden()
    english.evaluate("window.sameDocument = true")  # gone if the page reloads

    qms.api("POST", announce, {"text": MARKUP, "text_de": "Einlass um 8 — <b>pünktlich</b>"})
    banner = english.locator("#wr-crowd")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("Message from the organiser")
    expect(english.locator("#wr-crowd-text")).to_have_text(MARKUP)  # the characters typed, not elements
    assert english.locator("#wr-crowd-text *").count() == 0
    assert english.evaluate("window.pwned") is None
    expect(english.locator("#wr-crowd-region")).to_have_attribute("aria-live", "polite")

    german_context = browser.new_context(locale="de-DE")  # Accept-Language: de-DE, so the page is German
    try:
        german = german_context.new_page()
        log_in(german, qms.base, FAN2, room(event))  # the form in German
        expect(german.locator("#wr-crowd")).to_contain_text("Nachricht des Veranstalters")  # in its first frames
        expect(german.locator("#wr-crowd-text")).to_have_text("Einlass um 8 — <b>pünktlich</b>")

        qms.api("POST", announce, {"text": ""})
        expect(english.locator("#wr-crowd")).to_be_hidden()
        expect(german.locator("#wr-crowd")).to_be_hidden()
    finally:
        german_context.close()
    assert english.evaluate("window.sameDocument") is True
    assert english.evaluate("window.pwned") is None
