"""Storage: database growth per byte of raw rrweb JSON, against gzip per frame and xz per session.

Streams realistic recordings (bench/rrweb_fixtures.py, split into 32 KiB parts as clients
send them) through the real ingest services into a fresh database, then measures how much
the database grew (tables and indexes, after checkpoint) against two baselines computed on
the same data: gzip -6 of each frame's rrweb data on its own, and xz of each whole session.

    .venv/bin/python bench/storage.py [--sessions 3] [--minutes 10]

DATABASE_URL=postgres://... measures on PostgreSQL (a temporary database is created).
"""

import argparse
import gzip
import lzma
import os
import sys
import uuid
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


def pack_bytes() -> int:
    """Bytes of the packs' compressed events and indexes."""
    from conversations.models import RecordingPack

    return sum(len(pack.data) + len(pack.index) for pack in RecordingPack.objects.all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    print("command: .venv/bin/python bench/storage.py " + " ".join(sys.argv[1:]))
    url, label, cleanup = scratch_database()
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "replay.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from bench.rrweb_fixtures import batch_text, make_session, rrweb_frames
    from conversations import ingest
    from conversations.packing import recordings_pack
    from conversations.protocol import dumps

    try:
        call_command("migrate", verbosity=0)

        def ingest_session(session: list) -> list[dict]:
            frames = rrweb_frames(str(uuid.uuid4()), session)
            items = [ingest.item_from_text(dumps(frame)) for frame in frames]
            for start in range(0, len(items), 20):
                ingest.items_store(items[start : start + 20], source=None)
            return frames

        def compact() -> None:
            # Space freed by packed rows is reused by the database, not handed back to the
            # file system: compact, so what is measured is what the data takes.
            with django.db.connection.cursor() as cursor:
                vacuum = "VACUUM" if django.db.connection.vendor == "sqlite" else "VACUUM FULL"
                cursor.execute(vacuum)

        # A first conversation, not counted, so that every table and index already holds
        # data: what is measured is the growth per recording, not empty tables' first pages.
        ingest_session(make_session(minutes=args.minutes, seed=10_000))
        recordings_pack(finished_only=False)
        compact()
        before = database_bytes()
        blobs_before = pack_bytes()
        raw = per_frame_gzip = whole_xz = batches = 0
        for seed in range(args.sessions):
            session = make_session(minutes=args.minutes, seed=seed)
            texts = [batch_text(batch) for batch in session]
            raw += sum(len(t.encode()) for t in texts)
            whole_xz += len(lzma.compress("".join(texts).encode(), preset=6))
            batches += len(session)
            frames = ingest_session(session)
            per_frame_gzip += sum(
                len(gzip.compress(frame["event_rrweb"]["data"].encode(), 6)) for frame in frames
            )
        as_received = database_bytes() - before
        packed = recordings_pack(finished_only=False)
        compact()
        blobs = pack_bytes() - blobs_before
        packed_size = database_bytes() - before
        gz = per_frame_gzip
        print(f"database: {label}; {args.sessions} x {args.minutes:g} min, {batches} batches")
        print(f"{'raw rrweb JSON':<26}{raw:>11,} B")
        print(f"{'gzip -6 per frame':<26}{gz:>11,} B  {gz / raw:.3f} of raw")
        print(f"{'xz per whole session':<26}{whole_xz:>11,} B  {whole_xz / gz:.3f} of gzip/frame")
        for name, size in (
            ("database, as received", as_received),
            ("database, packed", packed_size),
        ):
            print(f"{name:<26}{size:>11,} B  {size / gz:.3f} of gzip/frame (target <= 0.5)")
        print(
            f"page loads packed: {packed}, their blobs {blobs:,} B ({blobs / gz:.3f} of gzip/frame)"
        )
    finally:
        cleanup()


if __name__ == "__main__":
    main()
