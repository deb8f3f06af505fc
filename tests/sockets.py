"""The waiting-room socket in process: a communicator that closes its database connections, and helpers.

Every test module that talks to `/ws/events/<id>/queue/` over ASGI (not over a
real server) uses these, so each gets the communicator that leaves no
PostgreSQL session open behind it.
"""

from __future__ import annotations

from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.test import Client

from qms_project.asgi import application

ORIGIN = (b"origin", b"http://127.0.0.1:8000")


def session_headers(user) -> list[tuple[bytes, bytes]]:
    """The headers of `user`'s logged-in browser: session cookie and the site's origin."""
    client = Client()
    client.force_login(user)
    return [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()), ORIGIN]


class Communicator(WebsocketCommunicator):
    """Channels' communicator, minus its no-op `close_old_connections` while it sends or receives.

    Channels swaps that no-op in for TestCase's single shared connection. These tests commit for real and
    the consumer's database work runs on worker threads: with the no-op, each thread's connection was never
    closed (8 sessions were left at the end, and the test database could not be dropped). Here connections
    close after each call, as in production.
    """

    async def send_input(self, message):
        return await ApplicationCommunicator.send_input(self, message)

    async def receive_output(self, timeout=1):
        return await ApplicationCommunicator.receive_output(self, timeout)


def socket(event_id: int, headers=None, query: str = "", subprotocols=None) -> WebsocketCommunicator:
    """A socket to the event's queue, not yet connected (`query`: the URL's query string, without `?`)."""
    path = f"/ws/events/{event_id}/queue/" + (f"?{query}" if query else "")
    return Communicator(application, path, headers=headers or [], subprotocols=subprotocols)


async def open_socket(event_id: int, headers, **kw) -> tuple[WebsocketCommunicator, dict]:
    """A connected socket and its first frame."""
    comm = socket(event_id, headers, **kw)
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm, await comm.receive_json_from(timeout=5)


async def closed_with(comm: WebsocketCommunicator) -> int:
    """The code the server closes the socket with (the next output must be the close)."""
    output = await comm.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    assert type(output["code"]) is int, output  # the ASGI spec's type: Daphne fails the socket (1011) on others
    return output["code"]
