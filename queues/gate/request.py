"""The request a reverse proxy asks the gate about: method, scheme, host, URI and client address, read from the
headers nginx (`X-Original-*`) or Traefik and Caddy (`X-Forwarded-*`) set on their auth sub-request.

The client address comes from `X-Forwarded-For` / `X-Real-IP` only when the peer is one of
`QMS_TRUSTED_PROXIES`; then it is the rightmost hop that is not itself trusted (what a visitor prepends to
`X-Forwarded-For` is ignored).
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = ("80", "443")


def route_host(host: str) -> str:
    """A Host header as routes store it: lowercase, the port kept unless it is 80 or 443."""
    host = host.strip().lower()
    name, sep, port = host.rpartition(":")
    if sep and port in DEFAULT_PORTS and (":" not in name or name.endswith("]")):  # "[::1]:443", not "::443"
        return name
    return host


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


def client_address(request: HttpRequest) -> Address | None:
    """The visitor's address: the peer, or behind trusted proxies the rightmost untrusted forwarded hop."""
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


def remove_dot_segments(path: str) -> str:
    """`path` as the origin will resolve it: `.`/`..` segments (also percent-encoded) resolved, `//` collapsed.

    Routes and path rules match this form, so `/static/../checkout` is neither a static file nor another route.
    """
    if "." not in path and "%" not in path and "//" not in path:
        return path
    segments: list[str] = []
    for segment in path.replace("%2e", ".").replace("%2E", ".").split("/")[1:]:
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", ""):
            segments.append(segment)
    trailing = "/" if path.endswith(("/", "/.", "/..")) and segments else ""
    return "/" + "/".join(segments) + trailing


def _header(request: HttpRequest, nginx: str, forwarded: str, default: str = "") -> str:
    return request.headers.get(nginx) or request.headers.get(forwarded) or default


@dataclass
class OriginalRequest:
    """The proxied visitor request, from the gate request's headers."""

    request: HttpRequest  # the gate request itself: the visitor's headers and cookies, forwarded by the proxy
    method: str
    proto: str
    host: str  # as routes store it (queues.gate.routes.route_host)
    uri: str  # path and query, as the visitor sent them

    @classmethod
    def read(cls, request: HttpRequest) -> OriginalRequest:
        proto = _header(request, "X-Original-Proto", "X-Forwarded-Proto", request.scheme).split(",")[0].strip()
        return cls(
            request=request,
            method=_header(request, "X-Original-Method", "X-Forwarded-Method", request.method or "GET").upper(),
            proto="https" if proto.lower() == "https" else "http",
            host=route_host(_header(request, "X-Original-Host", "X-Forwarded-Host", request.get_host())),
            uri=_header(request, "X-Original-URI", "X-Forwarded-Uri", "/"),
        )

    @cached_property
    def path(self) -> str:
        """The URI's path with dot segments resolved (what routes and path rules match)."""
        raw = self.uri.split("?", 1)[0].split("#", 1)[0] or "/"
        return remove_dot_segments(raw if raw.startswith("/") else "/" + raw)

    @cached_property
    def query(self) -> str:
        return self.uri.partition("?")[2].split("#", 1)[0]

    @cached_property
    def client(self) -> Address | None:
        return client_address(self.request)

    @property
    def absolute_url(self) -> str:
        return f"{self.proto}://{self.host}{self.uri}"
