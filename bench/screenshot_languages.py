"""The waiting room as a German browser sees it: docs/screenshots/waiting-room-de-desktop.png.

A real server (embedded default), a crowd in line over the API, and Debian's
Chromium with `locale="de-DE"` (so Accept-Language asks for German and Intl
formats numbers and dates the German way).

    .venv/bin/python bench/screenshot_languages.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from playwright.sync_api import expect, sync_playwright  # noqa: E402
from screenshots import DESKTOP, OUT, crowd_tokens, join  # noqa: E402  (sets up Django)

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, FAN, QMSServer  # noqa: E402

LANGUAGES = {"de": "de-DE"}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        server = QMSServer(Path(workdir), QMS_TICK_SECONDS="1")
        try:
            crowd = crowd_tokens(server)
            busy = server.create_event(name="Arena Live — Hauptverkauf", admit_per_minute=40, max_active=2000,
                                       reservation_url="https://tickets.example/book")
            join(server, busy, crowd[:180])
            server.api("POST", f"/api/events/{busy['id']}/queue/admit/", {"count": 35})
            path = f"/events/{busy['id']}/waiting-room/"
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for code, locale in LANGUAGES.items():
                    context = browser.new_context(locale=locale, **DESKTOP)
                    page = context.new_page()
                    page.goto(f"{server.base}{path}")
                    page.locator("#id_username").fill(FAN[0])
                    page.locator("#id_password").fill(FAN[1])
                    page.locator("button[type=submit]").click()
                    page.wait_for_url(f"{server.base}{path}")
                    expect(page.locator("#wr-position")).not_to_have_text("–", timeout=15_000)
                    join(server, busy, crowd[180:])  # more fans behind
                    time.sleep(3)  # a few ticks: the observed rate and the place have moved
                    page.reload()
                    expect(page.locator("#wr-updated")).not_to_have_text("–", timeout=15_000)
                    page.wait_for_timeout(400)
                    target = OUT / f"waiting-room-{code}-desktop.png"
                    page.screenshot(path=str(target))
                    print("wrote", target)
                    context.close()
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
