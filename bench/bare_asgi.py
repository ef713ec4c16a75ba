"""The project's ASGI application plus a bare consumer at /ws/bare/, for benchmarks only.

The bare consumer does the least a server of this protocol can: read each frame, look at its
type, answer pings. Ingest throughput is measured as a ratio against it, on the same Daphne.
"""

import json

from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import ProtocolTypeRouter

from replay.asgi import application as project_application
from replay.asgi import router


class BareConsumer(AsyncWebsocketConsumer):
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send(text_data='{"type":"ping"}')


bare = BareConsumer.as_asgi()
project_websocket = router.application_mapping["websocket"]


async def websocket(scope: dict, receive, send) -> None:
    if scope["path"] == "/ws/bare/":
        return await bare(scope, receive, send)
    return await project_websocket(scope, receive, send)


application = ProtocolTypeRouter({"http": project_application, "websocket": websocket})
