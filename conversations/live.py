"""Live updates: tell staff pages watching a conversation what was just committed."""

import hashlib
import logging
from collections import defaultdict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from conversations.converters import conversation_key

logger = logging.getLogger(__name__)


def live_group(conversation_uuid: str) -> str:
    """The channel-layer group of a conversation's watchers (uuids may hold any character)."""
    return "live." + hashlib.sha256(conversation_uuid.encode("utf-8", "replace")).hexdigest()[:40]


def live_path(conversation_uuid: str) -> str:
    """The address of a conversation's live socket (routing.py), for any stored uuid."""
    return f"/ws/live/{conversation_key(conversation_uuid)}/"


def _updates(notifications: list[tuple[str, dict]]) -> dict[str, dict]:
    grouped: dict[str, dict] = defaultdict(lambda: {"rrweb": [], "message": [], "event": []})
    for uuid, note in notifications:
        grouped[uuid][note["kind"]].append(note["id"])
    return {
        uuid: {"type": "live.update", "conversation_uuid": uuid, **ids}
        for uuid, ids in grouped.items()
    }


async def live_notify_async(notifications: list[tuple[str, dict]]) -> None:
    """Send one update per conversation listing the ids of what was stored (committed)."""
    layer = get_channel_layer()
    if layer is None or not notifications:
        return
    for uuid, update in _updates(notifications).items():
        try:
            await layer.group_send(live_group(uuid), update)
        except Exception:  # the data is committed; a missed live update is only a delay
            logger.exception("could not send a live update for %s", uuid)


def live_notify(notifications: list[tuple[str, dict]]) -> None:
    """live_notify_async for synchronous callers."""
    if notifications and get_channel_layer() is not None:
        async_to_sync(live_notify_async)(notifications)
