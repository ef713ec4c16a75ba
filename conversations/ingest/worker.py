"""Workers: apply journal entries to the archive, per conversation and in journal order.

A round claims the conversations at the head of the journal, applies their entries in one
transaction (each frame in its own savepoint, as apply.py does) and deletes them in the same
transaction: an entry is applied exactly once, or not at all and stays for the next round,
whichever worker takes it. On PostgreSQL, conversations are claimed with transaction-scoped
advisory locks taken without waiting, so many workers run side by side and never apply the
same conversation at once; a worker killed mid-round releases its locks with its connection,
and another applies the entries again from the start. On SQLite, writers are serialised by
the database itself, and one worker is all it takes.

A round that fails for anything but a lost connection is retried entry by entry: an entry
that fails while its neighbours pass is kept aside as a rejected frame with the error, so
one poisonous frame never holds up the rest.
"""

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import (
    DatabaseError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
    connection,
    transaction,
)

from conversations import conf
from conversations.dbthreads import connection_drop_if_failed
from conversations.ingest.apply import items_store
from conversations.ingest.batches import batches_predecode
from conversations.ingest.items import Context, Item, item_from_text
from conversations.ingest.journal import COLUMNS, NOTIFY_CHANNEL, journal_writer
from conversations.ingest.parts import pending_expire
from conversations.ingest.rejections import guess_uuid, reject
from conversations.ingest.sql import blob_cursor, table
from conversations.live import live_notify_async
from conversations.models import IngestKey, JournalEntry, RejectedFrame
from conversations.packing import recordings_pack

logger = logging.getLogger(__name__)

# How often a standalone worker on SQLite looks for appends while idle (seconds).
_POLL_SQLITE = 0.02
# The first key of PostgreSQL's two-key advisory locks, so ours never meet another app's.
LOCK_CLASS = 0x5250  # "RP"
_COLUMNS = ("id", *COLUMNS)


@dataclass
class Round:
    """What one round applied, and the live updates it owes staff pages."""

    applied: int = 0
    notifications: list[tuple[str, dict]] = field(default_factory=list)


def _claim(*, max_entries: int, max_bytes: int) -> tuple[list[int], list[str]]:
    """The ids of the entries this round may apply, in journal order, and the keys it holds.

    On PostgreSQL the conversations' advisory locks are taken for the session, without
    waiting, so they hold from before the frames are decoded until after the commit; a
    worker that dies lets them go with its connection. The caller releases them.
    """
    heads = JournalEntry.objects.order_by("id").values_list("id", "conversation_key", "size")
    held: list[str] = []
    if connection.vendor == "postgresql":
        keys: list[str] = []
        for _, key, _ in heads[: max_entries * 4]:
            if key not in keys:
                keys.append(key)
        # At most half the conversations waiting (and 32): another worker finds the rest
        # free, so the end of a backlog is shared rather than left to whoever claimed first.
        wanted = min(32, (len(keys) + 1) // 2)
        with connection.cursor() as cursor:
            # A few keys a statement: every lock a statement takes is one this worker holds
            # (and releases), so none may be taken beyond what is returned.
            tried = 0
            while tried < len(keys) and len(held) < wanted:
                batch = keys[tried : tried + min(8, wanted - len(held))]
                tried += len(batch)
                cursor.execute(
                    "SELECT key FROM unnest(%s::text[]) AS heads(key) "
                    "WHERE pg_try_advisory_lock(%s, hashtext(key))",
                    [batch, LOCK_CLASS],
                )
                held += [row[0] for row in cursor.fetchall()]
        if not held:
            return [], held
        heads = heads.filter(conversation_key__in=held)
    ids, total = [], 0
    for entry_id, _, size in heads[:max_entries]:
        if ids and total + size > max_bytes:
            break
        ids.append(entry_id)
        total += size
    return ids, held


def _release(keys: list[str]) -> None:
    if not keys or connection.connection is None:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_unlock(%s, hashtext(key)) FROM unnest(%s::text[]) AS held(key)",
            [LOCK_CLASS, keys],
        )


def _items(rows: list[tuple], sources: dict[int, IngestKey]) -> list[Item]:
    items = []
    for _, _, source_id, received_at, data, binary, size, reject_kind, reason, sha in rows:
        data = bytes(data)
        if reject_kind:
            text = None if binary else data.decode("utf-8", "surrogatepass")
            item = Item(
                text=text,
                binary=data if binary else None,
                received_at=received_at,
                size=size,
                reject_kind=reject_kind,
                reject_reason=reason,
                sha256=sha or None,
            )
        else:
            item = item_from_text(data.decode("utf-8", "surrogatepass"), received_at=received_at)
        item.source = sources.get(source_id)
        items.append(item)
    return items


def _sources(rows: list[tuple]) -> dict[int, IngestKey]:
    ids = {row[2] for row in rows if row[2] is not None}
    return IngestKey.objects.in_bulk(ids) if ids else {}


