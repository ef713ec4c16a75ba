"""WebSocket consumers: transport only; the journal and the services do the rest."""

import asyncio
import json
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.db.models import Q
from django.utils import timezone

from conversations import conf, permissions, selectors
from conversations.dbthreads import on_thread
from conversations.ingest import journal, quotas
from conversations.ingest.timeline import queue_position_for
from conversations.ingest.worker import embedded_worker_ensure
from conversations.keys import ingest_keys_authenticate
from conversations.live import live_group
from conversations.models import ConversationNote, IngestKey, RejectedFrame
from conversations.protocol import build_ping, dumps

logger = logging.getLogger(__name__)

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


def _authenticate(raw_keys: list[str]) -> dict[str, IngestKey]:
    """The active keys among `raw_keys`, by raw key, each marked used (once a minute at most)."""
    found = ingest_keys_authenticate(raw_keys)
    # Every connection updating one shared row would serialise them: only a key whose
    # last use, as just read, is a minute old or more is written.
    stale = timezone.now() - timezone.timedelta(seconds=60)
    used = [k.pk for k in found.values() if k.last_used_at is None or k.last_used_at < stale]
    if used:
        IngestKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)).filter(
            pk__in=used
        ).update(last_used_at=timezone.now())
    return found


class _KeyLookups:
    """Connections that open at once share one key lookup: one thread hop, one query.

    Fifty sockets opening together used to queue fifty lookups (and fifty health checks) on
    Django's one synchronous thread. A connection's key is looked up by a query that starts
    after it arrived (a lookup already running is not shared), so a key revoked a moment
    before is refused as it always was.
    """

    def __init__(self) -> None:
        self.waiting: dict[str, list[asyncio.Future]] = {}
        self.running: asyncio.Task | None = None

    async def authenticate(self, raw_key: str) -> IngestKey | None:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.waiting.setdefault(raw_key, []).append(future)
        if self.running is None or self.running.done():
            self.running = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, {}
            try:
                found = await database_sync_to_async(_authenticate)(list(batch))
            except Exception as exc:  # each connection fails as its own lookup would have
                for futures in batch.values():
                    for future in futures:
                        if not future.done():
                            future.set_exception(exc)
                continue
            for raw_key, futures in batch.items():
                for future in futures:
                    if not future.done():  # not a connection that went away meanwhile
                        future.set_result(found.get(raw_key))


_key_lookups: dict[asyncio.AbstractEventLoop, _KeyLookups] = {}


async def key_authenticate(raw_key: str) -> IngestKey | None:
    """The active ingest key `raw_key` names, or None, looked up with others arriving now."""
    loop = asyncio.get_running_loop()
    lookups = _key_lookups.get(loop)
    if lookups is None:
        for closed in [other for other in _key_lookups if other.is_closed()]:
            del _key_lookups[closed]
        lookups = _key_lookups[loop] = _KeyLookups()
    return await lookups.authenticate(raw_key)


def _close_reason(reason: object) -> str:
    # A close frame's reason holds at most 123 bytes of UTF-8.
    return str(reason).encode("utf-8")[:123].decode("utf-8", "ignore")


# Each process closes the sockets of keys revoked since they connected, within
# REPLAY_KEY_CHECK_INTERVAL: one query per interval for all its open connections.
_open_by_key: dict[int, set["IngestConsumer"]] = {}
_watchers: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def _revoked_among(key_ids: list[int]) -> list[int]:
    return list(
        IngestKey.objects.filter(pk__in=key_ids, revoked_at__isnull=False).values_list(
            "pk", flat=True
        )
    )


async def _watch_revocations() -> None:
    while _open_by_key:
        await asyncio.sleep(conf.get("REPLAY_KEY_CHECK_INTERVAL"))
        try:
            revoked = await database_sync_to_async(_revoked_among)(list(_open_by_key))
        except Exception:  # the boundary: try again next interval
            logger.exception("could not check ingest keys for revocation")
            continue
        for key_id in revoked:
            for consumer in list(_open_by_key.pop(key_id, ())):
                await consumer.cut_off(CLOSE_UNAUTHORISED, "this ingest key was revoked")


def revocations_watch(consumer: "IngestConsumer") -> None:
    _open_by_key.setdefault(consumer.source.pk, set()).add(consumer)
    loop = asyncio.get_running_loop()
    task = _watchers.get(loop)
    if task is None or task.done():
        _watchers[loop] = loop.create_task(_watch_revocations())


