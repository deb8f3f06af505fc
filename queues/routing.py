from django.urls import path

from .consumers import QueueConsumer

websocket_urlpatterns = [
    path("ws/events/<int:event_id>/queue/", QueueConsumer.as_asgi()),
]
