"""Server memory while @rrweb/packer bombs arrive, against innocent frames of the same size.

A packer bomb is one packed event: 256 MiB of JSON that zlib squeezes into 0.78 MB, sent as
a client sends a batch over the frame limit, in parts. Each of several connections sends one
to a real Daphne process, whose embedded worker joins the parts and decodes the batch (or a
worker process does, with --worker-process). The server's memory is read from
/proc/<pid>/status: the peak resident size (VmHWM, reset before the run) and VmRSS sampled
every 5 ms, against the resident size before the run. The baseline run, in a fresh process
beside it, sends innocent packed batches of the same compressed size instead.

    .venv/bin/python bench/packer_bombs.py [--connections 4] [--worker-process]

DATABASE_URL picks the database (default: a fresh SQLite file in a temporary directory).
Target: less than 512 MiB of growth with 4 bombs at once.
"""

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from bench.harness import DaphneProcess, WorkerProcess, free_port, scratch_project  # noqa: E402

MIB = 1024 * 1024
TARGET_MIB = 512
PART_BYTES = 400_000  # characters of data per part: the frame stays under 1 MiB as UTF-8

_BOMBS: dict[tuple[int, bool], str] = {}


def packer_bomb(inflated: int = 256 * MIB, *, dense: bool = False) -> str:
    """A @rrweb/packer string of one event whose JSON inflates to `inflated` bytes.

    By default a repeated JSON object, as a recording might hold: 256 MiB in 0.78 MB.
    Dense: one repeated letter, 256 MiB in 0.26 MB.
    """
    if (inflated, dense) not in _BOMBS:
        compressor = zlib.compressobj(9)
        head = b'{"type":3,"timestamp":1764000000000,"data":{"source":0,'
        if dense:
            head, chunk, tail = head + b'"text":"', b"a", b'"}'
        else:
            head += b'"texts":['
            chunk = b'{"id":12345,"text":"the blue kettle, 39 EUR","x":100,"y":200},'
            tail = b"{}]}"
        block = chunk * (MIB // len(chunk))
        pieces = [compressor.compress(head)]
        pieces += [compressor.compress(block) for _ in range(inflated // len(block))]
        pieces += [compressor.compress(tail + b',"v":"v1"}'), compressor.flush()]
        _BOMBS[inflated, dense] = b"".join(pieces).decode("latin-1")
    return _BOMBS[inflated, dense]


def innocent_packed(size: int, seed: int = 0) -> str:
    """A packed event of about `size` compressed bytes that inflates only a little."""
    rng = random.Random(seed)

    def packed(characters: int) -> str:
        text = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz ,.", k=characters))
        event = {"type": 3, "timestamp": 1764000000000, "data": {"source": 0, "text": text}}
        event["v"] = "v1"
        return zlib.compress(json.dumps(event).encode(), 9).decode("latin-1")

    sample = packed(100_000)
    return packed(int(100_000 * size / len(sample)))


def batch_frames(conversation: str, index: int, data: str) -> list[str]:
    """The frames of one rrweb batch whose data is `data`, in parts under the frame limit."""
    import hashlib

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    pieces = [data[i : i + PART_BYTES] for i in range(0, len(data), PART_BYTES)]
    frames = []
    for number, piece in enumerate(pieces, start=1):
        rrweb = {
            "type": "events",
            "event_index": index,
            "data": piece,
            "data_sha256": sha(piece),
            "data_part": number,
            "data_total_parts": len(pieces),
            "data_total_sha256": sha(data),
        }
        frame = {"type": "event", "event_type": "rrweb", "conversation_uuid": conversation}
        frame["event_rrweb"] = rrweb
        # Latin-1 characters as UTF-8, not \u00XX escapes: 1.7 bytes a character, not 4.
        frames.append(json.dumps(frame, ensure_ascii=False, separators=(",", ":")))
    return frames


def status_kib(pid: int, field: str) -> int:
    """A VmRSS/VmHWM line of /proc/<pid>/status, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


@contextmanager
def peak_growth(pids: list[int]) -> Iterator[dict[int, float]]:
    """Measure each process's peak resident growth (MiB) over the block: filled in on exit.

    The peak (VmHWM) is reset first where the kernel allows (clear_refs 5); VmRSS sampled
    every 5 ms stands in for it where it does not.
    """
    before = {pid: status_kib(pid, "VmRSS") for pid in pids}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as refs:
                refs.write("5")
        except OSError:
            pass
    peaks = dict(before)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in pids:
                try:
                    peaks[pid] = max(peaks[pid], status_kib(pid, "VmRSS"))
                except OSError:
                    pass
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    growth: dict[int, float] = {}
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
        for pid in pids:
            try:
                peaks[pid] = max(peaks[pid], status_kib(pid, "VmHWM"))
            except OSError:
                pass
            growth[pid] = (peaks[pid] - before[pid]) / 1024


async def send_batches(url: str, batches: list[list[str]]) -> None:
    """Each batch over its own connection, at once; return when every ping is answered."""

    async def one(frames: list[str]) -> None:
        async with connect(url, max_size=None, compression=None) as ws:
            for frame in frames:
                await ws.send(frame)
            await ws.send('{"type":"ping"}')
            assert json.loads(await asyncio.wait_for(ws.recv(), 120)) == {"type": "ping"}

    await asyncio.gather(*(one(frames) for frames in batches))


def journal_empty() -> bool:
    from django.db import close_old_connections, connection

    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM conversations_journalentry LIMIT 1")
        return cursor.fetchone() is None


def wait_applied(timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not journal_empty():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the journal was not applied within {timeout:g} s")
        time.sleep(0.05)


def outcomes(conversations: list[str]) -> str:
    """What the server made of these conversations' batches: stored, and rejected by reason."""
    from collections import Counter

    from conversations.models import RejectedFrame, RRWebBatch

    stored = RRWebBatch.objects.filter(conversation__uuid__in=conversations).count()
    reasons = Counter(
        RejectedFrame.objects.filter(conversation_uuid__in=conversations).values_list(
            "reason", flat=True
        )
    )
    rejected = "; ".join(f"{n} x {reason[:110]}" for reason, n in reasons.items())
    return f"{stored} batches stored; rejected: {rejected or 'none'}"


def measure(url: str, pids: list[int], batches: list[list[str]]) -> float:
    """Send the batches at once and wait until they are applied: the largest growth, MiB."""
    with peak_growth(pids) as growth:
        asyncio.run(send_batches(url, batches))
        wait_applied()
        time.sleep(0.2)
    return max(growth.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--worker-process", action="store_true", help="apply in its own process")
    args = parser.parse_args()
    print("command: .venv/bin/python bench/packer_bombs.py " + " ".join(sys.argv[1:]))
    tmp = tempfile.mkdtemp(prefix="bench-bombs-")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REPLAY_VAR_DIR": tmp,
        "LOG_LEVEL": "WARNING",
        "REPLAY_EMBEDDED_WORKER": "0" if args.worker_process else "1",
    }
    key, label, cleanup = scratch_project(env)
    bomb = packer_bomb()
    innocent = innocent_packed(len(bomb))
    print(
        f"database: {label}; {args.connections} connections at once; bomb: 256 MiB inflated, "
        f"{len(bomb) / 1e6:.2f} MB packed; innocent: {len(innocent) / 1e6:.2f} MB packed, "
        f"{len(zlib.decompress(innocent.encode('latin-1'))) / 1e6:.2f} MB inflated"
    )
    results = {}
    try:
        for name, data in (("baseline (innocent)", innocent), ("packer bombs", bomb)):
            log = Path(tmp) / f"daphne-{name.split()[0]}.log"
            server = DaphneProcess(free_port(), env, log=log)
            worker = WorkerProcess(env, log=log) if args.worker_process else None
            server.start()
            if worker is not None:
                worker.start()
            try:
                ingest = f"ws://{server.address}/ws/ingest/?key={key}"
                # Warm up: the first connection loads the application, the worker its modules.
                warm = [batch_frames(str(uuid.uuid4()), 0, innocent_packed(10_000, seed=99))]
                asyncio.run(send_batches(ingest, warm))
                wait_applied()
                pids = [server.process.pid] + ([worker.process.pid] if worker else [])
                conversations = [str(uuid.uuid4()) for _ in range(args.connections)]
                batches = [batch_frames(c, 0, data) for c in conversations]
                results[name] = measure(ingest, pids, batches)
            finally:
                server.stop()
                if worker is not None:
                    worker.stop()
            print(
                f"{name}: peak resident growth {results[name]:.1f} MiB ({outcomes(conversations)})"
            )
        bombs, baseline = results["packer bombs"], results["baseline (innocent)"]
        verdict = "met" if bombs < TARGET_MIB else "NOT met"
        print(
            f"packer bombs grew the server by {bombs:.1f} MiB, the baseline by {baseline:.1f} MiB"
            f" (difference {bombs - baseline:+.1f} MiB); target < {TARGET_MIB} MiB: {verdict}"
        )
    finally:
        cleanup()


if __name__ == "__main__":
    main()
