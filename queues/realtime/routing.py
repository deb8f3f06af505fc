"""WebSocket URL routes (qms_project/asgi.py)."""

from django.urls import path

from .consumer import QueueConsumer

websocket_urlpatterns = [
    path("ws/events/<int:event_id>/queue/", QueueConsumer.as_asgi()),
]
