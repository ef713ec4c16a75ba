"""ASGI entry point: static files, then HTTP through Django; WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replay.settings")
# Build the Django application first: it sets up the app registry the consumers import from.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from conversations.ingest.worker import embedded_worker_ensure  # noqa: E402
from conversations.routing import websocket_urlpatterns  # noqa: E402
from replay.static import StaticFiles  # noqa: E402

router = ProtocolTypeRouter(
    {
        # Static files on the event loop (WhiteNoise's table); anything else through Django.
        "http": StaticFiles(django_application),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)


async def application(scope, receive, send):
    """The router, with the embedded ingest worker started on the server's event loop.

    Started by the first request or socket rather than at import, since the loop runs
    only then; a restarted server thus drains what its journal holds on first contact.
    """
    embedded_worker_ensure()
    return await router(scope, receive, send)
