"""`manage.py serve`: Daphne on HOST:PORT, with the embedded admission loop in the same event loop.

Daphne sends no ASGI lifespan events, so the loop is started here, from the
command that starts the server.
"""

from __future__ import annotations

import asyncio
import logging
from pprint import pformat

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


class _PformatWhenRendered:
    """`pprint.pformat(obj)`, done only if a log line actually renders it."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs

    def __format__(self, spec: str) -> str:
        return format(pformat(*self.args, **self.kwargs), spec)

    def __str__(self) -> str:
        return pformat(*self.args, **self.kwargs)

    __repr__ = __str__


def defer_autobahn_debug_formatting() -> None:
    """Stop autobahn from pretty-printing its whole configuration on every connection.

    `WebSocketProtocol._connectionMade` calls `self.log.debug("...", attrs=pformat(config))`: the
    argument is built before txaio's logger drops the debug line, ~1.3 ms of CPU per socket (10% of
    a Daphne's samples in a storm, the bare Channels consumer's too). Its module's `pformat` becomes
    one that formats only when rendered; `Timings.__str__`, the one caller that needs a real string
    back, gets the real `pformat`.
    """
    from autobahn.websocket import protocol

    if protocol.pformat is not _PformatWhenRendered:
        protocol.pformat = _PformatWhenRendered
        protocol.Timings.__str__ = lambda self: pformat(self._timings)


def daphne_server(application, host: str, port: int, backlog: int, on_ready, verbosity: int = 1):
    """Daphne as QMS runs it (also serves the load harness's bare baseline, bench/bare_server.py)."""
    from daphne.server import Server  # installs the asyncio Twisted reactor

    defer_autobahn_debug_formatting()

    return Server(
        application,
        endpoints=[f"tcp:port={port}:interface={host}:backlog={backlog}"],
        ready_callable=on_ready,
        # An on-sale opens thousands of sockets at once: give handshakes time to finish.
        websocket_handshake_timeout=settings.QMS_WS_HANDSHAKE_TIMEOUT,
        websocket_connect_timeout=settings.QMS_WS_HANDSHAKE_TIMEOUT,
        verbosity=verbosity,
    )


class Command(BaseCommand):
    help = "Serve QMS with Daphne; runs the admission tick in-process unless QMS_EMBEDDED_TICK is off."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.QMS_HOST)
        parser.add_argument("--port", type=int, default=settings.QMS_PORT)
        parser.add_argument("--no-tick", action="store_true", help="Do not run the embedded admission loop.")
        parser.add_argument("--backlog", type=int, default=4096,
                            help="Listen backlog: an on-sale opens thousands of sockets within seconds.")

    def handle(self, *args, host: str, port: int, no_tick: bool, backlog: int, **options):
        from qms_project.asgi import application
        from queues import tokens
        from queues.realtime.loop import run_admission_loop, run_draw_record_loop, run_webhook_loop

        tokens.keyring()  # load (or generate and announce) the signing key before serving

        run_tick = settings.QMS_EMBEDDED_TICK and not no_tick
        tasks = []

        def on_ready() -> None:
            if run_tick:
                tasks.append(asyncio.get_event_loop().create_task(run_admission_loop()))
                tasks.append(asyncio.get_event_loop().create_task(run_webhook_loop()))  # no Celery here either
                tasks.append(asyncio.get_event_loop().create_task(run_draw_record_loop()))
            self.stdout.write(f"QMS serving on http://{host}:{port}/ (admission tick: "
                              f"{'in-process' if run_tick else 'Celery beat'})", ending="\n")
            self.stdout.flush()

        daphne_server(application, host, port, backlog, on_ready, options.get("verbosity", 1)).run()
