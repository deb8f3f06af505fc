"""The fair draw checked in Chromium (issue 19): a fan drawn from the pre-queue clicks "Check the draw" and the page,
with WebCrypto, finds the seed matching the commitment it showed before the opening and the fan's own key ranking
where the fan's place was; a tampered reveal shows ✗; the German page says it in German. The public page's
ten-line verifier, run against the same server, finds the same rank."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.servers import http_json

from .harness import FAN, FAN2, FILLER, GUESSER, log_in, room

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

OTHERS = (FAN2, FILLER, GUESSER)  # pre-queue fans who join over the API, around the fan in the browser
OPENING_DEADLINE_S = 20


def prequeue_event(qms) -> dict:
    """An event in its pre-queue, paused so nobody leaves the queue once it opens (the draw is recorded anyway).
    Its id is no fan's user id: a key of "user:event" instead of "event:user" must not pass by coincidence."""
    user_ids = {qms.user_id(login) for login in (FAN, *OTHERS)}
    while True:
        event = qms.create_event(name="Fair draw", sale_starts_in=timedelta(minutes=10), paused=True,
                                 reservation_url="https://tickets.example/r")
        if str(event["id"]) not in user_ids:
            return event


def join_over_api(qms, event: dict, logins) -> None:
    for login in logins:
        assert qms.api("POST", f"/api/events/{event['id']}/queue/", login=login)["state"] == "prequeue"


def open_sale(qms, event: dict) -> dict:
    """Move the opening into the past and wait (with a deadline) for the tick to record the draw; the draw."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    qms.api("PATCH", f"/api/events/{event['id']}/", {"sale_starts_at": past})
    deadline = time.monotonic() + OPENING_DEADLINE_S
    while time.monotonic() < deadline:
        status, entries = http_json("GET", f"{qms.base}/api/events/{event['id']}/draw/entries/", None, None)
        if status == 200:
            return {**qms.api("GET", f"/api/events/{event['id']}/draw/"), "entries": entries["entries"]}
        time.sleep(0.2)
    raise AssertionError(f"the draw was not recorded within {OPENING_DEADLINE_S} s: {status} {entries}")


def rank_by_rule(draw: dict, event_id: int, user_id: str) -> int:
    """The fan's rank by the published rule, computed here without the page: key order, then ticket."""
    key = hmac.new(bytes.fromhex(draw["seed"]), f"{event_id}:{user_id}".encode(), hashlib.sha256).digest()[:8].hex()
    ordered = sorted(draw["entries"], key=lambda entry: (int(entry["key"], 16) / 2**64, entry["ticket"]))
    return [entry["key"] for entry in ordered].index(key) + 1


def draw_rank(qms, event: dict, login) -> int:
    return qms.api("GET", f"/api/events/{event['id']}/queue/", login=login)["draw_rank"]


def test_a_prequeue_fan_checks_the_draw_and_their_key_ranks_at_their_place(qms, open_tab):
    event = prequeue_event(qms)
    join_over_api(qms, event, OTHERS[:2])
    page = open_tab(FAN, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
    join_over_api(qms, event, OTHERS[2:])
    shown = page.locator("#wr-commitment").text_content()
    before = page.content()
    expect(page.locator("#wr-draw")).to_be_hidden()  # nothing to check before the opening

    draw = open_sale(qms, event)
    assert shown == draw["commitment"] == hashlib.sha256(bytes.fromhex(draw["seed"])).hexdigest()
    assert draw["seed"] not in before  # the page never had the seed before the opening
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "paused")  # in line, held
    place, expected = draw_rank(qms, event, FAN), rank_by_rule(draw, event["id"], qms.user_id(FAN))
    assert place == expected  # the server placed the fan by the rule; now the page must find it too

    page.get_by_role("button", name="Check the draw").click()
    box = page.locator("#wr-draw")
    expect(box).to_have_attribute("data-result", "pass")
    expect(box.locator('[data-check="commitment"]')).to_have_attribute("data-ok", "true")
    expect(box.locator('[data-check="rank"]')).to_have_text(f"✓ Your key ranks {expected} of 4 in the draw.")
    expect(box.locator('[data-check="place"]')).to_have_text(f"✓ Your place at the opening was {place}.")
    expect(page.locator("#wr-draw-verdict")).to_have_text("The draw checks out: your place follows the published draw.")

    page.reload()  # the socket's `queued` carries no rank: the page asks the status, and offers the check again
    page.get_by_role("button", name="Check the draw").click()
    expect(page.locator("#wr-draw")).to_have_attribute("data-result", "pass")


