"""Group commit: frames from every ingest connection of a process share transactions.

Each commit waits for the disk (fsync), tens of milliseconds on some machines. One
transaction per connection's group would let fifty connections each wait their turn; here a
single writer per event loop takes whatever groups are queued, from every connection, and
stores them in one transaction, each frame still in its own savepoint.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from conversations import conf, ingest
from conversations.live import live_notify_async
from conversations.models import IngestKey
from conversations.packing import recordings_pack

logger = logging.getLogger(__name__)


@dataclass
class _Submission:
    items: list[ingest.Item]
    future: asyncio.Future = field(repr=False)


class GroupWriter:
    """The writer of one event loop: submit() returns once the items are committed."""

    def __init__(self) -> None:
        self.queue: list[_Submission] = []
        self.task: asyncio.Task | None = None
        self.packing: asyncio.Task | None = None
        self.packed_at = time.monotonic()

    def _maybe_pack(self) -> None:
        """Now and then, pack finished page loads, beside ingest rather than in its way."""
        interval = conf.get("REPLAY_PACK_INTERVAL")
        if not interval or time.monotonic() - self.packed_at < interval:
            return
        if self.packing is not None and not self.packing.done():
            return
        self.packed_at = time.monotonic()
        # Its own thread and connection: zstd releases the GIL while it compresses, and the
        # write at the end of each pack is short.
        pack = sync_to_async(_pack_some, thread_sensitive=False)
        self.packing = asyncio.ensure_future(pack())

    async def submit(
        self, items: list[ingest.Item], *, source: IngestKey | None
    ) -> list[ingest.Outcome]:
        """Store items (from one connection, in order); raise DatabaseError if that failed."""
        for item in items:
            item.source = source
        future = asyncio.get_running_loop().create_future()
        self.queue.append(_Submission(items, future))
        if self.task is None or self.task.done():
            self.task = asyncio.ensure_future(self._run())
        return await future

    async def _run(self) -> None:
        limit = conf.get("REPLAY_FLUSH_MAX_FRAMES") * 5
        while self.queue:
            taken: list[_Submission] = []
            count = 0
            while self.queue and (not taken or count + len(self.queue[0].items) <= limit):
                submission = self.queue.pop(0)
                taken.append(submission)
                count += len(submission.items)
            items = [item for submission in taken for item in submission.items]
            try:
                outcomes, notifications = await _store(items)
            except Exception as exc:  # every connection in this transaction hears of it
                for submission in taken:
                    if not submission.future.done():
                        submission.future.set_exception(exc)
                continue
            await live_notify_async(notifications)
            self._maybe_pack()
            start = 0
            for submission in taken:
                end = start + len(submission.items)
                if not submission.future.done():
                    submission.future.set_result(outcomes[start:end])
                start = end


# The writer has a thread (and so a database connection) of its own. On the thread that
# Django's sync_to_async shares, every frame's dispatch (Channels closes stale connections
# there) would queue behind the transaction being written.
_WRITER_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-writer")


def _store_items(items: list[ingest.Item]) -> tuple[list[ingest.Outcome], list]:
    close_old_connections()
    try:
        return ingest.items_store(items, source=None)
    finally:
        close_old_connections()


_store = sync_to_async(_store_items, thread_sensitive=False, executor=_WRITER_THREAD)


def _pack_some() -> None:
    try:
        recordings_pack(limit=50)
    except Exception:  # packing is an optimisation: a failure leaves the rows as they are
        logger.exception("packing recordings failed; will try again")
    finally:
        close_old_connections()


_writers: dict[asyncio.AbstractEventLoop, GroupWriter] = {}


def group_writer() -> GroupWriter:
    """The writer of the running event loop."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        for stale in [other for other in _writers if other.is_closed()]:
            del _writers[stale]
        writer = _writers[loop] = GroupWriter()
    return writer
