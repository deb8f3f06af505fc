"""The page shows the operator controls of issue 9: a busy ticket site, a pre-queue that is not open yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.sites import ProtectedSite

from .harness import FAN

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_a_busy_ticket_site_pauses_admission_and_the_page_says_so(qms, desk, open_tab):
    site = ProtectedSite()
    try:
        site.status = 503
        event = qms.create_event(name="Health gate", admit_per_minute=60, reservation_url=desk.url,
                                 health_check_url=site.url)
        tab = open_tab(FAN, f"/events/{event['id']}/waiting-room/")
        expect(tab.locator("#waiting-room")).to_have_attribute("data-state", "paused")
        expect(tab.get_by_text("Paused: the ticket site is busy.")).to_be_visible()
        site.status = 200  # the site recovers: admission resumes by itself
        tab.wait_for_url(f"{desk.url}*", timeout=20000)
    finally:
        site.close()


def test_before_the_prequeue_window_the_page_says_when_the_queue_opens(qms, open_tab):
    opens = datetime.now(UTC) + timedelta(hours=1)
    event = qms.create_event(name="Window", prequeue_opens_at=opens.isoformat(), sale_starts_in=timedelta(hours=2),
                             reservation_url="https://tickets.example/r")
    tab = open_tab(FAN, f"/events/{event['id']}/waiting-room/")
    expect(tab.locator("#waiting-room")).to_have_attribute("data-state", "notopen")
    expect(tab.get_by_text("The queue is not open yet")).to_be_visible()
    expect(tab.locator("#wr-opens-at")).not_to_have_text("–")
