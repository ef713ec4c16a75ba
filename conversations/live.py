"""Live updates: tell staff pages watching a conversation what was just committed."""

import hashlib
import logging
from collections import defaultdict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def live_group(conversation_uuid: str) -> str:
    """The channel-layer group of a conversation's watchers (uuids may hold any character)."""
    return "live." + hashlib.sha256(conversation_uuid.encode("utf-8", "replace")).hexdigest()[:40]


def live_notify(notifications: list[tuple[str, dict]]) -> None:
    """Send one update per conversation listing the ids of what was stored; after commit only."""
    layer = get_channel_layer()
    if layer is None or not notifications:
        return
    grouped: dict[str, dict[str, list[int]]] = defaultdict(
        lambda: {"rrweb": [], "message": [], "event": []}
    )
    for uuid, note in notifications:
        grouped[uuid][note["kind"]].append(note["id"])
    for uuid, ids in grouped.items():
        try:
            async_to_sync(layer.group_send)(
                live_group(uuid), {"type": "live.update", "conversation_uuid": uuid, **ids}
            )
        except Exception:  # the data is committed; a missed live update is only a delay
            logger.exception("could not send a live update for %s", uuid)
