"""The gate in Chromium (issue 15): a fan opens a protected page of a site that is not Django, behind the nginx
configuration `manage.py qms_gate_config` prints; the waiting room admits them and sends them back, the gate's
cookie carries them on, and the site's revoke header ends their visit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.gate import GatedSite


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    site = GatedSite(tmp_path_factory.mktemp("gate-browser"), fans=1)
    yield site
    site.stop()


def test_a_fan_goes_through_the_waiting_room_to_the_protected_page_and_out_again(browser, site):
    context = browser.new_context()
    context.set_default_timeout(15_000)
    page = context.new_page()
    room = re.compile(re.escape(f"{site.base}/events/{site.event_id}/waiting-room/"))

    page.goto(f"{site.base}/shop/item?colour=red")  # no cookie: to the waiting room, which asks for a login
    page.get_by_label("Username").fill(site.fans[0][0])
    page.get_by_label("Password").fill(site.fans[0][1])
    page.get_by_role("button", name="Log in").click()

    # Admitted at once (room to spare), the page sends the fan back where they were going, with the token.
    page.wait_for_url(re.compile(re.escape(f"{site.base}/shop/item?colour=red&qms_token=")))
    expect(page.get_by_role("heading", name="Protected shop")).to_be_visible()
    expect(page.locator("#x-qms-event")).to_have_text(str(site.event_id))
    expect(page.locator("#x-qms-admission")).not_to_be_empty()
    cookie = next(c for c in context.cookies() if c["name"] == site.cookie_name)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["domain"] == "127.0.0.1"

    page.goto(f"{site.base}/shop/basket")  # the cookie alone lets the fan on
    expect(page.get_by_role("heading", name="Protected shop")).to_be_visible()
    assert page.url == f"{site.base}/shop/basket"

    page.goto(f"{site.base}/done/checkout")  # the site ends the visit (X-QMS-Revoke): the cookie is dropped
    expect(page.get_by_role("heading", name="Protected shop")).to_be_visible()
    assert all(c["name"] != site.cookie_name for c in context.cookies())
    page.goto(f"{site.base}/shop/basket")
    expect(page).to_have_url(room)
    context.close()
