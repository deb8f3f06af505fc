"""The guessing defence on the page (queues/entry_guessing.py): a fan who types ten wrong access codes is told,
in the code form and in the page's language, how long the lock lasts; the right code is refused until then."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.servers import http_json

from .harness import GUESSER, log_in, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_ten_wrong_codes_lock_the_form_with_a_german_message(qms, browser):
    event = qms.create_event(name="Guessed presale", paused=True, entry_policy="codes",
                             reservation_url="https://tickets.example/r")
    qms.api("POST", f"/api/events/{event['id']}/access-codes/", {"codes": ["CLUB-1234"]})
    context = browser.new_context(locale="de-DE")  # Accept-Language: de-DE, so the page is German
    try:
        page = context.new_page()
        log_in(page, qms.base, GUESSER, room(event))  # the form in German
        expect(page.locator("#waiting-room")).to_have_attribute("data-state", "code")
        note = page.locator("#wr-code-error")
        for attempt in range(10):
            page.locator("#wr-code").fill(f"WRONG-{attempt}")
            page.locator("#wr-code-submit").click()
            expect(note).to_contain_text("Zu viele fehlgeschlagene Versuche" if attempt == 9 else "gilt nicht")
        expect(note).to_contain_text("15 Minuten")
        page.locator("#wr-code").fill("CLUB-1234")
        page.locator("#wr-code-submit").click()
        expect(note).to_contain_text("Zu viele fehlgeschlagene Versuche")
        expect(page.locator("#waiting-room")).to_have_attribute("data-state", "code")
        status, _ = http_json("GET", f"{qms.base}/api/events/{event['id']}/queue/", None, qms.token(GUESSER))
        assert status == 404  # no place: the right code was not even looked at
    finally:
        context.close()
