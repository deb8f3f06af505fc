"""The guard against receivers pointed at the QMS host's own or private services (SSRF).

A receiver's host is resolved at every delivery (a save checks only what needs no DNS lookup: address
literals and `localhost`; DNS can change in between anyway), and every address it resolves to must be public;
the connection is then made to one of those checked addresses, so a second lookup cannot swap in another.
`QMS_WEBHOOK_ALLOWED_HOSTS` lists host names or addresses exempt from the check (a receiver on the operator's
own network).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError


class AddressRefused(Exception):
    """The receiver's URL may not be called (a reason for the delivery log and the staff API)."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str  # with the query
    addresses: tuple[str, ...]  # checked, in the resolver's order


def refusal(address: str) -> str | None:
    """Why this address may not receive webhooks, or None if it may (public unicast only)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_private:
        return "private"
    if ip.is_reserved or ip.is_unspecified or not ip.is_global:
        return "reserved"
    return None


def allowed_hosts() -> frozenset[str]:
    return frozenset(host.lower().strip("[]") for host in settings.QMS_WEBHOOK_ALLOWED_HOSTS)


def parse(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path?query) of an http(s) URL; AddressRefused for anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AddressRefused("only http:// and https:// URLs with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise AddressRefused(f"bad port: {exc}") from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname.lower(), port, path


def resolve(url: str) -> Target:
    """The URL's checked target; AddressRefused if its host does not resolve or resolves to a refused address."""
    scheme, host, port, path = parse(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AddressRefused(f"{host} does not resolve: {exc}") from None
    addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
    exempt = allowed_hosts()
    if host not in exempt:
        for address in addresses:
            reason = refusal(address)
            if reason is not None and address.lower() not in exempt:
                raise AddressRefused(f"{host} resolves to {address} ({reason}); "
                                     f"list it in QMS_WEBHOOK_ALLOWED_HOSTS to allow it")
    return Target(scheme, host, port, path, addresses)


def check_without_resolving(url: str) -> None:
    """What can be refused without a DNS lookup: not http(s), an address literal that is not public, a
    `localhost` name (RFC 6761: always loopback). Names are resolved at every delivery (`resolve`)."""
    scheme, host, port, path = parse(url)
    if host in allowed_hosts():
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise AddressRefused(f"{host} is loopback; list it in QMS_WEBHOOK_ALLOWED_HOSTS to allow it")
    try:
        reason = refusal(host.strip("[]"))
    except ValueError:
        return  # a name: checked when it is resolved, at each delivery
    if reason is not None:
        raise AddressRefused(f"{host} resolves to {host} ({reason}); list it in QMS_WEBHOOK_ALLOWED_HOSTS to allow it")


def validate_receiver_url(url: str) -> None:
    """The model's validator (admin form, staff API): the guard at save time too, to tell the operator at once,
    without a DNS lookup (a save must not wait on a resolver: an unreachable one took 5 s per name here; the
    delivery's lookup is the guard that counts, since DNS can change after the save anyway).
    Its own code: the admin's form replaces a model error coded `invalid` by its generic "Enter a valid URL"."""
    try:
        check_without_resolving(url)
    except AddressRefused as refused:
        raise ValidationError(str(refused), code="receiver_refused") from None
