"""The event creator's admin in Chromium: live numbers, badges and buttons follow the queue without reloading;
pause / resume / admit now / drain / undrain reach fans; the list's live columns fit 1280 px; German."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from .harness import FAN, FAN2, FILLER, log_in_admin

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
        admin.get_by_role("button", name="Yes: Reset queue — Reset me").click()
        expect(admin.locator(".messagelist")).to_contain_text("queue reset, 1 fans lost their place")
    finally:
        operator.close()
    expect(fan.locator("#waiting-room")).to_have_attribute("data-state", "reset")
    fan.get_by_role("button", name="Join again").click()
    expect(fan.locator("#wr-position")).to_have_text("1")


def badge(page, name: str):
    return page.locator(f'[data-qms-panel] [data-qms-badge="{name}"]')


def test_badges_and_buttons_follow_the_queue_without_a_reload(qms, browser):
    event = qms.create_event(name="Follow me", paused=False, sale_starts_in=timedelta(hours=1),
                             reservation_url="https://tickets.example/r")
    operator = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        admin = operator.new_page()
        log_in_admin(admin, qms.base, f"/admin/events/event/{event['id']}/change/")
        expect(badge(admin, "prequeue")).to_be_visible()
        expect(badge(admin, "prequeue")).to_contain_text(re.compile(r"\d{2}:\d{2} UTC"))
        expect(badge(admin, "admitting")).to_be_hidden()  # nobody is admitted before the opening
        pause = admin.get_by_role("button", name="Pause admission")
        expect(pause).to_be_enabled()

        # Another operator (the API) pauses, drains and opens the sale: this page follows without a reload.
        qms.api("POST", f"/api/events/{event['id']}/queue/pause/")
        expect(badge(admin, "paused")).to_be_visible()
        expect(pause).to_be_hidden()
        expect(admin.get_by_role("button", name="Resume admission")).to_be_enabled()
        qms.api("POST", f"/api/events/{event['id']}/queue/drain/")
        expect(badge(admin, "draining")).to_be_visible()
        expect(admin.get_by_role("button", name="Take joins again")).to_be_enabled()
        expect(admin.get_by_role("link", name="Drain (no new joins)…")).to_be_hidden()
        qms.api("PATCH", f"/api/events/{event['id']}/", {"sale_starts_at": datetime.now(UTC).isoformat(),
                                                          "paused": False})
        expect(badge(admin, "prequeue")).to_be_hidden()
        expect(badge(admin, "admitting")).to_be_visible()
        expect(badge(admin, "paused")).to_be_hidden()
        expect(admin.get_by_role("button", name="Pause admission")).to_be_enabled()
        expect(admin.locator("[data-qms-updated]")).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2} UTC$"))
    finally:
        operator.close()


def test_a_drain_is_undone_from_the_panel_and_a_refused_fan_joins_again(qms, browser, open_tab):
    event = qms.create_event(name="Drain and undo", paused=True, reservation_url="https://tickets.example/r")
    operator = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        admin = operator.new_page()
        log_in_admin(admin, qms.base, f"/admin/events/event/{event['id']}/change/")
        admin.get_by_role("link", name="Drain (no new joins)…").click()
        expect(admin.get_by_text("No new fans can join.")).to_be_visible()
        admin.get_by_role("button", name="Yes: Drain (no new joins) — Drain and undo").click()
        expect(admin.locator(".messagelist")).to_contain_text("draining")
        expect(badge(admin, "draining")).to_be_visible()

        fan = open_tab(FAN2, f"/events/{event['id']}/waiting-room/")
        expect(fan.locator("#waiting-room")).to_have_attribute("data-state", "closed")

        admin.get_by_role("button", name="Take joins again").click()
        expect(admin.locator(".messagelist")).to_contain_text("taking new joins again")
        expect(badge(admin, "draining")).to_be_hidden()
        expect(admin.get_by_role("link", name="Drain (no new joins)…")).to_be_visible()
        # No reload: the refused page tries again by itself (within 15 s of the refusal) and takes the place.
        expect(fan.locator("#wr-position")).to_have_text("1", timeout=45_000)
    finally:
        operator.close()


def test_the_lists_live_columns_are_on_screen_at_1280_px(qms, browser):
    qms.create_event(name="A rather long event name for the list page, as real ones are",
                     reservation_url="https://tickets.example/r")
    operator = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        admin = operator.new_page()
        log_in_admin(admin, qms.base, "/admin/events/event/")
        for column in ("queue_waiting", "queue_live_admissions", "queue_rate", "queue_eta_last"):
            header = admin.locator(f"#result_list th.column-{column}")
            expect(header).to_be_visible()
            box = header.bounding_box()
            assert box is not None and box["x"] + box["width"] <= 1280, (column, box)
    finally:
        operator.close()


def test_the_panel_speaks_the_admins_language(qms, browser):
    event = qms.create_event(name="Konzert", paused=True, reservation_url="https://tickets.example/r")
    german = browser.new_context(locale="de-DE", viewport={"width": 1280, "height": 900})
    try:
        admin = german.new_page()
        log_in_admin(admin, qms.base, f"/admin/events/event/{event['id']}/change/")
        expect(admin.locator("#qms-panel-title")).to_have_text("Live-Warteschlange")
        expect(badge(admin, "paused")).to_have_text("Pausiert")
        expect(admin.get_by_role("button", name="Einlass fortsetzen")).to_be_visible()
        expect(admin.get_by_text("Wartend", exact=True)).to_be_visible()
        # 24-hour clock and the zone, from the JavaScript side too.
        expect(admin.locator("[data-qms-updated]")).to_have_text(re.compile(r"^\d{2}:\d{2}:\d{2} UTC$"))
    finally:
        german.close()
