"""Live updates: tell staff pages watching a conversation what was just committed."""

import asyncio
import hashlib
import logging
from collections import defaultdict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

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
    updates = _updates(notifications)
    # Side by side: on Redis each send is a few round trips, and a worker starts its next
    # round only once this returns.
    sent = await asyncio.gather(
        *(layer.group_send(live_group(uuid), update) for uuid, update in updates.items()),
        return_exceptions=True,
    )
    for uuid, outcome in zip(updates, sent, strict=True):
        if isinstance(outcome, Exception):  # committed: a missed live update is only a delay
            logger.error("could not send a live update for %s", uuid, exc_info=outcome)


def live_annotations_notify(
    conversation_uuid: str,
    *,
    note_id: int | None = None,
    deleted_note_id: int | None = None,
    tags: list[str] | None = None,
) -> None:
    """Tell the conversation's open replay pages that a note or its tags changed, once the
    change is committed: each page shows another's note without a reload."""
    message = {"type": "live.annotation"}
    if note_id is not None:
        message["note_id"] = note_id
    if deleted_note_id is not None:
        message["deleted_note_id"] = deleted_note_id
    if tags is not None:
        message["tags"] = tags

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            async_to_sync(layer.group_send)(live_group(conversation_uuid), message)
        except Exception:  # stored: others see it on their next load
            logger.exception("could not announce a note or tag change on %s", conversation_uuid)

    transaction.on_commit(send)


def live_notify(notifications: list[tuple[str, dict]]) -> None:
    """live_notify_async for synchronous callers."""
    if notifications and get_channel_layer() is not None:
        async_to_sync(live_notify_async)(notifications)