def revocations_forget(consumer: "IngestConsumer") -> None:
    consumers = _open_by_key.get(consumer.source.pk)
    if consumers is not None:
        consumers.discard(consumer)
        if not consumers:
            del _open_by_key[consumer.source.pk]


class _Consumer(AsyncWebsocketConsumer):
    """Channels' consumer, without a visit to Django's synchronous thread for every message.

    Channels calls close_old_connections() on that thread before each message it hands a
    consumer (each frame of each socket, each live update): a thread hop, and with
    CONN_HEALTH_CHECKS a query, per message. These consumers touch the database only through
    database_sync_to_async, which does that itself around each call, or on threads that keep
    their own connection (dbthreads).
    """

    async def __call__(self, scope, receive, send) -> None:
        if get_channel_layer(self.channel_layer_alias) is not None:
            return await super().__call__(scope, receive, send)
        # With nothing but the socket to listen to, each message is taken as it comes.
        # Channels' loop (await_many_dispatch) makes a task and waits on it for every
        # message, two or three turns of the event loop each, while Daphne reads every
        # socket's data on each turn: in a burst, the frames of fifty sockets piled up in
        # memory and reached the journal only once the reading was done.
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass

    async def dispatch(self, message: dict) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class IngestConsumer(_Consumer):
    """Accept frames from an authorised source and append them to the journal in groups.

    A group is appended when a ping (or a check queue position) arrives, when it is full, or
    a moment after its first frame. Groups are appended one after another, so a ping is
    answered only once every frame before it is committed to the journal; workers apply
    them to the archive a moment later. While a group is appended the next one is read.
    """

    # Nothing is ever sent to an ingest socket's channel, yet with a layer each socket would
    # wait in a channel-layer receive for as long as it is open (on Redis the process keeps
    # polling with BZPOPMIN, and a receive that fails closes the socket). No layer is
    # configured under this alias, so get_channel_layer() gives None.
    channel_layer_alias = "none"

    source: IngestKey | None = None
    usage: quotas.KeyUsage | None = None

    async def connect(self) -> None:
        embedded_worker_ensure()
        source = await key_authenticate(_key_from_scope(self.scope))
        await self.accept()
        if source is None:
            await self.close(code=CLOSE_UNAUTHORISED)
            return
        try:
            self.usage = quotas.connection_open(source.pk)
        except quotas.Over as over:
            await self.close(code=CLOSE_TOO_MANY_REJECTED, reason=_close_reason(over))
            return
        self.source = source
        self.rates = quotas.ConnectionRates()
        revocations_watch(self)
        self.buffer: list[tuple] = []
        self.buffer_bytes = 0
        self.last_flush: asyncio.Task | None = None
        self.in_flight: deque[asyncio.Task] = deque()
        self.rejected_at: deque[float] = deque()
        self.timer: asyncio.TimerHandle | None = None
        self.urgent_waiting = False  # a chat frame is buffered behind a group being appended
        self.closing = False

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.source is None or self.closing:
            return
        frame = journal.frame_read(
            text_data, bytes_data, source_id=self.source.pk, received_at=timezone.now()
        )
        try:
            quotas.frame_admit(self.usage, self.rates, frame.size)
        except quotas.Over as over:
            await self.cut_off(CLOSE_TOO_MANY_REJECTED, str(over))
            return
        if frame.row is not None and not frame.rejected:
            refused = quotas.conversation_admit(self.usage, frame.row[0])
            if refused:
                frame = journal.frame_refused(frame, RejectedFrame.Kind.QUOTA, refused)
        if frame.barrier is not None:
            self._flush(reply=(frame.barrier, frame.conversation_uuid))
        else:
            self.buffer.append(frame.row)
            self.buffer_bytes += frame.size
            if frame.rejected:
                self.rejected_at.append(time.monotonic())
            if frame.urgent and self.in_flight:
                # A chat frame skips the group delay, but while a group is being appended
                # it waits for that one: the next group then holds everything that came
                # meanwhile, so a flood of chat frames is appended in groups, not one by one.
                self.urgent_waiting = True
            if (
                (frame.urgent and not self.in_flight)
                or len(self.buffer) >= conf.get("REPLAY_FLUSH_MAX_FRAMES")
                or self.buffer_bytes >= conf.get("REPLAY_FLUSH_MAX_BYTES")
            ):
                self._flush()
            elif self.timer is None:
                delay = conf.get("REPLAY_FLUSH_DELAY")
                self.timer = asyncio.get_running_loop().call_later(delay, self._flush)
        # Back-pressure: stop reading while two groups are already waiting for the database.
        while len(self.in_flight) > 2:
            await asyncio.wait([self.in_flight[0]])

    def _flush(self, reply: tuple[str, str] | None = None) -> asyncio.Task | None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not self.buffer and reply is None:
            return self.last_flush
        rows, self.buffer, self.buffer_bytes = self.buffer, [], 0
        task = asyncio.ensure_future(self._write(self.last_flush, rows, reply))
        self.last_flush = task
        self.in_flight.append(task)
        task.add_done_callback(self._written)
        return task

    def _written(self, task: asyncio.Task) -> None:
        self.in_flight.remove(task)
        if self.urgent_waiting and not self.in_flight and not self.closing:
            self.urgent_waiting = False
            self._flush()

    async def _write(
        self, previous: asyncio.Task | None, rows: list[tuple], reply: tuple[str, str] | None
    ) -> bool:
        if previous is not None and not await previous:
            return False  # an earlier group failed: the client re-sends from there
        try:
            if rows:
                await journal.journal_writer().append(rows)
            if reply is not None and not self.closing:
                await self.send(text_data=dumps(await self._answer(*reply)))
        except Exception:  # the boundary: nothing of this group is known to be committed
            # Close without answering its ping, so the client keeps the frames and sends
            # them again.
            logger.exception("failure while appending frames to the journal; closing with 1011")
            self.closing = True
            await self.close(code=CLOSE_SERVER_ERROR)
            return False
        if not self.closing:
            await self._check_flood()
        return True

    async def _answer(self, barrier: str, conversation_uuid: str) -> dict:
        if barrier == journal.PING:
            return build_ping()
        return await database_sync_to_async(queue_position_for)(conversation_uuid)

    async def _check_flood(self) -> None:
        window = conf.get("REPLAY_REJECT_WINDOW")
        now = time.monotonic()
        while self.rejected_at and self.rejected_at[0] < now - window:
            self.rejected_at.popleft()
        limit = conf.get("REPLAY_REJECT_LIMIT")
        if len(self.rejected_at) >= limit and not self.closing:
            await self.cut_off(
                CLOSE_TOO_MANY_REJECTED,
                f"{len(self.rejected_at)} rejected frames in {window} s "
                f"(REPLAY_REJECT_LIMIT={limit})",
            )

    async def cut_off(self, code: int, reason: str) -> None:
        """Close, keeping what was received before; say why in the close frame."""
        if self.closing:
            return
        logger.warning("closing an ingest connection of %s with %d: %s", self.source, code, reason)
        self._flush()
        self.closing = True
        await self.close(code=code, reason=_close_reason(reason))

    async def disconnect(self, code: int) -> None:
        if self.source is None:
            return
        quotas.connection_closed(self.source.pk)
        revocations_forget(self)
        # Frames already received are kept even though no ping will acknowledge them.
        last = self._flush()
        if last is not None:
            try:
                await last
            except Exception:  # the boundary: log, the frames are for the client to re-send
                logger.exception("failed to append frames of a closed connection")


