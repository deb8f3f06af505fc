"""The event creator's admin in Chromium: live numbers without reloading, pause / resume / admit now reach fans."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .harness import FAN, FILLER, log_in_admin

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def paused_notice(page):
    return page.locator('[data-view="waiting"] [data-paused-note]')


def stat(page, name: str):
    return page.locator(f'[data-qms-panel] [data-qms-stat="{name}"]')


def test_operator_pauses_resumes_and_admits_from_the_admin_and_the_fan_sees_it(qms, desk, browser, open_tab):
    # One admission a minute: the filler takes this minute's, so the fan waits until the operator acts.
    event = qms.create_event(name="Admin live", admit_per_minute=1, reservation_url=desk.url)
    assert qms.api("POST", f"/api/events/{event['id']}/queue/", login=FILLER)["state"] == "admitted"

    operator = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        admin = operator.new_page()
        change_page = f"/admin/events/event/{event['id']}/change/"
        log_in_admin(admin, qms.base, change_page)
        expect(stat(admin, "waiting")).to_have_text("0")
        expect(stat(admin, "live_admissions")).to_have_text("1")

        fan = open_tab(FAN, f"/events/{event['id']}/waiting-room/")
        expect(fan.locator("#waiting-room")).to_have_attribute("data-state", "waiting")
        expect(fan.locator("#wr-position")).to_have_text("1")
        expect(stat(admin, "waiting")).to_have_text("1")  # refreshed in place, no reload

        admin.get_by_role("button", name="Pause admission").click()
        expect(admin.locator(".messagelist")).to_contain_text("admission paused")
        expect(fan.locator("#waiting-room")).to_have_attribute("data-state", "paused")
        expect(paused_notice(fan)).to_be_visible()

        admin.get_by_role("button", name="Resume admission").click()
        expect(admin.locator(".messagelist")).to_contain_text("admission resumed")
        expect(fan.locator("#waiting-room")).to_have_attribute("data-state", "waiting")
        expect(paused_notice(fan)).to_be_hidden()

        admin.get_by_label("Admit now").fill("1")
        admin.get_by_role("button", name="Admit", exact=True).click()
        expect(admin.locator(".messagelist")).to_contain_text("Admitted 1 of 1")
        expect(fan.locator("#verified")).to_be_visible()
        assert len(desk.claims_for(qms.user_id(FAN), event["id"])) == 1
        expect(stat(admin, "live_admissions")).to_have_text("2")

        admin.goto(f"{qms.base}/admin/events/event/")
        row = admin.locator("tr", has_text="Admin live")
        expect(row.locator('[data-qms-stat="live_admissions"]')).to_have_text("2")
    finally:
        operator.close()


def test_reset_asks_for_confirmation_and_tells_waiting_fans(qms, browser, open_tab):
    event = qms.create_event(name="Reset me", paused=True, reservation_url="https://tickets.example/r")
    fan = open_tab(FAN, f"/events/{event['id']}/waiting-room/")
    expect(fan.locator("#wr-position")).to_have_text("1")

    operator = browser.new_context()
    try:
        admin = operator.new_page()
        log_in_admin(admin, qms.base, f"/admin/events/event/{event['id']}/change/")
        admin.get_by_role("link", name="Reset queue…").click()
        expect(admin.get_by_text("fan waiting will lose their place")).to_be_visible()
        assert qms.api("GET", f"/api/events/{event['id']}/queue/stats/")["waiting"] == 1  # not yet
        admin.get_by_role("button", name="Yes, reset the queue of Reset me").click()
        expect(admin.locator(".messagelist")).to_contain_text("queue reset, 1 fans lost their place")
    finally:
        operator.close()
    expect(fan.locator("#waiting-room")).to_have_attribute("data-state", "reset")
    fan.get_by_role("button", name="Join again").click()
    expect(fan.locator("#wr-position")).to_have_text("1")
