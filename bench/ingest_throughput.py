"""Ingest throughput: frames/s and MB/s through Daphne, against a bare ping-only consumer.

Starts one Daphne process serving both the real ingest consumer and a bare consumer, then
streams realistic recordings (rrweb batches split into 32 KiB parts, chat messages, a ping
every 20 frames) over 1 and over 50 concurrent connections, alternating bare and ingest runs.
The clock stops when every connection's final ping is answered, i.e. everything is stored.

    .venv/bin/python bench/ingest_throughput.py [--rounds 3]

DATABASE_URL picks the database (default: a fresh SQLite file in a temporary directory).
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from bench.harness import DaphneProcess, free_port, scratch_database  # noqa: E402
from bench.rrweb_fixtures import make_session, rrweb_frames  # noqa: E402

PING = '{"type":"ping"}'
PING_EVERY = 20
CASES = [(1, 10.0), (50, 1.0)]


def conversation_frames(seed: int, minutes: float) -> list[str]:
    """The frames one shopper's conversation sends: rrweb batches with chat in between."""
    conversation = str(uuid.uuid4())
    frames = [
        json.dumps(f) for f in rrweb_frames(conversation, make_session(minutes=minutes, seed=seed))
    ]
    for n in range(max(1, len(frames) // 10)):
        message = {
            "type": "message",
            "conversation_uuid": conversation,
            "message": {
                "conversation_message_uuid": str(uuid.uuid4()),
                "author_conversation_participant_name": "Shopper",
                "body": f"Question number {n} about sizes and shipping",
                "message_epoch": 1_736_949_600_000 + n * 1000,
            },
        }
        frames.insert(n * 10, json.dumps(message))
    return frames


async def stream(url: str, frames: list[str]) -> None:
    async with connect(url, max_size=None, compression=None) as ws:
        for number, frame in enumerate(frames, start=1):
            await ws.send(frame)
            if number % PING_EVERY == 0:
                await ws.send(PING)
        await ws.send(PING)
        # Each ping answer means everything before it is stored: wait for the last one.
        expected = len(frames) // PING_EVERY + 1
        for _ in range(expected):
            assert json.loads(await ws.recv()) == {"type": "ping"}


async def run(url: str, workloads: list[list[str]]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(stream(url, frames) for frames in workloads))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("command: .venv/bin/python bench/ingest_throughput.py " + " ".join(sys.argv[1:]))
    tmp = tempfile.mkdtemp(prefix="bench-ingest-")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REPLAY_VAR_DIR": tmp, "LOG_LEVEL": "WARNING"}
    url, label, cleanup = scratch_database()
    env["DATABASE_URL"] = url
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    key = (
        subprocess.run(
            [sys.executable, "manage.py", "create_ingest_key", f"bench-{uuid.uuid4().hex[:8]}"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    print(f"database: {label}")
    server = DaphneProcess(
        free_port(),
        env,
        application="bench.bare_asgi:application",
        log=Path(env["REPLAY_VAR_DIR"]) / "daphne.log",
    )
    server.start()
    port = server.port
    try:
        for connections, minutes in CASES:
            results: dict[str, list[float]] = {"bare": [], "ingest": []}
            sizes = None
            for round_number in range(args.rounds):
                for name, path in (("bare", "/ws/bare/"), ("ingest", f"/ws/ingest/?key={key}")):
                    # Fresh conversations every run, so ingest never sees a re-send.
                    seed = 1000 * round_number + (0 if name == "bare" else 500)
                    workloads = [conversation_frames(seed + c, minutes) for c in range(connections)]
                    sizes = (
                        sum(len(w) for w in workloads),
                        sum(len(f.encode()) for w in workloads for f in w),
                    )
                    seconds = asyncio.run(run(f"ws://127.0.0.1:{port}{path}", workloads))
                    results[name].append(seconds)
            frames, nbytes = sizes
            bare = statistics.median(results["bare"])
            ingest = statistics.median(results["ingest"])
            print(
                f"{connections:>2} connection(s), {frames} frames, {nbytes / 1e6:.1f} MB: "
                f"bare {frames / bare:,.0f} frames/s {nbytes / bare / 1e6:.1f} MB/s | "
                f"ingest {frames / ingest:,.0f} frames/s {nbytes / ingest / 1e6:.1f} MB/s | "
                f"ratio {bare / ingest:.2f} (median of {args.rounds})"
            )
    finally:
        server.stop()
        cleanup()


if __name__ == "__main__":
    main()
