"""The gate for real (issue 15): Debian's nginx runs the configuration `manage.py qms_gate_config nginx` prints,
in front of a site that is not Django (tests/sites.py `GatedOrigin`) and of the QMS server (embedded default).

Every request goes through nginx as a visitor's would: the waiting room, the API, the protected pages.
"""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from queues.gate import cookies

from .gate import BYPASSED_ADDRESS, GATE_COOKIE_KEY, PUBLIC_PREFIX, GatedSite
from .servers import http_json, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = GatedSite(tmp_path_factory.mktemp("gate"), fans=6)
    yield site
    site.stop()


def test_a_visitor_without_a_cookie_is_sent_to_the_waiting_room_with_the_return_url(site):
    visit = site.visit("/shop/item?colour=red")

    assert visit.status == 302
    room = urlsplit(visit.location)
    assert room.path == f"/events/{site.event_id}/waiting-room/"
    assert parse_qs(room.query)["return"] == [f"{site.base}/shop/item?colour=red"]
    assert all(seen["path"] != "/shop/item?colour=red" for seen in site.origin.seen)


def test_a_fan_admitted_by_the_tick_lands_on_the_origin_with_the_cookie_and_comes_back_with_it_alone(site):
    fan = site.fans[0]
    site.operate("pause")
    try:
        waiting = site.queue("POST", fan, f"{site.base}/shop/")
        assert waiting["admission"] is None and waiting["state"] == "waiting"
    finally:
        site.operate("resume")
    admission = wait_until(lambda: site.queue("GET", fan, f"{site.base}/shop/")["admission"], timeout=20,
                           failure="the tick never admitted the fan")
    target = urlsplit(admission["redirect_url"])
    assert parse_qs(target.query)["qms_token"] == [admission["token"]]

    landing = site.visit(f"{target.path}?{target.query}")

    assert landing.status == 200, (landing.status, site.log())
    cookie = landing.cookies()[site.cookie_name]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/" and not cookie["domain"]
    seen = site.origin.last(f"{target.path}?{target.query}")
    assert seen["X-QMS-Event"] == str(site.event_id)
    assert seen["X-QMS-User"] and seen["X-QMS-Admission"]
    later = site.visit("/shop/basket", cookie=cookie.value, headers={"X-QMS-User": "1"})
    assert later.status == 200
    assert site.origin.last("/shop/basket") == {**seen, "path": "/shop/basket"}  # the gate's headers, not forged


def test_a_forged_cookie_is_sent_back_to_the_waiting_room(site):
    cookie, _ = site.admit(site.fans[1], "/shop/")
    forged = cookie[:-1] + ("A" if cookie[-1] != "A" else "B")

    assert site.visit("/shop/", cookie=cookie).status == 200
    refused = site.visit("/shop/", cookie=forged)
    assert refused.status == 302 and f"/events/{site.event_id}/waiting-room/" in refused.location


def test_an_expired_cookie_is_sent_back_to_the_waiting_room(site, settings):
    cookie, _ = site.admit(site.fans[4], "/shop/")
    settings.QMS_GATE_COOKIE_KEY = GATE_COOKIE_KEY  # the server's signing key: the cookie's hard end moved
    session = cookies.verify(cookie, site.host)
    expired = cookies.sign(replace(session, expires_at=int(time.time()) - 1), site.host)

    assert site.visit("/shop/", cookie=cookies.sign(session, site.host)).status == 200
    refused = site.visit("/shop/", cookie=expired)
    assert refused.status == 302 and f"/events/{site.event_id}/waiting-room/" in refused.location


def test_a_released_admissions_cookie_is_sent_back_to_the_waiting_room(site):
    cookie, admission = site.admit(site.fans[2], "/shop/")
    status, body = http_json("POST", f"{site.base}/api/admissions/release/", {"token": admission["token"]})
    assert status == 200, body

    refused = wait_until(lambda: (visit := site.visit("/shop/", cookie=cookie)).status == 302 and visit,
                         timeout=10, failure="the released admission's cookie still passes")
    assert f"/events/{site.event_id}/waiting-room/" in refused.location


def test_a_bypassed_path_and_a_bypassed_address_pass_without_a_queue(site):
    free_page = site.visit(f"{PUBLIC_PREFIX}opening-hours")
    from_partner = site.visit("/shop/", source=BYPASSED_ADDRESS)
    # Another address claiming the partner's in X-Forwarded-For: only trusted proxies are believed.
    spoofed = site.visit("/shop/", source="127.0.0.3", headers={"X-Forwarded-For": BYPASSED_ADDRESS})

    assert free_page.status == 200 and from_partner.status == 200
    assert site.origin.last(f"{PUBLIC_PREFIX}opening-hours")["X-QMS-Bypass"]
    assert spoofed.status == 302


def test_the_origins_revoke_header_ends_the_session_and_frees_the_slot(site):
    cookie, _ = site.admit(site.fans[3], "/shop/")
    live = site.live_admissions()

    done = site.visit("/done/checkout", cookie=cookie)

    assert done.status == 200 and "X-QMS-Revoke" not in done.headers
    assert done.cookies()[site.cookie_name]["max-age"] == "0"  # the visitor's browser drops it at once
    wait_until(lambda: site.visit("/shop/", cookie=cookie).status == 302, timeout=10,
               failure="the revoked session's cookie still passes")
    wait_until(lambda: site.live_admissions() == live - 1, timeout=10,
               failure=lambda: f"live admissions {site.live_admissions()}, not {live - 1}")