def _read(ids: list[int]) -> dict[int, Item]:
    if connection.vendor == "postgresql":
        # Bytes as bytes: Django's cursor has PostgreSQL send them as hex text, twice their
        # size, for psycopg to decode again (the larger part of reading a round's frames).
        columns = ", ".join(connection.ops.quote_name(column) for column in _COLUMNS)
        with blob_cursor() as cursor:
            cursor.execute(
                f"SELECT {columns} FROM {table(JournalEntry)} WHERE id = ANY(%s) ORDER BY id",
                [ids],
                binary=True,
            )
            rows = cursor.fetchall()
    else:
        rows = list(JournalEntry.objects.filter(id__in=ids).order_by("id").values_list(*_COLUMNS))
    return dict(zip((row[0] for row in rows), _items(rows, _sources(rows)), strict=True))


def _apply(ids: list[int] | None) -> Round:
    """Claim (or re-claim `ids`), then in one transaction apply and delete.

    Claimed entries are parsed and their batches decoded before the transaction, so the
    slow part of storing holds no lock.
    """
    held: list[str] = []
    try:
        if ids is None:
            ids, held = _claim(
                max_entries=conf.get("REPLAY_WORKER_MAX_ENTRIES"),
                max_bytes=conf.get("REPLAY_WORKER_MAX_BYTES"),
            )
            if not ids:
                return Round()
            prepared = _read(ids)
            decoded = batches_predecode(list(prepared.values()))
        else:
            prepared, decoded = {}, {}
        with transaction.atomic():
            if connection.vendor == "postgresql":
                # No wait for this commit to reach the disk. What a client was told is stored
                # is in the journal, committed synchronously by the front. If PostgreSQL
                # crashes before this commit is on disk, the transaction is lost whole: the
                # entries it deleted are back in the journal and are applied again, which
                # ingest's idempotency makes harmless.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            if not held and connection.vendor == "postgresql":
                keys = set(
                    JournalEntry.objects.filter(id__in=ids).values_list(
                        "conversation_key", flat=True
                    )
                )
                with connection.cursor() as cursor:
                    for key in sorted(keys):
                        cursor.execute(
                            "SELECT pg_advisory_xact_lock(%s, hashtext(%s))", [LOCK_CLASS, key]
                        )
            # Another worker may have applied some meanwhile (SQLite, or the entry-by-entry
            # path): only what is still in the journal is applied.
            present = set(JournalEntry.objects.filter(id__in=ids).values_list("id", flat=True))
            ids = sorted(entry_id for entry_id in ids if entry_id in present)
            if not ids:
                return Round()
            missing = [entry_id for entry_id in ids if entry_id not in prepared]
            if missing:
                prepared.update(_read(missing))
            items = [prepared[entry_id] for entry_id in ids]
            outcomes, notifications = items_store(items, source=None, decoded=decoded)
            JournalEntry.objects.filter(id__in=ids).delete()
        return Round(applied=len(ids), notifications=notifications)
    finally:
        if held:
            try:
                _release(held)
            except DatabaseError:  # the connection is gone, and its locks with it
                pass


def _outage(exc: DatabaseError) -> bool:
    """Whether the database, not a frame, is at fault: a lost connection, a missing table."""
    if isinstance(exc, OperationalError | InterfaceError | ProgrammingError):
        return True
    return not connection.is_usable()


def _keep_aside(entry_id: int, exc: Exception) -> None:
    """Move an entry that fails on its own to the rejected frames, with the error."""
    with transaction.atomic():
        rows = list(JournalEntry.objects.filter(id=entry_id).values_list(*_COLUMNS))
        if not rows:
            return
        (item,) = _items(rows, _sources(rows))
        reason = f"server error while storing this frame: {type(exc).__name__}: {exc}"
        uuid = item.envelope.conversation_uuid if item.envelope else guess_uuid(item.text)
        ctx = Context(source=item.source)
        reject(item, ctx, kind=RejectedFrame.Kind.ERROR, reason=reason.strip(), uuid=uuid)
        JournalEntry.objects.filter(id=entry_id).delete()


def journal_apply_round() -> Round:
    """Apply what this worker can claim at the head of the journal.

    Raises DatabaseError when the database cannot be used (the caller waits and retries).
    """
    try:
        return _apply(None)
    except DatabaseError as exc:
        if _outage(exc):
            raise
        logger.warning("a journal round failed (%s); applying its entries one by one", exc)
    ids, held = _claim(max_entries=conf.get("REPLAY_WORKER_MAX_ENTRIES"), max_bytes=1 << 62)
    _release(held)  # each entry is locked again on its own
    done = Round()
    failed: list[tuple[int, Exception]] = []
    for entry_id in ids:
        try:
            one = _apply([entry_id])
        except DatabaseError as exc:
            if _outage(exc):
                raise
            failed.append((entry_id, exc))
            continue
        done.applied += one.applied
        done.notifications += one.notifications
    if failed and not done.applied:
        raise failed[0][1]  # nothing passes: the database is at fault, not the frames
    for entry_id, exc in failed:
        logger.error("journal entry %s fails on its own; kept as rejected: %s", entry_id, exc)
        _keep_aside(entry_id, exc)
        done.applied += 1
    return done


