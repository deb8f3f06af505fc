"""The request a reverse proxy asks the gate about: method, scheme, host, URI and client address, read from the
headers nginx (`X-Original-*`) or Traefik and Caddy (`X-Forwarded-*`) set on their auth sub-request.

The client address is queues/client_address.py's, as for every per-address count.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.http import HttpRequest

from ..client_address import Address, client_address

DEFAULT_PORTS = ("80", "443")


def route_host(host: str) -> str:
    """A Host header as routes store it: lowercase, the port kept unless it is 80 or 443."""
    host = host.strip().lower()
    name, sep, port = host.rpartition(":")
    if sep and port in DEFAULT_PORTS and (":" not in name or name.endswith("]")):  # "[::1]:443", not "::443"
        return name
    return host


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
