"""Fixtures of the browser tests: one QMS server and reservation desk for the session, Chromium, fan tabs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.services import require_service

from .harness import CHROMIUM, CHROMIUM_ARGS, QMSServer, ReservationDesk, log_in


@pytest.fixture(scope="session")
def qms(tmp_path_factory) -> QMSServer:
    # A fast tick so pages move within a test's patience; everything else is the embedded default.
    server = QMSServer(tmp_path_factory.mktemp("qms-browser"), QMS_TICK_SECONDS="0.5", QMS_HEALTH_POLL_SECONDS="0.5")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def desk(qms) -> ReservationDesk:
    desk = ReservationDesk(f"{qms.base}/.well-known/jwks.json")
    yield desk
    desk.stop()


@pytest.fixture(scope="package")
def browser():
    """Chromium for this package only: the sync API's event loop must be gone before other tests run asyncio."""
    if not Path(CHROMIUM).exists():
        require_service("Chromium at " + CHROMIUM, FileNotFoundError(CHROMIUM))  # fails in CI
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a condition to wait for, not a timing asserted
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=os.environ.get("QMS_HEADED") != "1")
        yield chromium
        chromium.close()


@pytest.fixture
def open_tab(browser, qms):
    """`open_tab(login, path)`: a tab of that fan's own browser (cookies shared by tabs of one fan)."""
    contexts: dict[str, object] = {}

    def open_tab(login: tuple[str, str], path: str):
        if login[0] not in contexts:
            contexts[login[0]] = browser.new_context(viewport={"width": 1024, "height": 800})
            contexts[login[0]].set_default_timeout(15_000)
            page = contexts[login[0]].new_page()
            log_in(page, qms.base, login, path)
            return page
        page = contexts[login[0]].new_page()
        page.goto(f"{qms.base}{path}")
        return page

    yield open_tab
    for context in contexts.values():
        context.close()
