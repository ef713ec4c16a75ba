"""Compare stored bytes of an rrweb session: zstd with and without a base vs per-frame gzip."""

from __future__ import annotations

import argparse
import gzip
import lzma
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

if not __package__:  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.rrweb_fixtures import batch_text, make_session, split_parts
from conversations import rrweb

LEVELS = (3, 6, 9, 19)
SEGMENT_LEVELS = (9, 12, 15, 19)


def main(argv: list[str] | None = None) -> None:
    """Print the table of stored bytes and compress speed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timing runs; the best is kept")
    args = parser.parse_args(argv)
    print("$ python", " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]]))

    batches = make_session(minutes=args.minutes, seed=args.seed)
    texts = [batch_text(b) for b in batches]
    decoded = [rrweb.decode_batch(t, kind=b["type"]) for t, b in zip(texts, batches, strict=True)]
    blobs = [d.events_json for d in decoded]
    # base: the latest earlier batch holding a FullSnapshot, as ingest keeps it.
    bases: list[bytes | None] = []
    latest: bytes | None = None
    for d in decoded:
        bases.append(latest)
        if d.full_snapshots:
            latest = d.events_json

    raw = sum(len(b) for b in blobs)
    init_raw = sum(len(b) for b, d in zip(blobs, decoded, strict=True) if d.full_snapshots)
    print(
        f"session: {args.minutes:g} min, seed {args.seed}, {len(batches)} batches "
        f"({sum(1 for d in decoded if d.full_snapshots)} with a FullSnapshot), "
        f"{sum(d.count for d in decoded)} events"
    )
    print(f"raw JSON: {raw:,} bytes ({init_raw:,} in init batches)\n")

    def gzip_batch(blob: bytes, _base: bytes | None) -> bytes:
        return gzip.compress(blob, compresslevel=6, mtime=0)

    def gzip_parts(blob: bytes, _base: bytes | None) -> bytes:
        parts = split_parts(blob.decode("utf-8"), 32 * 1024)
        return b"".join(gzip.compress(p.encode(), compresslevel=6, mtime=0) for p in parts)

    baseline, _ = _measure(gzip_batch, blobs, [None] * len(blobs), 1)
    rows: list[tuple[str, int, float]] = [
        ("gzip -6, each batch (baseline)", baseline, _measure(gzip_batch, blobs, bases, 1)[1]),
        ("gzip -6, each 32 KiB frame", *_measure(gzip_parts, blobs, bases, 1)),
    ]
    whole = b"".join(blobs)
    started = time.perf_counter()
    xz = len(lzma.compress(whole, preset=6))
    rows.append(("xz -6, whole session at once", xz, raw / (time.perf_counter() - started) / 1e6))
    for level in LEVELS:
        for with_base in (False, True):

            def zstd(blob: bytes, base: bytes | None, level: int = level) -> bytes:
                return rrweb.compress(blob, base=base, level=level)

            used = bases if with_base else [None] * len(blobs)
            size, speed = _measure(zstd, blobs, used, args.repeat)
            label = f"zstd -{level}, each batch" + (
                ", base = last FullSnapshot" if with_base else ""
            )
            rows.append((label, size, speed))
            _check_round_trip(blobs, used)

    # Compaction: each finished segment (an init batch and its events) as one frame.
    segments: list[list[bytes]] = []
    for blob, d in zip(blobs, decoded, strict=True):
        if d.full_snapshots or not segments:
            segments.append([])
        segments[-1].append(blob)
    segment_bases = [None, *(segment[0] for segment in segments[:-1])]
    for level in SEGMENT_LEVELS:
        size, speed = _measure_segments(segments, segment_bases, level, args.repeat)
        label = f"zstd -{level}, each segment, base = last FullSnapshot"
        rows.append((label, size, speed))

    print(f"{'method':<54} {'bytes':>9} {'per raw byte':>12} {'vs gzip':>8} {'MB/s':>7}")
    for label, size, speed in rows:
        print(f"{label:<54} {size:>9,} {size / raw:>12.4f} {size / baseline:>8.3f} {speed:>7.1f}")
    print(
        f"\ndefaults in conversations.rrweb: DEFAULT_LEVEL {rrweb.DEFAULT_LEVEL} per batch, "
        f"SEGMENT_LEVEL {rrweb.SEGMENT_LEVEL} per segment"
    )


def _measure_segments(
    segments: list[list[bytes]], bases: list[bytes | None], level: int, repeat: int
) -> tuple[int, float]:
    """Like _measure, for compaction; checks that every segment round-trips."""
    best = float("inf")
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        blobs = [
            rrweb.compress_segment(segment, base=base, level=level)
            for segment, base in zip(segments, bases, strict=True)
        ]
        best = min(best, time.perf_counter() - started)
        size = sum(len(b) for b in blobs)
    for blob, segment, base in zip(blobs, segments, bases, strict=True):
        assert rrweb.decompress_segment(blob, base=base) == segment
    return size, sum(len(b) for s in segments for b in s) / best / 1e6


def _measure(
    codec: Callable[[bytes, bytes | None], bytes],
    blobs: list[bytes],
    bases: list[bytes | None],
    repeat: int,
) -> tuple[int, float]:
    """Total compressed bytes, and the best compress speed in MB of raw JSON per second."""
    best = float("inf")
    size = 0
    for _ in range(repeat):
        started = time.perf_counter()
        size = sum(len(codec(blob, base)) for blob, base in zip(blobs, bases, strict=True))
        best = min(best, time.perf_counter() - started)
    return size, sum(len(b) for b in blobs) / best / 1e6


def _check_round_trip(blobs: list[bytes], bases: list[bytes | None]) -> None:
    for blob, base in zip(blobs, bases, strict=True):
        assert rrweb.decompress(rrweb.compress(blob, base=base), base=base) == blob


if __name__ == "__main__":
    main()
