"""The forward-auth gate (queues/gate/): which event guards a request, where an admitted fan may be sent back
to, and the `/gate/auth` and `/gate/revoke` endpoints a reverse proxy calls."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client

from events.models import BypassRule, ProtectedRoute
from queues import admission
from queues.gate import cookies, gate_routes, validated_return_url, views
from queues.models import Admission


@pytest.fixture
def two_sales(make_event):
    """Two events on one shop: /sale/ guarded by `a`, /sale/vip/ by `b`; b also guards its own host."""
    a, b = make_event(name="A"), make_event(name="B")
    ProtectedRoute.objects.create(event=a, host="shop.example", path_prefix="/sale/")
    ProtectedRoute.objects.create(event=b, host="shop.example", path_prefix="/sale/vip/")
    ProtectedRoute.objects.create(event=b, host="vip.example:8443", path_prefix="/")
    return a, b


def test_the_longest_prefix_on_the_exact_host_decides(two_sales):
    a, b = two_sales
    assert gate_routes.lookup("shop.example", "/sale/seats").id == a.id
    assert gate_routes.lookup("SHOP.example:443", "/sale/vip/seats").id == b.id
    assert gate_routes.lookup("vip.example:8443", "/anything").id == b.id
    assert gate_routes.lookup("shop.example", "/about") is None
    assert gate_routes.lookup("vip.example", "/") is None  # the port is part of the host
    assert gate_routes.lookup("www.shop.example", "/sale/") is None


def test_routes_are_read_once_per_copy_and_a_saved_route_applies_at_once(two_sales):
    a, _ = two_sales
    loads = gate_routes.loads
    for _ in range(5):
        gate_routes.lookup("shop.example", "/sale/x")
    assert gate_routes.loads == loads + 1
    ProtectedRoute.objects.create(event=a, host="shop.example", path_prefix="/tickets/")
    assert gate_routes.lookup("shop.example", "/tickets/1").id == a.id


@pytest.mark.parametrize("url", [
    "https://shop.example/sale/seats?row=3",
    "http://shop.example/sale/",
    "https://shop.example:443/sale/x#top",
])
def test_a_return_url_on_the_events_own_route_is_kept(two_sales, url):
    assert validated_return_url(two_sales[0], url) == url


@pytest.mark.parametrize("url", [
    None, "", "/sale/seats",  # not absolute
    "javascript:alert(1)//shop.example/sale/", "ftp://shop.example/sale/",
    "https://evil.example/sale/", "https://shop.example.evil.example/sale/",
    "https://shop.example@evil.example/sale/", "https://user@shop.example/sale/",
    "https://shop.example/about", "https://shop.example/sale/vip/x",  # no route / the other event's route
    "https://shop.example/sale/../admin", "https://shop.example/sale/%2e%2e/admin", "https://shop.example/sale//x",
    "https://shop.example\\@evil.example/sale/", "https://shop.example/sale/\n", "https://shop.example:99999/sale/",
])
def test_anything_else_is_no_return_url(two_sales, url):
    assert validated_return_url(two_sales[0], url) is None


# --- /gate/auth ---

SALE = "/sale/seats?row=3"


def ask(client=None, uri=SALE, host="shop.example", cookie=None, event=None, gate="/gate/auth", **headers):
    """The proxy's auth sub-request for a visitor's `host` + `uri`, carrying the visitor's gate cookie."""
    client = client or Client()
    if cookie is not None:
        client.cookies[cookies.cookie_name(event.id)] = cookie
    headers = {"HTTP_X_ORIGINAL_HOST": host, "HTTP_X_ORIGINAL_URI": uri, **headers}
    return client.get(gate, **headers)


def admit(event, user) -> Admission:
    """`user` joins and a tick admits them: the ledger row (with its token)."""
    admission.join(event, user)
    admission.tick(event)
    return Admission.objects.get(event=event, user=user)


def exchange(row, **headers) -> tuple[object, str]:
    """The first request after the waiting room (`?qms_token=`): the answer and the gate cookie it sets."""
    response = ask(uri=f"/sale/seats?row=3&qms_token={row.token}", **headers)
    return response, response.cookies[cookies.cookie_name(row.event_id)].value


@pytest.fixture
def sale(make_event):
    """An event guarding shop.example/sale/ and all of other.example."""
    event = make_event(name="Sale")
    ProtectedRoute.objects.create(event=event, host="shop.example", path_prefix="/sale/")
    ProtectedRoute.objects.create(event=event, host="other.example", path_prefix="/")
    return event


def test_a_visitor_without_admission_is_sent_to_the_waiting_room_with_the_way_back(sale, store):
    response = ask()
    assert response.status_code == 401
    assert response["X-QMS-Reason"] == "gate_no_admission"
    return_url = quote("http://shop.example/sale/seats?row=3", safe="")
    assert response["X-QMS-Location"] == f"http://shop.example/events/{sale.id}/waiting-room/?return={return_url}"
    assert response["Cache-Control"] == "no-store"


