"""The journal: every frame is durably appended here before its ping is answered.

The ingest socket reads only what it must from a frame (is it a ping or a check queue
position, and which conversation is it for) and appends it, as bytes, to the journal table
in group commits: one writer per process takes whatever every connection has queued and
inserts it with one statement in one transaction. A ping is answered once every frame sent
before it on that connection is committed there. Workers (worker.py) apply journal entries
to the archive afterwards, per conversation and in journal order, and delete them.

An append touches nothing but the journal table, and nothing in a frame can make it fail:
the frame is stored as bytes and the conversation key is sanitised, so one sender's frame
can never roll back another connection's group.
"""

import asyncio
import hashlib
import json
import re
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from conversations import conf
from conversations.dbthreads import checked
from conversations.ingest.sql import blob_cursor
from conversations.models import JournalEntry, RejectedFrame
from conversations.protocol import ProtocolError, parse_frame

PING = "ping"
CHECK_QUEUE_POSITION = "check queue position"
BARRIERS = (PING, CHECK_QUEUE_POSITION)

# Workers wait on this PostgreSQL channel between rounds; each append notifies it.
NOTIFY_CHANNEL = "replay_journal"

# The key entries are claimed by: a conversation uuid as real clients send them. Anything
# else (markup, slashes, control characters, 10 KB strings) shares the key "", and the
# worker rejects those frames with the protocol's reason.
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,99}")
_UUID_IN_TEXT = re.compile(r'"conversation_uuid"\s*:\s*"([^"\\]{1,100})"')
# Frames up to this size are parsed whole (microseconds); larger ones are only scanned.
_SMALL_FRAME = 4096


def conversation_key(uuid: object) -> str:
    """The journal key for a conversation uuid: the uuid itself when it is safe, else ""."""
    if isinstance(uuid, str) and _SAFE_KEY.fullmatch(uuid):
        return uuid
    return ""


@dataclass(slots=True)
class Frame:
    """What the socket read of one frame: a barrier to answer, or an entry to append."""

    size: int
    barrier: str | None = None  # PING or CHECK_QUEUE_POSITION
    conversation_uuid: str = ""
    row: tuple | None = None  # the journal row, for every frame that is not a barrier
    rejected: bool = False  # the socket already knows the frame is to be kept aside
    # A chat frame (a message, typing, a participant) staff watch live: appended at once
    # rather than after the group's delay. rrweb batches, the bulk, wait to be grouped.
    urgent: bool = False


def _row(
    *,
    key: str,
    source_id: int | None,
    received_at: datetime,
    data: bytes,
    binary: bool,
    size: int,
    reject_kind: str = "",
    reject_reason: str = "",
    sha256: str = "",
) -> tuple:
    return (key, source_id, received_at, data, binary, size, reject_kind, reject_reason, sha256)


def frame_read(
    text: str | None, data: bytes | None, *, source_id: int | None, received_at: datetime
) -> Frame:
    """Read what the socket needs from a frame; build its journal row unless it is a barrier."""
    if text is None:
        payload = data or b""
        keep = conf.get("REPLAY_REJECTED_KEEP_BYTES")
        row = _row(
            key="",
            source_id=source_id,
            received_at=received_at,
            data=payload[:keep],
            binary=True,
            size=len(payload),
            reject_kind=RejectedFrame.Kind.BINARY,
            reject_reason="binary frames are not part of the protocol: "
            "send each envelope as JSON text",
            sha256=hashlib.sha256(payload).hexdigest() if len(payload) > keep else "",
        )
        return Frame(size=len(payload), row=row, rejected=True)
    # Frames are mostly ASCII (JSON escapes the rest): then the length is the byte count,
    # known without copying the frame to encode it.
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    max_bytes = conf.get("REPLAY_MAX_FRAME_BYTES")
    if size > max_bytes:
        keep = conf.get("REPLAY_REJECTED_KEEP_BYTES")
        whole = text.encode("utf-8", "surrogatepass")
        match = _UUID_IN_TEXT.search(text, 0, 4096)
        row = _row(
            key=conversation_key(match.group(1) if match else None),
            source_id=source_id,
            received_at=received_at,
            data=whole[:keep],
            binary=False,
            size=size,
            reject_kind=RejectedFrame.Kind.TOO_LARGE,
            reject_reason=f"frame is {size} bytes, over the limit of {max_bytes} bytes",
            sha256=hashlib.sha256(whole).hexdigest() if size > keep else "",
        )
        return Frame(size=size, row=row, rejected=True)
    if size <= _SMALL_FRAME or '"ping"' in text or '"check queue position"' in text:
        # Small frames are parsed whole (microseconds); so is a larger one that may be a
        # barrier with a large field, which is rare (inside rrweb data, the quotes of
        # "ping" would be escaped).
        return _read_parsed(text, size, source_id=source_id, received_at=received_at)
    reject_reason = ""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        reject_reason = "not valid JSON: a frame must be one JSON object"
    match = _UUID_IN_TEXT.search(text)
    return _data_frame(
        text,
        size,
        uuid=match.group(1) if match else None,
        reject_reason=reject_reason,
        source_id=source_id,
        received_at=received_at,
    )


