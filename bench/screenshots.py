"""Screenshots for the README: the waiting room (pre-queue, waiting, admitted) and the admin live view.

Starts a real server (embedded default, its own SQLite file), fills a queue with
a crowd over the API, and photographs each page in Debian's Chromium on desktop
(1280 px) and mobile (360 px). Writes PNGs to docs/screenshots/.

    .venv/bin/python bench/screenshots.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import django  # noqa: E402

django.setup()

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from tests.browser.harness import CHROMIUM, CHROMIUM_ARGS, FAN, QMSServer, log_in, log_in_admin  # noqa: E402
from tests.e2e.servers import http_json, manage  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"viewport": {"width": 1280, "height": 820}}
MOBILE = {"viewport": {"width": 360, "height": 780}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
CROWD = 260

_MINT_CROWD = """
import json
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken
users = get_user_model()
users.objects.bulk_create([users(username=f"crowd{{i:04d}}") for i in range({count})], ignore_conflicts=True)
print(json.dumps([str(AccessToken.for_user(u)) for u in users.objects.filter(username__startswith="crowd")
                  .order_by("username")]))
"""


def crowd_tokens(server: QMSServer) -> list[str]:
    """JWTs for a crowd of fans, minted in the server's own database (no password logins needed)."""
    return json.loads(manage("shell", "-c", _MINT_CROWD.format(count=CROWD), env=server.env).strip().splitlines()[-1])


def join(server: QMSServer, event: dict, tokens: list[str]) -> None:
    for token in tokens:
        status, body = http_json("POST", f"{server.base}/api/events/{event['id']}/queue/", token=token)
        assert status in (200, 201), body


def shoot(browser, state: dict, path: str, name: str, ready, *, route_pending: str | None = None,
          settle_ms: int = 400) -> None:
    for label, options in (("desktop", DESKTOP), ("mobile", MOBILE)):
        context = browser.new_context(storage_state=state, **options)
        if route_pending:
            context.route(route_pending, lambda route: None)  # the redirect stays in flight: the page stays
        page = context.new_page()
        page.goto(path)
        ready(page)
        page.wait_for_timeout(settle_ms)  # let transitions and highlights settle before the picture
        full = label == "mobile" and not name.startswith("admin")
        page.screenshot(path=str(OUT / f"{name}-{label}.png"), full_page=full)
        context.close()
        print("wrote", OUT / f"{name}-{label}.png")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        server = QMSServer(Path(workdir), QMS_TICK_SECONDS="1")
        try:
            crowd = crowd_tokens(server)
            soon = server.create_event(name="Stadium Tour — Friday night", reservation_url="https://tickets.example/book",
                                       sale_starts_in=timedelta(hours=1, minutes=24))
            busy = server.create_event(name="Arena Live — general sale", admit_per_minute=40, max_active=2000,
                                       reservation_url="https://tickets.example/book")
            open_ = server.create_event(name="Club Show — late release", admit_per_minute=600,
                                        reservation_url="https://tickets.example/book")
            join(server, soon, crowd[:150])
            join(server, busy, crowd[:180])
            server.api("POST", f"/api/events/{busy['id']}/queue/admit/", {"count": 35})

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                context = browser.new_context()
                page = context.new_page()
                log_in(page, server.base, FAN, f"/events/{busy['id']}/waiting-room/")  # a place in the busy queue
                fan_state = context.storage_state()
                expect(page.locator("#wr-position")).not_to_have_text("–", timeout=15_000)
                context.close()
                join(server, busy, crowd[180:])  # more fans behind

                admin_context = browser.new_context()
                log_in_admin(admin_context.new_page(), server.base, "/admin/")
                admin_state = admin_context.storage_state()
                admin_context.close()

                shoot(browser, fan_state, f"{server.base}/", "landing",
                      lambda p: expect(p.locator(".event-card").first).to_be_visible())
                shoot(browser, fan_state, f"{server.base}/events/{soon['id']}/waiting-room/", "waiting-room-prequeue",
                      lambda p: expect(p.locator("#waiting-room")).to_have_attribute("data-state", "prequeue"))
                time.sleep(3)  # a few ticks: the observed rate and the places have moved
                shoot(browser, fan_state, f"{server.base}/events/{busy['id']}/waiting-room/", "waiting-room-waiting",
                      lambda p: expect(p.locator("#wr-updated")).not_to_have_text("–", timeout=15_000))
                shoot(browser, fan_state, f"{server.base}/events/{open_['id']}/waiting-room/", "waiting-room-admitted",
                      lambda p: expect(p.locator("#waiting-room")).to_have_attribute("data-state", "admitted"),
                      route_pending="https://tickets.example/**")
                shoot(browser, admin_state, f"{server.base}/admin/events/event/{busy['id']}/change/", "admin-live",
                      lambda p: expect(p.locator("[data-qms-updated]")).not_to_have_text("now", timeout=15_000),
                      settle_ms=1600)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