def test_refusals_are_not_logged_as_warnings_one_per_request(sale, store, caplog):
    """Every request of every visitor not yet admitted is a 401: django.request must not warn about each."""
    with caplog.at_level("WARNING", logger="django.request"):
        assert ask().status_code == 401
        assert ask(uri="/about").status_code == 403
    assert [record for record in caplog.records if record.name == "django.request"] == []


def test_deny_redirect_answers_302_and_a_public_url_names_the_waiting_room(sale, store, settings):
    settings.QMS_PUBLIC_URL = "https://queue.example"
    response = ask(gate="/gate/auth?deny=redirect", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 302
    assert response["Location"].startswith(f"https://queue.example/events/{sale.id}/waiting-room/?return=https%3A")


def test_a_request_no_route_guards_is_refused(sale, store):
    response = ask(uri="/about")
    assert (response.status_code, response["X-QMS-Reason"]) == (403, "gate_no_route")


def test_traefik_and_caddy_headers_are_read_too(sale, store):
    response = Client().get("/gate/auth", HTTP_X_FORWARDED_HOST="shop.example", HTTP_X_FORWARDED_URI="/about",
                            HTTP_X_FORWARDED_METHOD="GET")
    assert response["X-QMS-Reason"] == "gate_no_route"
    assert Client().get("/gate/auth", HTTP_X_FORWARDED_HOST="shop.example",
                        HTTP_X_FORWARDED_URI="/sale/").status_code == 401


def test_the_token_is_exchanged_for_a_host_only_http_only_lax_cookie(sale, store, make_user):
    fan = make_user()
    row = admit(sale, fan)
    response, value = exchange(row)
    assert response.status_code == 200
    assert (response["X-QMS-User"], response["X-QMS-Event"], response["X-QMS-Admission"]) == (
        str(fan.id), str(sale.id), row.jti)
    morsel = response.cookies[cookies.cookie_name(sale.id)]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["domain"] and not morsel["secure"]
    assert 0 < int(morsel["max-age"]) <= sale.token_ttl_seconds
    later = ask(cookie=value, event=sale, uri="/sale/other")
    assert later.status_code == 200 and later["X-QMS-Admission"] == row.jti
    assert "Set-Cookie" not in later


def test_behind_traefik_or_caddy_the_exchange_redirects_to_the_url_without_the_token_carrying_the_cookie(
        sale, store, make_user):
    """They copy a 2xx's headers into the request only; a redirect they pass to the visitor whole."""
    row = admit(sale, make_user())
    response, value = exchange(row, gate="/gate/auth?deny=redirect")
    assert response.status_code == 302
    assert response["Location"] == "http://shop.example/sale/seats?row=3"
    assert ask(cookie=value, event=sale, gate="/gate/auth?deny=redirect").status_code == 200


def test_the_cookie_is_secure_over_https(sale, store, make_user):
    response, _ = exchange(admit(sale, make_user()), HTTP_X_ORIGINAL_PROTO="https")
    assert response.cookies[cookies.cookie_name(sale.id)]["secure"]


def _tampered(value: str, index: int, replacement: str) -> str:
    parts = value.split(".")
    parts[index] = replacement
    return ".".join(parts)


@pytest.mark.parametrize("change", [
    lambda v: v[:-2] + ("AA" if not v.endswith("AA") else "BB"),  # forged signature
    lambda v: _tampered(v, 1, "999999"),  # another user
    lambda v: _tampered(v, 2, "0" * 32),  # another admission
    lambda v: _tampered(v, 3, "1"),  # another issue time
    lambda v: _tampered(v, 4, "9999999999"),  # a later hard end
    lambda v: "garbage",
    lambda v: v + ".x",
])
def test_a_forged_or_tampered_cookie_is_refused(sale, store, make_user, change):
    _, value = exchange(admit(sale, make_user()))
    response = ask(cookie=change(value), event=sale)
    assert (response.status_code, response["X-QMS-Reason"]) == (401, "gate_cookie_invalid")


def test_a_cookie_replayed_on_another_host_is_refused(sale, store, make_user):
    _, value = exchange(admit(sale, make_user()))
    assert ask(cookie=value, event=sale, host="other.example", uri="/").status_code == 401
    assert ask(cookie=value, event=sale, host="other.example", uri="/")["X-QMS-Reason"] == "gate_cookie_invalid"


def test_a_cookie_past_its_hard_end_is_refused(sale, store, make_user):
    row = admit(sale, make_user())
    session = cookies.GateSession(event_id=sale.id, user_id=row.user_id, jti=row.jti, issued_at=1000,
                                  expires_at=2000)
    response = ask(cookie=cookies.sign(session, "shop.example"), event=sale)
    assert response["X-QMS-Reason"] == "gate_session_expired"


def test_a_released_admission_ends_its_cookie_and_its_token(sale, store, make_user):
    row = admit(sale, make_user())
    _, value = exchange(row)
    admission.release(row.token)
    assert ask(cookie=value, event=sale)["X-QMS-Reason"] == "gate_session_ended"
    response = ask(uri=f"/sale/?qms_token={row.token}")
    assert (response.status_code, response["X-QMS-Reason"]) == (401, "gate_session_ended")
    assert "qms_token" not in response["X-QMS-Location"]


def test_another_events_cookie_or_token_is_refused(sale, store, make_user, make_event):
    other = make_event(name="Other")
    ProtectedRoute.objects.create(event=other, host="shop.example", path_prefix="/other/")
    row = admit(sale, make_user())
    _, value = exchange(row)
    response = ask(uri="/other/", cookie=value, event=other)  # the same value under the other event's name
    assert response["X-QMS-Reason"] == "gate_wrong_event"
    assert ask(uri=f"/other/?qms_token={row.token}")["X-QMS-Reason"] == "gate_wrong_event"


def test_a_bad_token_is_refused(sale, store):
    assert ask(uri="/sale/?qms_token=abc.def.ghi")["X-QMS-Reason"] == "gate_token_invalid"


# --- bypass rules ---

def rule(event, kind, value="", name="", position=0) -> BypassRule:
    return BypassRule.objects.create(event=event, kind=kind, value=value, name=name, position=position)


@pytest.mark.parametrize(("kind", "name", "value", "passing", "refused"), [
    ("path_prefix", "", "/sale/static/", {"uri": "/sale/static/app.css"}, {"uri": "/sale/static/../seats"}),
    ("path_suffix", "", ".png", {"uri": "/sale/logo.png?v=2"}, {"uri": "/sale/logo.png.html"}),
    ("header", "X-Partner-Key", "s3cret", {"HTTP_X_PARTNER_KEY": "s3cret"}, {"HTTP_X_PARTNER_KEY": "s3cre"}),
    ("address", "", "203.0.113.0/24", {"HTTP_X_FORWARDED_FOR": "203.0.113.5"},
     {"HTTP_X_FORWARDED_FOR": "203.0.113.5, 198.51.100.9"}),  # the visitor's own X-Forwarded-For is ignored
    ("address", "", "203.0.113.5", {"HTTP_X_REAL_IP": "203.0.113.5"}, {"HTTP_X_REAL_IP": "203.0.113.6"}),
])
def test_a_bypass_rule_lets_matching_traffic_through_and_nothing_else(sale, store, kind, name, value, passing,
                                                                      refused):
    made = rule(sale, kind, value, name)
    response = ask(**passing)
    assert (response.status_code, response["X-QMS-Bypass"], response["X-QMS-Event"]) == (200, str(made.id),
                                                                                          str(sale.id))
    assert ask(**refused).status_code == 401


def test_a_cookie_rule_matches_the_cookies_value(sale, store):
    made = rule(sale, "cookie", "monitor-1", name="qms_monitor")
    client = Client()
    client.cookies["qms_monitor"] = "monitor-2"
    assert ask(client).status_code == 401
    client.cookies["qms_monitor"] = "monitor-1"
    assert ask(client)["X-QMS-Bypass"] == str(made.id)


def test_forwarded_addresses_count_only_from_a_trusted_proxy(sale, store, settings):
    rule(sale, "address", "203.0.113.0/24")
    spoofed = {"HTTP_X_FORWARDED_FOR": "203.0.113.5", "REMOTE_ADDR": "198.51.100.7"}
    assert ask(**spoofed).status_code == 401  # an untrusted peer's header is ignored
    settings.QMS_TRUSTED_PROXIES = ["198.51.100.0/24"]
    assert ask(**spoofed).status_code == 200
    assert ask(REMOTE_ADDR="203.0.113.9").status_code == 200  # a visitor reaching QMS directly


def test_the_staff_rule_lets_staff_through_by_their_session(sale, store, make_user):
    made = rule(sale, "staff")
    client = Client()
    client.force_login(make_user(is_staff=True))
    assert ask(client)["X-QMS-Bypass"] == str(made.id)
    fan = Client()
    fan.force_login(make_user())
    assert ask(fan).status_code == 401


def test_rules_apply_in_position_order_and_a_broken_rule_is_skipped(sale, store):
    rule(sale, "address", "not-a-network", position=0)
    rule(sale, "header", "", name="X-Empty", position=1)
    second = rule(sale, "path_prefix", "/sale/", position=3)
    first = rule(sale, "path_suffix", "/seats", position=2)
    assert ask(uri="/sale/seats")["X-QMS-Bypass"] == str(first.id)
    assert ask(uri="/sale/x")["X-QMS-Bypass"] == str(second.id)


def test_bypassed_traffic_takes_no_slot(sale, store, make_user):
    rule(sale, "path_prefix", "/sale/")
    live = admission.live_admissions(sale)
    for _ in range(3):
        assert ask().status_code == 200
    assert admission.live_admissions(sale) == live == 0
    assert store.session_activity(sale.id, 0.0) == {}
    assert not Admission.objects.filter(event=sale).exists()


# --- sessions: sliding, fixed, revoke ---

@pytest.fixture
def at(monkeypatch):
    """Sets the gate's clock: `at(t)` makes the next gate requests happen at epoch second t."""
    def set_now(now: float) -> None:
        monkeypatch.setattr(views, "clock", lambda: now)
    return set_now


def test_a_sliding_session_is_renewed_by_activity_and_ends_idle(sale, store, make_user, at):
    sale.session_mode, sale.session_idle_seconds, sale.session_max_seconds = "sliding", 60, 600
    sale.save()
    row = admit(sale, make_user())
    issued = row.issued_at.timestamp()
    assert row.expires_at.timestamp() == pytest.approx(int(issued) + 60, abs=1)  # one idle time at first
    at(issued + 1)
    _, value = exchange(row)
    for offset in (50, 105, 160):  # each within 60 s of the last
        at(issued + offset)
        assert ask(cookie=value, event=sale).status_code == 200
    assert admission.sync_gate_activity(sale, now=issued + 161) == 1
    row.refresh_from_db()
    assert row.expires_at.timestamp() == pytest.approx(issued + 160 + 60, abs=1)  # the tick moved the slot on
    assert admission.live_admissions(sale) == 1
    at(issued + 221)
    assert ask(cookie=value, event=sale)["X-QMS-Reason"] == "gate_session_idle"
    at(issued + 222)
    assert ask(cookie=value, event=sale)["X-QMS-Reason"] == "gate_session_ended"


def test_a_sliding_session_ends_at_its_cap_however_active(sale, store, make_user, at):
    sale.session_mode, sale.session_idle_seconds, sale.session_max_seconds = "sliding", 60, 120
    sale.save()
    row = admit(sale, make_user())
    issued = row.issued_at.timestamp()
    _, value = exchange(row)
    for offset in (40, 80, 118):
        at(issued + offset)
        assert ask(cookie=value, event=sale).status_code == 200
    admission.sync_gate_activity(sale, now=issued + 119)
    row.refresh_from_db()
    assert row.expires_at.timestamp() == pytest.approx(issued + 120, abs=1e-3)  # capped, not 118 + 60
    at(issued + 121)
    assert ask(cookie=value, event=sale)["X-QMS-Reason"] == "gate_session_expired"


def test_a_fixed_session_lasts_the_tokens_life(sale, store, make_user, at):
    row = admit(sale, make_user())
    _, value = exchange(row)
    end = row.expires_at.timestamp()
    at(end - 1)
    assert ask(cookie=value, event=sale).status_code == 200
    at(end + 1)
    assert ask(cookie=value, event=sale)["X-QMS-Reason"] == "gate_session_expired"


def test_revoke_ends_the_session_and_frees_the_slot_for_the_next_fan(sale, store, make_user):
    sale.max_active = 1
    sale.save()
    first, second = make_user(), make_user()
    row = admit(sale, first)
    admission.join(sale, second)
    admission.tick(sale)
    assert not Admission.objects.filter(user=second).exists()  # no room yet
    _, value = exchange(row)
    client = Client()
    client.cookies[cookies.cookie_name(sale.id)] = value
    response = client.post("/gate/revoke", HTTP_X_ORIGINAL_HOST="shop.example", HTTP_X_ORIGINAL_URI="/sale/x")
    assert (response.status_code, response["X-QMS-Admission"]) == (204, row.jti)
    assert ask(cookie=value, event=sale)["X-QMS-Reason"] == "gate_session_ended"
    admission.tick(sale)
    assert Admission.objects.filter(user=second).exists()


def test_revoke_by_the_admission_header_and_nothing_named(sale, store, make_user):
    row = admit(sale, make_user())
    _, value = exchange(row)
    assert Client().post("/gate/revoke").status_code == 404
    assert Client().post("/gate/revoke", HTTP_X_QMS_ADMISSION="nope").status_code == 404
    assert Client().post("/gate/revoke", HTTP_X_QMS_ADMISSION=row.jti).status_code == 204
    row.refresh_from_db()
    assert row.released_at is not None
    assert ask(cookie=value, event=sale)["X-QMS-Reason"] == "gate_session_ended"
