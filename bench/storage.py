"""Storage: database growth per byte of raw rrweb JSON, against gzip per frame and xz per session.

Streams realistic recordings (bench/rrweb_fixtures.py, split into 32 KiB parts as clients
send them) through the real ingest services into a fresh database, then measures how much
the database grew (tables and indexes, after checkpoint) against two baselines computed on
the same data: gzip -6 of each frame's rrweb data on its own, and xz of each whole session.
Two cases, each in its own database:

- long: `--sessions` recordings of `--minutes` each, every page load packed;
- short: `--short` conversations of one minute each (one page load, about 20 batches), each
  closed by its `conversation closed` frame and packed as the packing job would.

In both, the first conversations (`--warm-up` for the short case, one for the long) are not
counted: every table already holds data, and the shared dictionary that first packs are
compressed against has been built from them, so what is measured is the growth per
conversation of an archive in use, not empty tables' first pages nor the dictionary made
once a month (its size is printed apart). Frames are applied as the ingest
workers apply them, so the journal they pass through stays empty. `--where` adds where the
space goes, table by table and index by index.

    .venv/bin/python bench/storage.py [--sessions 3] [--minutes 10] [--short 50] [--where]

DATABASE_URL=postgres://... measures on PostgreSQL (a temporary database is created).
"""

import argparse
import gzip
import lzma
import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_database  # noqa: E402


def database_bytes() -> int:
    """Bytes the database holds in pages in use (SQLite) or in its relations (PostgreSQL)."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            cursor.execute("PRAGMA page_size")
            page = cursor.fetchone()[0]
            cursor.execute("PRAGMA page_count")
            pages = cursor.fetchone()[0]
            cursor.execute("PRAGMA freelist_count")
            free = cursor.fetchone()[0]
            return (pages - free) * page
        cursor.execute("CHECKPOINT")
        cursor.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
        return int(cursor.fetchone()[0])


def relation_bytes() -> dict[str, int]:
    """Bytes per table and per index: SQLite's dbstat, or PostgreSQL's relation sizes."""
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
        else:
            # A table's own pages with its TOAST table; each index apart.
            cursor.execute(
                "SELECT c.relname, CASE WHEN c.relkind = 'r' THEN pg_table_size(c.oid) "
                "ELSE pg_relation_size(c.oid) END FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')"
            )
        return {name: int(size) for name, size in cursor.fetchall()}


def pack_bytes() -> tuple[int, int]:
    """Bytes of the packs' compressed events, and of their indexes."""
    from conversations.models import RecordingPack

    packs = RecordingPack.objects.values_list("data", "index")
    return sum(len(data) for data, _ in packs), sum(len(index) for _, index in packs)


def dictionary_bytes() -> int:
    """Bytes of the shared dictionaries, compressed as stored."""
    from conversations.models import RecordingDictionary

    return sum(len(data) for data in RecordingDictionary.objects.values_list("data", flat=True))