def journal_drain() -> int:
    """Apply the whole journal from this thread (tests, commands); return how many entries."""
    from conversations.live import live_notify

    total = 0
    while True:
        applied = journal_apply_round()
        live_notify(applied.notifications)
        if not applied.applied:
            return total
        total += applied.applied


def journal_lag() -> tuple[int, datetime | None]:
    """How many entries wait in the journal, and when the oldest was received."""
    oldest = JournalEntry.objects.order_by("id").values_list("received_at", flat=True).first()
    return JournalEntry.objects.count(), oldest


# Packing a finished page load costs ~45 ms of CPU; a maintenance pass stops starting new
# ones after this long, so the frames waiting in the journal (and staff watching them live)
# wait no longer than that for it, and comes back after _MAINTAIN_AGAIN to go on.
_MAINTAIN_BUDGET = 0.15
_MAINTAIN_AGAIN = 1.0


def _maintain() -> bool:
    """Expire incomplete batches and pack finished page loads: one worker at a time.

    Return whether work was left for a later pass (the time budget ran out).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, 0)", [LOCK_CLASS + 1])
            if not cursor.fetchone()[0]:
                return False  # another worker is at it
    try:
        pending_expire()
        return recordings_pack(limit=50, budget=_MAINTAIN_BUDGET) < 0
    except Exception:  # both are housekeeping: a failure leaves things as they were
        logger.exception("journal maintenance failed; will try again")
        return False
    finally:
        if connection.vendor == "postgresql" and connection.is_usable():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, 0)", [LOCK_CLASS + 1])


class Worker:
    """Apply the journal until stopped: embedded in a server process, or on its own."""

    def __init__(self) -> None:
        # One thread, so one database connection, kept between rounds.
        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-worker")
        self.wakeup = asyncio.Event()
        self.listening_on: object = None
        self.maintained_at = time.monotonic()

    def wake(self) -> None:
        self.wakeup.set()

    async def _in_thread(self, function, *args):
        return await sync_to_async(function, thread_sensitive=False, executor=self.thread)(*args)

    def _round(self, listen: bool = False) -> Round:
        # Not close_old_connections(): with health checks that costs a round trip every
        # round. A connection that failed is dropped, and a new one listens again.
        connection_drop_if_failed()
        if listen:
            self._listen()  # before the journal is read: whatever is appended after is heard
        applied = journal_apply_round()
        interval = conf.get("REPLAY_PACK_INTERVAL")
        if interval and time.monotonic() - self.maintained_at >= interval:
            self.maintained_at = time.monotonic()
            if _maintain():  # more to pack: again soon, between rounds
                self.maintained_at -= max(0.0, interval - _MAINTAIN_AGAIN)
        return applied

    def _listen(self) -> None:
        """On PostgreSQL, have this connection hear of appends (once per connection)."""
        if connection.vendor != "postgresql":
            return
        connection.ensure_connection()
        raw = connection.connection
        if self.listening_on is not raw:
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self.listening_on = raw

    def _wait_for_appends(self, timeout: float) -> None:
        """Block until an append is announced or seen, or for `timeout` seconds."""
        if connection.vendor == "postgresql":
            self._listen()
            # Notifications that came during the round are queued: they end the wait at once.
            for _ in connection.connection.notifies(timeout=timeout, stop_after=1):
                pass
            return
        # SQLite cannot announce a commit to another process: look at the journal every
        # moment instead. A read outside a transaction costs microseconds and, unlike a
        # round, never takes the write lock the front's appends need.
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(min(_POLL_SQLITE, max(0.0, deadline - time.monotonic())))
            if JournalEntry.objects.exists():
                return

    async def run(self, *, stop: asyncio.Event | None = None, listen: bool = False) -> None:
        """Rounds until `stop` is set; between rounds, wait for an append to be announced."""
        stop = stop or asyncio.Event()
        failures = 0
        while not stop.is_set():
            # Cleared before the round, not after it: an append announced while the round
            # runs, too late for its claim, then starts the next round at once.
            self.wakeup.clear()
            try:
                applied = await self._in_thread(self._round, listen)
            except Exception:  # the boundary: the entries stay in the journal for next time
                failures += 1
                logger.exception("journal round failed; retrying (attempt %d)", failures)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            await live_notify_async(applied.notifications, read=self._in_thread)
            if applied.applied:
                continue
            idle = conf.get("REPLAY_WORKER_IDLE_WAIT")
            if listen:
                try:
                    await self._in_thread(self._wait_for_appends, idle)
                except Exception:  # the boundary: the connection broke; the round replaces it
                    logger.exception("waiting for journal appends failed")
                    await asyncio.sleep(0.1)
            else:
                try:
                    await asyncio.wait_for(self.wakeup.wait(), idle)
                except TimeoutError:
                    pass


_embedded: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def embedded_worker_ensure() -> None:
    """Run one worker beside this server process's sockets, unless settings say otherwise."""
    if not conf.get("REPLAY_EMBEDDED_WORKER"):
        return
    loop = asyncio.get_running_loop()
    task = _embedded.get(loop)
    if task is not None and not task.done():
        return
    worker = Worker()
    journal_writer().appended.append(worker.wake)
    _embedded[loop] = loop.create_task(worker.run())
