"""Live updates: tell staff pages watching a conversation what was just committed."""

import asyncio
import hashlib
import logging
from collections import defaultdict

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from conversations import conf, selectors
from conversations.converters import conversation_key

logger = logging.getLogger(__name__)


def live_group(conversation_uuid: str) -> str:
    """The channel-layer group of a conversation's watchers (uuids may hold any character)."""
    return "live." + hashlib.sha256(conversation_uuid.encode("utf-8", "replace")).hexdigest()[:40]


def live_path(conversation_uuid: str) -> str:
    """The address of a conversation's live socket (routing.py), for any stored uuid."""
    return f"/ws/live/{conversation_key(conversation_uuid)}/"


_KINDS = ("rrweb", "message", "event")


def _updates(notifications: list[tuple[str, dict]]) -> dict[str, dict]:
    grouped: dict[str, dict] = defaultdict(lambda: {kind: [] for kind in _KINDS})
    for uuid, note in notifications:
        grouped[uuid][note["kind"]].append(note["id"])
    return {
        uuid: {"type": "live.update", "conversation_uuid": uuid, **ids}
        for uuid, ids in grouped.items()
    }


async def groups_watched(layer, groups: list[str]) -> set[str]:
    """Which of `groups` have a page in them (replay/layers.py); all of them when the layer
    cannot say."""
    ask = getattr(layer, "groups_watched", None)
    return set(groups) if ask is None else await ask(groups)


def live_texts(updates: dict[str, dict], known_events: dict[int, bytes]) -> dict[str, str]:
    """What each watched conversation's pages are to be sent, read once for them all: the
    live message as text, for the conversations whose message is not too large to pass
    through the channel layer (those pages read the rows themselves). `known_events`: the
    events of batches the caller has just stored, by id, which need not be read back."""
    wanted = {uuid: {kind: update[kind] for kind in _KINDS} for uuid, update in updates.items()}
    limit = conf.get("REPLAY_LIVE_PUSH_MAX_BYTES")
    texts = {}
    for uuid, rows in selectors.live_rows_many(wanted, known_events=known_events).items():
        text = selectors.live_json(rows)
        if len(text) <= limit:
            texts[uuid] = text
    return texts


async def live_notify_async(notifications: list[tuple[str, dict]], *, read=None) -> None:
    """Tell the pages watching each conversation what was stored (committed).

    Conversations nobody watches are skipped. With `read` (an awaitable runner of synchronous
    code on a thread with a database connection, such as the worker's own), the new rows are
    read here once per conversation and sent as they are, so each page only passes them on;
    otherwise, or for a message too large, each page reads the rows its update names.
    """
    layer = get_channel_layer()
    if layer is None or not notifications:
        return
    updates = _updates(notifications)
    try:
        watched = await groups_watched(layer, [live_group(uuid) for uuid in updates])
    except Exception:  # then try them all: a page that misses an update shows it only on reload
        logger.exception("could not tell which conversations are watched")
        watched = {live_group(uuid) for uuid in updates}
    updates = {uuid: update for uuid, update in updates.items() if live_group(uuid) in watched}
    if read is not None and updates:
        try:
            known = {
                note["id"]: note["events_json"]
                for _, note in notifications
                if note["kind"] == "rrweb" and "events_json" in note
            }
            texts = await read(live_texts, updates, known)
        except Exception:  # each page reads its rows itself
            logger.exception("could not read the live rows of %d conversation(s)", len(updates))
            texts = {}
        for uuid, text in texts.items():
            updates[uuid]["text"] = text
    send_many = getattr(layer, "group_send_many", None)
    if send_many is not None:  # Redis: a few round trips for them all
        try:
            await send_many({live_group(uuid): update for uuid, update in updates.items()})
        except Exception:  # committed: a missed live update is only a delay
            logger.exception("could not send the live updates of %d conversation(s)", len(updates))
        return
    # Side by side: a worker starts its next round only once this returns.
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


async def _read_here(function, *args):
    return await sync_to_async(function)(*args)  # on the synchronous caller's own thread


def live_notify(notifications: list[tuple[str, dict]]) -> None:
    """live_notify_async for synchronous callers."""
    if notifications and get_channel_layer() is not None:
        async_to_sync(live_notify_async)(notifications, read=_read_here)