def _read_parsed(text: str, size: int, *, source_id: int | None, received_at: datetime) -> Frame:
    reject_reason = ""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        value, reject_reason = None, f"not valid JSON: {exc}"
    if value is not None and not isinstance(value, dict):
        reject_reason = f"the frame must be a JSON object, not {type(value).__name__}"
    uuid = value.get("conversation_uuid") if isinstance(value, dict) else None
    if isinstance(value, dict) and value.get("type") in BARRIERS:
        try:
            envelope = parse_frame(text)
        except ProtocolError:
            envelope = None  # the worker rejects it with the protocol's reason
        if envelope is not None and envelope.type in BARRIERS:
            return Frame(size=size, barrier=envelope.type, conversation_uuid=uuid or "")
    frame = _data_frame(
        text,
        size,
        uuid=uuid,
        reject_reason=reject_reason,
        source_id=source_id,
        received_at=received_at,
    )
    frame.urgent = isinstance(value, dict) and value.get("event_type") != "rrweb"
    return frame


def _data_frame(
    text: str,
    size: int,
    *,
    uuid: object,
    reject_reason: str,
    source_id: int | None,
    received_at: datetime,
) -> Frame:
    row = _row(
        key=conversation_key(uuid),
        source_id=source_id,
        received_at=received_at,
        data=text.encode("utf-8", "surrogatepass"),
        binary=False,
        size=size,
        reject_kind=RejectedFrame.Kind.INVALID if reject_reason else "",
        reject_reason=reject_reason,
    )
    return Frame(size=size, row=row, rejected=bool(reject_reason))


# The journal row's columns, in the order rows are built (_row) and read back (worker.py).
COLUMNS = (
    "conversation_key",
    "source_id",
    "received_at",
    "data",
    "binary",
    "size",
    "reject_kind",
    "reject_reason",
    "sha256",
)


def frame_refused(frame: Frame, kind: str, reason: str) -> Frame:
    """The frame, to be kept aside by the worker with `reason` instead of applied."""
    key, source_id, received_at, data, binary, size, _, _, sha256 = frame.row
    row = (key, source_id, received_at, data, binary, size, kind, reason, sha256)
    return Frame(size=frame.size, row=row, rejected=True)


# Each journal column's PostgreSQL type, for COPY's binary format (a column added to
# COLUMNS without its type here fails at the first append, in every PostgreSQL test).
_COPY_TYPES = {
    "conversation_key": "text",
    "source_id": "int8",
    "received_at": "timestamptz",
    "data": "bytea",
    "binary": "bool",
    "size": "int8",
    "reject_kind": "text",
    "reject_reason": "text",
    "sha256": "text",
}


