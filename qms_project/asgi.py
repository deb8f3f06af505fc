"""ASGI entry point: Django for HTTP, the queue consumer for WebSockets (session or JWT auth)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qms_project.settings")

from qms_project.http import get_asgi_application  # noqa: E402 - Django's handler, one thread hop per request

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from queues.realtime.auth import SessionOrJwtAuthMiddlewareStack  # noqa: E402
from queues.realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_asgi_app,
    "websocket": SessionOrJwtAuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
})
