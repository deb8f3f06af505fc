"""The fan's language in Chromium: a German browser gets the live page in German, numbers and dates German-style."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .harness import FAN2, FILLER

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


@pytest.fixture
def german_page(browser, qms):
    context = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 820})  # Accept-Language: de-DE
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_a_german_browser_follows_its_place_in_german(qms, german_page):
    event = qms.create_event(name="Konzert", paused=True, reservation_url="https://tickets.example/r")
    qms.api("POST", f"/api/events/{event['id']}/queue/", login=FILLER)  # someone ahead
    path = f"/events/{event['id']}/waiting-room/"

    page = german_page
    page.goto(f"{qms.base}{path}")
    expect(page.get_by_role("heading", name="Melden Sie sich an, um der Warteschlange beizutreten")).to_be_visible()
    page.get_by_label("Benutzername").fill(FAN2[0])
    page.get_by_label("Passwort").fill(FAN2[1])
    page.get_by_role("button", name="Anmelden").click()
    page.wait_for_url(f"{qms.base}{path}")

    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.locator("#wr-position")).to_have_text("2")
    expect(page.locator("#wr-pill")).to_have_text("Pausiert")  # from the JavaScript catalog
    expect(page.get_by_text("Ihr Platz in der Warteschlange", exact=True)).to_be_visible()
    expect(page.locator("#wr-ahead")).to_have_text("1")
    expect(page.locator("#wr-eta")).to_have_text("Pausiert – wartet auf die Fortsetzung des Einlasses")
    # Numbers and dates in the German way: "0 %" (with a no-break space), "Mittwoch, 25. November 2026 um 14:05".
    expect(page.locator("#wr-progress")).to_have_attribute("aria-valuetext", "0\u00a0% des Weges nach vorn, ab Platz 2")
    expect(page.locator("#wr-sale-time")).to_have_text(re.compile(r"^\w+, \d{1,2}\. \w+ \d{4} um \d{1,2}:\d{2}$"))
    expect(page.locator("#wr-updated")).to_have_text(re.compile(r"^\d{1,2}:\d{2}:\d{2}$"))  # "0:13:42" before 10

    qms.api("POST", f"/api/events/{event['id']}/queue/resume/")
    expect(page.locator("#wr-pill")).to_have_text("In der Warteschlange")
    german_eta = re.compile(r"^(Etwa \d+ Minuten?|Weniger als eine Minute|Jeden Moment)$")
    expect(page.locator("#wr-eta")).to_have_text(german_eta)


def test_the_demo_reservation_desk_speaks_german_and_words_not_codes(qms, german_page):
    event = qms.create_event(name="Demo-Konzert", reservation_url=f"{qms.base}/demo/reservation/")
    joined = qms.api("POST", f"/api/events/{event['id']}/queue/", login=FAN2)  # nobody waiting: in at once
    page = german_page

    page.goto(joined["admission"]["redirect_url"])
    expect(page.get_by_role("heading", name="Sie sind dran: Demo-Konzert")).to_be_visible()
    expect(page.get_by_text("Gültig bis")).to_be_visible()
    page.get_by_role("button", name="Buchung abschließen").click()
    expect(page.get_by_role("heading", name="Gebucht – viel Spaß bei der Veranstaltung")).to_be_visible()

    page.goto(joined["admission"]["redirect_url"])  # the same admission again: refused, in words
    expect(page.get_by_role("heading", name="Einlass nicht angenommen")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("Dieser Einlass wurde zurückgegeben und gilt nicht mehr.")

    page.goto(f"{qms.base}/demo/reservation/?token=not-a-token")
    expect(page.get_by_role("alert")).to_have_text(
        "Dieser Link enthält keinen gültigen Einlass. Kehren Sie in den Warteraum zurück.")
