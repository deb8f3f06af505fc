"""Django over ASGI with one thread hop per HTTP request: what Daphne runs for every page and API call.

Django's own `ASGIHandler` loads the middleware in async mode: each hook of a sync middleware (all of
QMS's: Django's, WhiteNoise's, DRF's views) goes through `sync_to_async` in a thread made for the request,
34 hops and 2 new threads per request with QMS's stack, 3-8 ms of CPU each (docs/PERFORMANCE.md, "Storm
capacity: HTTP path"). This handler does what a WSGI server does instead: the middleware loaded sync, and
the request's signals, middleware, view and rendering run in one call on a pooled thread; only reading the
body and sending the answer stay on the event loop. The request_started and request_finished signals (which
return the database connection to the pool) run in that same thread, where the connection was opened.
"""

from __future__ import annotations

import django
from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpResponseBase
from django.urls import set_script_prefix


class OneHopASGIHandler(ASGIHandler):
    """Django's ASGI handler with the sync middleware chain run whole in one pooled thread per request."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # No ThreadSensitiveContext (a new thread per request): nothing here runs thread-sensitive.
        await self.handle(scope, receive, send)

    async def handle(self, scope, receive, send) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        # A sync view cannot be cancelled, so there is no disconnect listener: a fan who hangs up only
        # makes the answer's send fail, as under WSGI.
        response, closed = await sync_to_async(self.respond, thread_sensitive=False)(scope, body_file)
        try:
            await self.send_response(response, send)
        finally:
            if not closed:  # an async stream (QMS has none) is closed once sent, as Django does
                await sync_to_async(response.close, thread_sensitive=False)()
            body_file.close()

    def respond(self, scope, body_file) -> tuple[HttpResponseBase, bool]:
        """The whole sync part of a request, in the calling thread: the answer, and whether it is closed."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if response.streaming and response.is_async:
            return response, False
        if response.streaming:
            # A file (WhiteNoise's static files): read here, so the loop sends it without a hop per chunk.
            response.streaming_content = _once(b"".join(response.streaming_content))
        else:
            response.content  # noqa: B018 - rendered here, in the thread, before request_finished
        response.close()
        return response, True


async def _once(content: bytes):
    yield content


def get_asgi_application() -> OneHopASGIHandler:
    """`django.core.asgi.get_asgi_application` with the one-hop handler."""
    django.setup(set_prefix=False)
    return OneHopASGIHandler()
