"""WebSocket routes."""

from django.urls import path

from conversations.consumers import IngestConsumer

websocket_urlpatterns = [
    path("ws/ingest/", IngestConsumer.as_asgi()),
]
