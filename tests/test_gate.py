"""The forward-auth gate (queues/gate/): which event guards a request, where an admitted fan may be sent back
to, and the `/gate/auth` and `/gate/revoke` endpoints a reverse proxy calls."""

from __future__ import annotations

import pytest

from events.models import ProtectedRoute
from queues.gate import gate_routes, validated_return_url


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
