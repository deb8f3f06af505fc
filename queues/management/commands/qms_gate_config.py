"""`manage.py qms_gate_config nginx|traefik|caddy`: a complete proxy configuration that puts the gate (issue 15)
in front of a site that knows nothing of QMS; docs/DEPLOYMENT.md, "Protecting any site (the gate)", explains it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string

from events.models import Event

TEMPLATES = {"nginx": "gate/nginx.conf", "traefik": "gate/traefik.yml", "caddy": "gate/Caddyfile"}


@dataclass(frozen=True)
class Upstream:
    """A server the proxy sends requests to, named by an http(s) URL with no path."""

    scheme: str
    hostname: str
    netloc: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}"

    def __str__(self) -> str:
        return self.url


def upstream(url: str, what: str) -> Upstream:
    """The URL as an upstream; a path, query or login in it would be silently dropped by a proxy: refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"{what} must be an http(s) URL such as http://127.0.0.1:9000, not {url!r}.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise CommandError(f"{what} names a server only (scheme, host, port): {url!r} has more.")
    return Upstream(parts.scheme, parts.hostname, parts.netloc)


@dataclass(frozen=True)
class Certificate:
    certificate: str
    key: str


DEFAULT_QMS = "http://127.0.0.1:8000"


def given_arguments(**options: object) -> list[str]:
    """The command line that makes this configuration again (written in its header)."""
    return [part for name, value in options.items() if value and not (name == "qms" and value == DEFAULT_QMS)
            for part in (f"--{name.replace('_', '-')}", str(value))]


class Command(BaseCommand):
    help = "Print a proxy configuration that guards a site with the gate: nginx (auth_request), Traefik, Caddy."

    def add_arguments(self, parser):
        parser.add_argument("proxy", choices=sorted(TEMPLATES))
        parser.add_argument("--event", type=int, required=True, help="the event whose routes the site is")
        parser.add_argument("--origin", required=True, help="the protected site's server, e.g. http://127.0.0.1:9000")
        parser.add_argument("--listen", type=int, required=True, help="the port the proxy listens on")
        parser.add_argument("--qms", default=DEFAULT_QMS, help="QMS's server (default %(default)s)")
        parser.add_argument("--server-name", default="", help="the protected host (default: any host)")
        parser.add_argument("--tls-certificate", default="", help="HTTPS: the certificate chain's file")
        parser.add_argument("--tls-key", default="", help="HTTPS: the private key's file")

    def handle(self, *args, proxy: str, event: int, origin: str, listen: int, qms: str, server_name: str,
               tls_certificate: str, tls_key: str, **options):
        found = Event.objects.filter(pk=event).first()
        if found is None:
            raise CommandError(f"No event with id {event}.")
        if not 0 < listen < 65536:
            raise CommandError(f"--listen must be a port (1-65535), not {listen}.")
        if bool(tls_certificate) != bool(tls_key):
            raise CommandError("HTTPS needs both --tls-certificate and --tls-key.")
        context = {
            "event": found,
            "routes": [str(route) for route in found.routes.all()],
            "cookie_name": f"qms_gate_{found.id}",
            "origin": upstream(origin, "--origin"),
            "qms": upstream(qms, "--qms"),
            "listen": listen,
            "server_name": server_name,
            "tls": Certificate(tls_certificate, tls_key) if tls_certificate else None,
            "arguments": shlex.join(given_arguments(
                event=event, origin=origin, listen=listen, qms=qms, server_name=server_name,
                tls_certificate=tls_certificate, tls_key=tls_key)),
        }
        self.stdout.write(render_to_string(TEMPLATES[proxy], context).strip() + "\n", ending="")