def compact() -> None:
    """Hand back to the file system what packed rows freed, so what is measured is the data."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM" if connection.vendor == "sqlite" else "VACUUM FULL")


def closed_frame(conversation: str) -> dict:
    """The frame that closes a conversation, with its summary, as the chat server sends it."""
    summary = {
        "conversation_uuid": conversation,
        "conversation_arn": f"arn:conversation:{conversation}",
        "merchant_id": "DEMO",
        "medium": "websocket",
        "start_dts": "2025-01-15T14:00:00Z",
        "closed": True,
        "message_count": 2,
        "participants": [
            {
                "conversation_participant_arn": "arn:participant:shopper",
                "conversation_participant_name": "Shopper",
                "joined_dts": "2025-01-15T14:00:00Z",
                "status": "active",
            }
        ],
    }
    return {
        "type": "event",
        "event_type": "conversation closed",
        "conversation_uuid": conversation,
        "event_conversation_closed": summary,
    }


class Case:
    """One measurement: conversations streamed in, then packed and compacted."""

    def __init__(self, name: str, *, minutes: float, close: bool, finished_only: bool) -> None:
        self.name = name
        self.minutes = minutes
        self.close = close
        self.finished_only = finished_only

    def ingest(self, seed: int) -> tuple[list, list[dict]]:
        """Store one conversation; its batches and the rrweb frames that carried them."""
        from bench.rrweb_fixtures import make_session, rrweb_frames
        from conversations import ingest
        from conversations.protocol import dumps

        session = make_session(minutes=self.minutes, seed=seed)
        conversation = str(uuid.uuid4())
        frames = rrweb_frames(conversation, session)
        closing = [closed_frame(conversation)] if self.close else []
        items = [ingest.item_from_text(dumps(frame)) for frame in frames + closing]
        for start in range(0, len(items), 20):
            ingest.items_store(items[start : start + 20], source=None)
        return session, frames

    def pack(self) -> int:
        from conversations.packing import recordings_pack

        return recordings_pack(finished_only=self.finished_only)


def run(case: Case, *, warm_up: int, count: int, where: bool, say: Callable) -> None:
    """Measure `case` on a fresh database: `warm_up` conversations first, then `count`."""
    url, label, cleanup = scratch_database()
    use_database(url)
    from django.core.management import call_command
    from django.db import connection

    from bench.rrweb_fixtures import batch_text

    try:
        call_command("migrate", verbosity=0)
        for number in range(warm_up):
            case.ingest(10_000 + number)
        case.pack()
        compact()
        before, relations_before, blobs_before = database_bytes(), relation_bytes(), pack_bytes()
        raw = per_frame_gzip = whole_xz = batches = 0
        for seed in range(count):
            session, frames = case.ingest(seed)
            texts = [batch_text(batch) for batch in session]
            raw += sum(len(t.encode()) for t in texts)
            whole_xz += len(lzma.compress("".join(texts).encode(), preset=6))
            batches += len(session)
            per_frame_gzip += sum(
                len(gzip.compress(frame["event_rrweb"]["data"].encode(), 6)) for frame in frames
            )
        as_received = database_bytes() - before
        packed = case.pack()
        compact()
        data, index = (
            after - before for after, before in zip(pack_bytes(), blobs_before, strict=True)
        )
        blobs = data + index
        packed_size = database_bytes() - before
        gz = per_frame_gzip
        say(f"{case.name}: {label}; {count} x {case.minutes:g} min, {batches} batches")
        say(f"  {'raw rrweb JSON':<26}{raw:>11,} B")
        say(f"  {'gzip -6 per frame':<26}{gz:>11,} B  {gz / raw:.3f} of raw")
        say(f"  {'xz per whole session':<26}{whole_xz:>11,} B  {whole_xz / gz:.3f} of gzip/frame")
        for name, size in (
            ("database, as received", as_received),
            ("database, packed", packed_size),
        ):
            say(f"  {name:<26}{size:>11,} B  {size / gz:.3f} of gzip/frame (target <= 0.5)")
        say(
            f"  page loads packed: {packed}, their blobs {blobs:,} B "
            f"({blobs / gz:.3f} of gzip/frame; indexes {index:,} B)"
        )
        say(f"  shared dictionaries (not counted): {dictionary_bytes():,} B")
        if where:
            after = relation_bytes()
            grown = {
                name: after.get(name, 0) - relations_before.get(name, 0)
                for name in after.keys() | relations_before.keys()
            }
            for name, size in sorted(grown.items(), key=lambda item: -abs(item[1])):
                if size:
                    say(f"    {name:<52}{size:>10,} B  {size / gz:.3f}")
    finally:
        connection.close()
        cleanup()


def use_database(url: str) -> None:
    """Point Django at the database `url`, setting it up on first use."""
    import django
    from django.conf import settings

    if not settings.configured:
        given = os.environ.get("DATABASE_URL", "")
        os.environ["DATABASE_URL"] = url
        os.environ["DJANGO_SETTINGS_MODULE"] = "replay.settings"
        django.setup()
        os.environ["DATABASE_URL"] = given  # where the next scratch database is made
        return
    import dj_database_url
    from django.db import connections

    connections["default"].close()  # each case's scratch database differs only by its name
    connections["default"].settings_dict["NAME"] = dj_database_url.parse(url)["NAME"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3, help="long recordings (0: none)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of a long one")
    parser.add_argument("--short", type=int, default=50, help="short conversations (0: none)")
    parser.add_argument("--warm-up", type=int, default=16, help="short ones not counted")
    parser.add_argument("--where", action="store_true", help="growth per table and index")
    args = parser.parse_args()
    print("command: " + " ".join([".venv/bin/python", "bench/storage.py", *sys.argv[1:]]))
    say = print
    if args.sessions:
        long = Case("long", minutes=args.minutes, close=False, finished_only=False)
        run(long, warm_up=1, count=args.sessions, where=args.where, say=say)
    if args.short:
        short = Case("short", minutes=1, close=True, finished_only=True)
        run(short, warm_up=args.warm_up, count=args.short, where=args.where, say=say)


if __name__ == "__main__":
    main()
