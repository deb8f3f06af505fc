"""The client's address, one reading for everything that keys on it (the gate's address rules, the login and
entry-attempt counts): the peer, or, when the peer is one of `QMS_TRUSTED_PROXIES` (comma-separated CIDRs), the
rightmost hop of `X-Forwarded-For` / `X-Real-IP` that is not itself trusted. What a client prepends to
`X-Forwarded-For` is never read: a spoofed header cannot make a client someone else, nor many someones.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from types import SimpleNamespace

from django.conf import settings
from django.http.request import HttpHeaders

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # "[2001:db8::1]:443"
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # "203.0.113.9:5000"
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def trusted_proxies() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """`QMS_TRUSTED_PROXIES` parsed (once per distinct value)."""
    return _networks(tuple(settings.QMS_TRUSTED_PROXIES))


def _trusted(address: Address | None) -> bool:
    return address is not None and any(address in network for network in trusted_proxies())


def client_address(request) -> Address | None:
    """The client's address (an HttpRequest, or a socket's `socket_request`): the peer, or behind trusted
    proxies the rightmost untrusted forwarded hop; None when what is there is no address."""
    peer = _parse_address(request.META.get("REMOTE_ADDR", ""))
    if not _trusted(peer):
        return peer
    hops = [hop for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    if not hops and request.headers.get("X-Real-IP"):
        hops = [request.headers["X-Real-IP"]]
    for hop in reversed(hops):
        address = _parse_address(hop)
        if not _trusted(address):
            return address  # None for a hop that is no address: no address rule matches it
    return _parse_address(hops[0]) if hops else peer


def socket_request(scope: Mapping) -> SimpleNamespace:
    """What `client_address` reads of a request (the peer, the forwarding headers), from a socket's ASGI scope."""
    client = scope.get("client") or ("",)
    headers = dict(scope.get("headers") or [])
    meta = {"REMOTE_ADDR": str(client[0] or "")}
    for name in (b"x-forwarded-for", b"x-real-ip"):
        if name in headers:
            meta["HTTP_" + name.decode().upper().replace("-", "_")] = headers[name].decode("latin-1")
    return SimpleNamespace(META=meta, headers=HttpHeaders(meta))