def journal_append(rows: list[tuple]) -> None:
    """Append rows to the journal in one transaction; raise DatabaseError if that failed."""
    if not rows:
        return
    adapt = connection.ops.adapt_datetimefield_value
    params = [(k, s, adapt(at), d, b, n, rk, rr, h) for k, s, at, d, b, n, rk, rr, h in rows]
    quote = connection.ops.quote_name
    into = "{} ({})".format(
        quote(JournalEntry._meta.db_table), ", ".join(quote(column) for column in COLUMNS)
    )
    with transaction.atomic(), blob_cursor() as cursor:
        if connection.vendor != "postgresql":
            marks = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(f"INSERT INTO {into} VALUES ({marks})", params)
            return
        # COPY, not an INSERT per row: executemany sends each row as a statement of its own
        # and reads each one's result in Python, with the GIL the sockets' event loop needs.
        # Side by side, COPY cut the time to acknowledge a 50-connection burst by a third.
        with cursor.copy(f"COPY {into} FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types([_COPY_TYPES[column] for column in COLUMNS])
            for row in params:
                copy.write_row(row)
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


# The journal writer has a thread (and so a database connection) of its own: on the thread
# Django's sync_to_async shares, every frame's dispatch would queue behind the commit. No
# health check before each append (see dbthreads): an append that meets a lost connection
# runs once more on a new one, and only if that fails too do its connections close with 1011.
_APPEND_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-append")

journal_append_checked = checked(journal_append)


@dataclass(slots=True)
class _Submission:
    rows: list[tuple]
    future: asyncio.Future


class JournalWriter:
    """Group commit for one event loop: append() returns once the rows are committed.

    Each commit waits for the disk; one transaction per connection's group would let fifty
    connections each wait their turn. The append thread takes whatever groups are queued,
    from every connection, appends them in one transaction, and goes straight on to the
    next. It does not wait for the event loop between commits: while Daphne reads a burst,
    a turn of the loop lasts tens of milliseconds, and commits chained through the loop
    left the journal nearly empty until the burst was read (workers idle meanwhile).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.lock = threading.Lock()
        self.queue: deque[_Submission] = deque()
        self.draining = False  # the append thread is taking from the queue
        self.appended: list[Callable[[], None]] = []  # told after each commit (workers)

    async def append(self, rows: list[tuple]) -> None:
        """Append rows (from one connection, in order); raise DatabaseError if that failed."""
        future = self.loop.create_future()
        with self.lock:
            self.queue.append(_Submission(rows, future))
            start, self.draining = not self.draining, True
        if start:
            _APPEND_THREAD.submit(self._drain)
        await future

    def _take(self, limit: int) -> list[_Submission]:
        with self.lock:
            taken: list[_Submission] = []
            count = 0
            while self.queue and (not taken or count + len(self.queue[0].rows) <= limit):
                taken.append(self.queue.popleft())
                count += len(taken[-1].rows)
            if not taken:
                self.draining = False
            return taken

    def _drain(self) -> None:
        """On the append thread: one transaction after another until the queue is empty."""
        taken: list[_Submission] = []
        try:
            while taken := self._take(conf.get("REPLAY_FLUSH_MAX_FRAMES") * 5):
                try:
                    journal_append_checked([row for s in taken for row in s.rows])
                except Exception as exc:  # every connection in this transaction hears of it
                    self._tell(taken, exc)
                else:
                    self._tell(taken, None)
                taken = []
        except BaseException as exc:  # not the database: let no connection wait forever
            with self.lock:
                taken += list(self.queue)
                self.queue.clear()
                self.draining = False
            self._tell(taken, exc)
            raise

    def _tell(self, taken: list[_Submission], error: BaseException | None) -> None:
        try:
            self.loop.call_soon_threadsafe(self._settle, taken, error)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _settle(self, taken: list[_Submission], error: BaseException | None) -> None:
        if error is None:
            for listener in self.appended:
                listener()
        for submission in taken:
            if submission.future.done():
                continue  # its connection went away meanwhile
            if error is None:
                submission.future.set_result(None)
            else:
                submission.future.set_exception(error)


_writers: dict[asyncio.AbstractEventLoop, JournalWriter] = {}


def journal_writer() -> JournalWriter:
    """The journal writer of the running event loop."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        for stale in [other for other in _writers if other.is_closed()]:
            del _writers[stale]
        writer = _writers[loop] = JournalWriter(loop)
    return writer
