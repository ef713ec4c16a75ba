"""WebSocket routes."""

from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from conversations.consumers import IngestConsumer, LiveConsumer

websocket_urlpatterns = [
    path("ws/ingest/", IngestConsumer.as_asgi()),
    # Staff pages: same-origin browsers with a session only.
    path(
        "ws/live/<conversation:uuid>/",
        AllowedHostsOriginValidator(AuthMiddlewareStack(LiveConsumer.as_asgi())),
    ),
]