def test_a_reveal_that_does_not_match_the_commitment_shows_a_cross(qms, open_tab):
    event = prequeue_event(qms)
    page = open_tab(FAN, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
    join_over_api(qms, event, OTHERS)
    open_sale(qms, event)
    button = page.get_by_role("button", name="Check the draw")
    expect(button).to_be_visible()

    def another_seed(route):  # an operator revealing a seed other than the committed one
        body = route.fetch().json()
        route.fulfill(json={**body, "seed": hashlib.sha256(b"another seed").hexdigest()})

    page.route(f"**/api/events/{event['id']}/draw/", another_seed)
    button.click()
    box = page.locator("#wr-draw")
    expect(box).to_have_attribute("data-result", "fail")
    expect(box.locator('[data-check="commitment"]')).to_have_attribute("data-ok", "false")
    expect(box.locator('[data-check="commitment"]')).to_contain_text("✗")
    expect(box.locator('[data-check="rank"]')).to_have_text("✗ Your key is not in the published list of the draw.")

    def consistent_pair(route):  # seed and commitment both replaced after the opening: the browser saw the old one
        seed = hashlib.sha256(b"a seed chosen later").digest()
        route.fulfill(json={**route.fetch().json(), "seed": seed.hex(), "commitment": hashlib.sha256(seed).hexdigest()})

    page.unroute(f"**/api/events/{event['id']}/draw/")
    page.route(f"**/api/events/{event['id']}/draw/", consistent_pair)
    button.click()
    expect(box.locator('[data-check="commitment"]')).to_have_attribute("data-ok", "true")
    expect(box.locator('[data-check="seen"]')).to_have_text(
        "✗ The commitment is not the one this browser was shown before the opening.")
    expect(box).to_have_attribute("data-result", "fail")


def test_the_check_comes_when_the_record_is_written_after_the_opening(qms, open_tab):
    """The record is written a moment after the opening tick admits (a large pre-queue takes seconds): the page
    keeps asking until the fan's rank comes, then offers the check."""
    event = prequeue_event(qms)
    join_over_api(qms, event, OTHERS)
    page = open_tab(FAN, room(event))
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
    draw_url, status_url = f"**/api/events/{event['id']}/draw/", f"**/api/events/{event['id']}/queue/"
    asked = []

    def still_recording(route):  # the server as it stands while the rows are written
        asked.append(route.request.url)
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "recorded": False})

    def no_rank_yet(route):
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "draw_rank": None})

    page.route(draw_url, still_recording)
    page.route(status_url, no_rank_yet)
    open_sale(qms, event)
    deadline = time.monotonic() + OPENING_DEADLINE_S
    while len(asked) < 2:  # asked, found no rank, and asked again
        assert time.monotonic() < deadline, f"the page asked {len(asked)} time(s) for the draw after the opening"
        page.wait_for_timeout(200)
    button = page.get_by_role("button", name="Check the draw")
    expect(button).to_be_hidden()
    page.unroute(draw_url)
    page.unroute(status_url)  # the record is complete: the next ask finds the rank
    expect(button).to_be_visible(timeout=OPENING_DEADLINE_S * 1000)
    button.click()
    expect(page.locator("#wr-draw")).to_have_attribute("data-result", "pass")


def test_the_german_page_checks_the_draw_in_german(qms, browser):
    event = prequeue_event(qms)
    join_over_api(qms, event, (FAN, FILLER))
    context = browser.new_context(locale="de-DE")  # Accept-Language: de-DE, so the page is German
    try:
        page = context.new_page()
        log_in(page, qms.base, FAN2, room(event))  # the form in German
        expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
        expect(page.locator(".draw-commitment")).to_contain_text("Festlegung")
        draw = open_sale(qms, event)
        place = draw_rank(qms, event, FAN2)
        page.get_by_role("button", name="Auslosung prüfen").click()
        box = page.locator("#wr-draw")
        expect(box).to_have_attribute("data-result", "pass")
        expect(box.locator('[data-check="rank"]')).to_have_text(
            f"✓ Ihr Schlüssel steht in der Auslosung auf Rang {place} von {len(draw['entries'])}.")
        expect(box.locator('[data-check="place"]')).to_have_text(f"✓ Ihr Platz bei der Öffnung war {place}.")
        expect(page.locator("#wr-draw-verdict")).to_have_text(
            "Die Auslosung stimmt: Ihr Platz folgt der veröffentlichten Auslosung.")
        expect(page.get_by_role("link", name="So funktioniert die Auslosung")).to_be_visible()
    finally:
        context.close()


def test_the_public_pages_verifier_finds_each_fans_rank_at_their_place(qms, tmp_path):
    """The ten lines a doubting fan copies from /events/<id>/draw/, run against the server, for every fan."""
    event = prequeue_event(qms)
    fans = (FAN, *OTHERS)
    join_over_api(qms, event, fans)
    open_sale(qms, event)
    with urllib.request.urlopen(f"{qms.base}/events/{event['id']}/draw/", timeout=10) as response:
        page = response.read().decode()
    verifier = tmp_path / "verify_draw.py"
    verifier.write_text(html.unescape(re.search(r'<code id="draw-verifier">(.*?)</code>', page, re.S).group(1)))
    for login in fans:
        ran = subprocess.run([sys.executable, str(verifier), qms.base, str(event["id"]), qms.user_id(login)],
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == f"your rank at the opening: {draw_rank(qms, event, login)}\n"

