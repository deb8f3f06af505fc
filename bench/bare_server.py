"""The load harness's baseline: a bare Channels consumer on the same Daphne and channel layer as QMS.

It does what any Channels waiting room must do and nothing more: accept, join
a broadcast group and a per-connection group, say `queued`, echo `ping`, and
forward group messages (closing after `admitted`). No authentication, no
database, no queue store. Served by the same `daphne_server` as `manage.py
serve`, with QMS's CHANNEL_LAYERS (channels_redis, same pool and capacities).

    .venv/bin/python bench/bare_server.py --port 8101   # QMS_REDIS_URL and QMS_KEY_PREFIX from the environment
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

import django  # noqa: E402

django.setup()

from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

BROADCAST_GROUP = "bare.all"


def fan_group(n: int) -> str:
    return f"bare.fan.{n}"


class BareConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.groups_joined = (BROADCAST_GROUP, fan_group(self.scope["url_route"]["kwargs"]["n"]))
        await self.accept()
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.send_json({"type": "queued", "at": round(time.time(), 3)})

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong", "at": round(time.time(), 3)})

    async def bare_progress(self, message):
        await self.send_json(message["message"])

    async def bare_admitted(self, message):
        await self.send_json(message["message"])
        await self.close(4000)

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)


async def ready(scope, receive, send):
    """Plain HTTP 200 on every path, so the harness can wait for the server as it waits for QMS."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = ProtocolTypeRouter({
    "http": ready,
    "websocket": URLRouter([path("ws/bare/<int:n>/", BareConsumer.as_asgi())]),
})


def main() -> None:
    from queues.management.commands.serve import daphne_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    daphne_server(application, "127.0.0.1", args.port, 4096, lambda: print("ready", flush=True), 0).run()


if __name__ == "__main__":
    main()