def _query(scope: dict) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin-1"))


def _after_from_scope(scope: dict) -> int | None:
    """The event_index of the last batch a live page holds, from its `after` query parameter."""
    query = _query(scope)
    try:
        return int((query.get("after") or [""])[0])
    except ValueError:
        return None


# Live updates are read on a thread of their own. The thread Django's sync_to_async shares is
# also the one Channels visits before every message to every socket (to close stale database
# connections): a hundred watchers' reads queued there would hold up each ingest frame.
_LIVE_READS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-read")


def _live_rows(**names) -> dict | None:
    return selectors.live_rows(**names)


_live_rows_read = on_thread(_live_rows, _LIVE_READS)  # no health check before each read


def _note_for(note_id: int, conversation_uuid: str, user) -> dict | None:
    """A note as `user`'s replay page shows it (whether they may delete it), or None."""
    note = ConversationNote.objects.filter(pk=note_id, conversation__uuid=conversation_uuid).first()
    return None if note is None else selectors.note_dict(note, user=user)


def _caught_up(
    conversation_uuid: str, after_event_index: int | None, user, *, notes_only: bool
) -> dict | None:
    """What a page opening its live socket may have missed: batches and transcript after
    `after_event_index` (selectors.live_catch_up), unless it asks for notes alone, and the notes
    (as `user` sees them) and tags as they stand, so a page back from a drop shows them too."""
    if notes_only:
        conversation = selectors.Conversation.objects.filter(uuid=conversation_uuid).first()
        rows = {"conversation_uuid": conversation_uuid}
    else:
        conversation = selectors.conversation_get(uuid=conversation_uuid)  # notes prefetched
        if conversation is not None:
            rows = selectors.live_catch_up(conversation, after_event_index=after_event_index)
    if conversation is None:
        return None
    rows["notes_all"] = selectors.note_list(conversation, user=user)
    rows["tags"] = conversation.tag_list
    return rows


