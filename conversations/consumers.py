"""WebSocket consumers: transport only; parsing lives in protocol, storing in ingest."""

import asyncio
import json
import logging
import time
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from conversations import conf, ingest, permissions, selectors
from conversations.keys import ingest_key_authenticate
from conversations.live import live_group
from conversations.protocol import ConversationEventRRWeb, dumps
from conversations.writer import group_writer

logger = logging.getLogger(__name__)


def _opens_parts(item: ingest.Item) -> bool:
    """Whether `item` is a part of an rrweb batch whose later parts are still to come."""
    payload = item.envelope.payload if item.envelope is not None else None
    return isinstance(payload, ConversationEventRRWeb) and (
        payload.data_part < payload.data_total_parts
    )


CLOSE_UNAUTHORISED = 4401
CLOSE_TOO_MANY_REJECTED = 4429
CLOSE_SERVER_ERROR = 1011


def _key_from_scope(scope: dict) -> str:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return (query.get("key") or [""])[0]


class IngestConsumer(AsyncWebsocketConsumer):
    """Accept frames from an authorised source and store them in groups.

    Frames are buffered and written in one transaction per group; a group is written when a
    ping (or a check queue position) arrives, when it is full, or a moment after its first
    frame. Groups are written one after another, so a ping is answered only once every frame
    before it is committed. While a group is written the next one is already being read.
    """

    async def connect(self) -> None:
        self.source = await database_sync_to_async(ingest_key_authenticate)(
            _key_from_scope(self.scope)
        )
        await self.accept()
        if self.source is None:
            await self.close(code=CLOSE_UNAUTHORISED)
            return
        self.buffer: list[ingest.Item] = []
        self.buffer_bytes = 0
        self.last_flush: asyncio.Task | None = None
        self.in_flight: deque[asyncio.Task] = deque()
        self.rejected_at: deque[float] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.timer_delay = 0.0
        self.closing = False

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.source is None or self.closing:
            return
        if text_data is not None:
            item = ingest.item_from_text(text_data)
        else:
            item = ingest.item_from_binary(bytes_data or b"")
        self.buffer.append(item)
        self.buffer_bytes += item.size
        envelope = item.envelope
        urgent = envelope is not None and envelope.type in ("ping", "check queue position")
        if (
            urgent
            or len(self.buffer) >= conf.get("REPLAY_FLUSH_MAX_FRAMES")
            or self.buffer_bytes >= conf.get("REPLAY_FLUSH_MAX_BYTES")
        ):
            self._flush()
        else:
            self._arm_timer(waiting_for_parts=_opens_parts(item))
        # Back-pressure: stop reading while two groups are already waiting for the database.
        while len(self.in_flight) > 2:
            await asyncio.wait([self.in_flight[0]])

    def _arm_timer(self, *, waiting_for_parts: bool) -> None:
        # A group cut between the parts of a batch stores them as pending parts and joins
        # them later, several times the work of joining them in memory: while the newest
        # frame is a part with more to come, wait a little longer for the rest.
        delay = conf.get("REPLAY_FLUSH_DELAY") * (10 if waiting_for_parts else 1)
        if self.timer is not None:
            if self.timer_delay == delay:
                return  # keep counting from the group's first frame
            self.timer.cancel()
        self.timer_delay = delay
        self.timer = asyncio.get_running_loop().call_later(delay, self._flush)

    def _flush(self) -> asyncio.Task | None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.buffer:
            return self.last_flush
        items, self.buffer, self.buffer_bytes = self.buffer, [], 0
        task = asyncio.ensure_future(self._write(self.last_flush, items))
        self.last_flush = task
        self.in_flight.append(task)
        task.add_done_callback(self.in_flight.remove)
        return task

    async def _write(self, previous: asyncio.Task | None, items: list[ingest.Item]) -> bool:
        if previous is not None and not await previous:
            return False
        if self.closing:
            return False
        try:
            outcomes = await group_writer().submit(items, source=self.source)
        except Exception:  # the boundary: nothing of this group is committed
            # Close without answering its ping, so the client keeps the frames and sends
            # them again.
            logger.exception("failure while storing frames; closing with 1011")
            self.closing = True
            await self.close(code=CLOSE_SERVER_ERROR)
            return False
        for outcome in outcomes:
            if outcome.reply is not None:
                await self.send(text_data=dumps(outcome.reply))
            if outcome.status == ingest.REJECTED:
                self.rejected_at.append(time.monotonic())
        await self._check_flood()
        return True

    async def _check_flood(self) -> None:
        window = conf.get("REPLAY_REJECT_WINDOW")
        now = time.monotonic()
        while self.rejected_at and self.rejected_at[0] < now - window:
            self.rejected_at.popleft()
        limit = conf.get("REPLAY_REJECT_LIMIT")
        if len(self.rejected_at) >= limit and not self.closing:
            logger.warning(
                "source %s sent %d rejected frames in %ss; cutting it off",
                self.source,
                len(self.rejected_at),
                window,
            )
            self.closing = True
            await self.close(code=CLOSE_TOO_MANY_REJECTED)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "source", None) is None:
            return
        # Frames already received are stored even though no ping will acknowledge them.
        last = self._flush()
        if last is not None:
            try:
                await last
            except Exception:  # the boundary: log, the frames are for the client to re-send
                logger.exception("failed to store frames of a closed connection")


class LiveConsumer(AsyncWebsocketConsumer):
    """Push a conversation's newly committed batches, messages and events to a staff page.

    Session-authenticated (the router wraps it in the auth stack); staff with the view
    permission only. The ingest services announce ids after commit, so rows are always there.
    """

    async def connect(self) -> None:
        self.conversation_uuid = self.scope["url_route"]["kwargs"]["uuid"]
        self.group = live_group(self.conversation_uuid)
        if not await database_sync_to_async(permissions.can_view)(self.scope.get("user")):
            await self.close()  # before accept: the handshake is refused with 403
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # watchers only listen

    async def live_update(self, message: dict) -> None:
        try:
            rows = await database_sync_to_async(selectors.live_rows)(
                conversation_uuid=self.conversation_uuid,
                rrweb_ids=message.get("rrweb", []),
                message_ids=message.get("message", []),
                event_ids=message.get("event", []),
            )
        except Exception:  # the boundary: log; the page catches up on its next reload
            logger.exception("could not load live rows for %s", self.conversation_uuid)
            return
        if rows is not None:
            await self.send(text_data=json.dumps(rows, separators=(",", ":")))
