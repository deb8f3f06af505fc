"""Screenshots for the README: the waiting room (pre-queue, waiting, admitted; the access-code form, a closed
sale, the organiser's message, the draw checked after the opening) and the admin live view.

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
from datetime import UTC, datetime, timedelta
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
OPENING_DEADLINE_S = 20

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


def open_sale(server: QMSServer, event: dict) -> None:
    """Move the opening into the past and wait (with a deadline) for the tick to record the draw."""
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    server.api("PATCH", f"/api/events/{event['id']}/", {"sale_starts_at": past})
    deadline = time.monotonic() + OPENING_DEADLINE_S
    while time.monotonic() < deadline:
        if http_json("GET", f"{server.base}/api/events/{event['id']}/draw/entries/", None, None)[0] == 200:
            return
        time.sleep(0.2)
    raise AssertionError(f"the draw was not recorded within {OPENING_DEADLINE_S} s")


def seen_in_prequeue(browser, state: dict, url: str) -> dict:
    """The fan's browser state after seeing the pre-queue (and its commitment): the page offers the check after it."""
    context = browser.new_context(storage_state=state)
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#waiting-room")).to_have_attribute("data-state", "prequeue")
    seen = context.storage_state()
    context.close()
    return seen


def message_shown(page) -> None:
    expect(page.locator("#wr-crowd")).to_be_visible()
    expect(page.locator("#wr-updated")).not_to_have_text("–", timeout=15_000)


def check_the_draw(page) -> None:
    page.get_by_role("button", name="Check the draw").click()
    expect(page.locator("#wr-draw")).to_have_attribute("data-result", "pass")
    page.mouse.move(0, 0)  # the picture shows the button at rest, not hovered
    page.locator("#wr-draw").evaluate("box => box.scrollIntoView({block: 'center'})")  # on desktop: the results


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
            code = server.create_event(name="Fan-club presale", entry_policy="codes",
                                       reservation_url="https://tickets.example/book")
            closed = server.create_event(name="Summer Open Air — extra date", entry_policy="reject",
                                         closed_message="The extra date is sold out.\n"
                                                        "Returned tickets go on sale on Monday at 10:00.",
                                         reservation_url="https://tickets.example/book")
            told = server.create_event(name="Arena Live — second night", admit_per_minute=20, max_active=2000,
                                       reservation_url="https://tickets.example/book")
            # held so the fan stays in line after the opening (max_active 1 once resumed: one fan at most leaves)
            drawn = server.create_event(name="Stadium Tour — Saturday night", sale_starts_in=timedelta(minutes=10),
                                        paused=True, max_active=1, admit_per_minute=1,
                                        reservation_url="https://tickets.example/book")
            join(server, soon, crowd[:150])
            join(server, told, crowd[:120])
            server.api("POST", f"/api/events/{told['id']}/queue/announce/",
                       {"text": "Doors open at 19:00. Standing tickets are limited to 4 per order.",
                        "text_de": "Einlass ab 19:00 Uhr. Stehplätze: höchstens 4 pro Bestellung."})
            join(server, drawn, crowd[:90])
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
                shoot(browser, fan_state, f"{server.base}/events/{code['id']}/waiting-room/", "waiting-room-code",
                      lambda p: expect(p.locator("#waiting-room")).to_have_attribute("data-state", "code"))
                shoot(browser, fan_state, f"{server.base}/events/{closed['id']}/waiting-room/", "waiting-room-closed",
                      lambda p: expect(p.locator("#waiting-room")).to_have_attribute("data-state", "entryclosed"))
                shoot(browser, fan_state, f"{server.base}/events/{told['id']}/waiting-room/",
                      "waiting-room-announcement", message_shown)
                drawn_url = f"{server.base}/events/{drawn['id']}/waiting-room/"
                drawn_state = seen_in_prequeue(browser, fan_state, drawn_url)
                open_sale(server, drawn)
                server.api("PATCH", f"/api/events/{drawn['id']}/", {"paused": False})
                shoot(browser, drawn_state, drawn_url, "waiting-room-draw-check", check_the_draw)
                shoot(browser, admin_state, f"{server.base}/admin/events/event/{busy['id']}/change/", "admin-live",
                      lambda p: expect(p.locator("[data-qms-updated]")).not_to_have_text("now", timeout=15_000),
                      settle_ms=1600)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