def _no_ids() -> dict[str, list[int]]:
    return {"rrweb": [], "message": [], "event": []}


class LiveConsumer(_Consumer):
    """Push a conversation's newly committed batches, messages and events to a staff page.

    Session-authenticated (the router wraps it in the auth stack); staff with the view
    permission only. The first message is what the page missed: the batches after the one
    named by `?after=` (its last event_index) and the transcript; then each update the ingest
    services announce after commit. An update usually carries its rows, read once by the worker
    for every page watching (live.live_notify_async), and is passed on as it is; one that only
    names ids (too large to carry) is read here: the rows it names and the conversation's
    clock offset, never the whole recording. Either way the rows are committed.
    Notes and tags travel the same way: all of them in the first message, then each change
    as it is committed. A page replaying a closed conversation asks for those alone.
    """

    sender: asyncio.Task | None = None
    notes_only = False

    async def connect(self) -> None:
        self.updates: deque[dict] = deque()
        self.conversation_uuid = self.scope["url_route"]["kwargs"]["uuid"]
        self.group = live_group(self.conversation_uuid)
        if not await database_sync_to_async(permissions.can_view)(self.scope.get("user")):
            await self.close()  # before accept: the handshake is refused with 403
            return
        # A page replaying a closed conversation asks for notes and tags alone (`?notes=1`).
        self.notes_only = "notes" in _query(self.scope)
        # Join before reading what was missed: whatever commits after the read is announced to
        # the group, and what is both read and announced the page shows once.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        try:
            rows = await database_sync_to_async(_caught_up)(
                self.conversation_uuid,
                _after_from_scope(self.scope),
                self.scope.get("user"),
                notes_only=self.notes_only,
            )
        except Exception:  # the boundary: log; the page reconnects and asks again
            logger.exception("could not load what %s missed", self.conversation_uuid)
            await self.close(code=CLOSE_SERVER_ERROR)
            return
        await self._send_rows(rows)

    async def _send_rows(self, rows: dict | None) -> None:
        if rows is None:
            return
        await self.send(text_data=selectors.live_json(rows))

    async def disconnect(self, code: int) -> None:
        if self.sender is not None:
            self.sender.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        pass  # watchers only listen

    async def live_annotation(self, message: dict) -> None:
        """A note written or deleted, or the tags changed, by anyone: pass it on to the page."""
        update: dict = {}
        if "tags" in message:
            update["tags"] = message["tags"]
        if "deleted_note_id" in message:
            update["notes_deleted"] = [message["deleted_note_id"]]
        if "note_id" in message:
            try:
                note = await database_sync_to_async(_note_for)(
                    message["note_id"], self.conversation_uuid, self.scope.get("user")
                )
            except Exception:  # the boundary: the note is stored; the page shows it on reload
                logger.exception("could not read note %s for a live page", message["note_id"])
                return
            if note is None:  # deleted meanwhile: its own message follows
                return
            update["notes"] = [note]
        if update:
            await self.send(text_data=json.dumps(update, separators=(",", ":")))

    async def live_update(self, message: dict) -> None:
        """Pass on the rows the update carries, or read the ones it names; in order, one read
        at a time, each with whatever came in while the one before read."""
        if self.notes_only:
            return
        self.updates.append(message)
        if self.sender is None or self.sender.done():
            self.sender = asyncio.ensure_future(self._send_pending())

    async def _send_pending(self) -> None:
        # While a read waits for the database, later updates join the next one: a busy server
        # reads once for several updates instead of falling further behind with each.
        while self.updates:
            if "text" in self.updates[0]:  # read once for every page watching: pass it on
                await self.send(text_data=self.updates.popleft()["text"])
                continue
            ids = _no_ids()
            while self.updates and "text" not in self.updates[0]:
                update = self.updates.popleft()
                for kind, named in ids.items():
                    named += update.get(kind, [])
            try:
                rows = await _live_rows_read(
                    conversation_uuid=self.conversation_uuid,
                    rrweb_ids=ids["rrweb"],
                    message_ids=ids["message"],
                    event_ids=ids["event"],
                )
            except Exception:  # the boundary: log and close; the page reconnects and catches up
                logger.exception("could not load live rows for %s", self.conversation_uuid)
                await self.close(code=CLOSE_SERVER_ERROR)
                return
            await self._send_rows(rows)
