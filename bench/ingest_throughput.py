"""Ingest throughput through Daphne and the journal, against a bare ping-only consumer.

One Daphne process serves both the real ingest socket and a bare consumer that only reads
each frame and answers pings; worker processes (`manage.py ingest_worker`) apply the journal.
Realistic recordings (rrweb batches split into 32 KiB parts, chat messages, a ping every 20
frames) go over 50 concurrent connections, alternating bare and ingest runs. Reported:

- front: frames/s until every connection's last ping is answered (all frames in the journal);
- end to end: frames/s until the journal is empty (every event readable through the API);
- journal commit to visible: a probe connection sends a message and a ping every 50 ms during
  the burst; from the ping's answer, the time until the message can be read;
- drain: how long the backlog takes to apply after the last ping is answered;
- worker rate: a burst put in the journal with no worker running, then applied by 1 and by 2
  worker processes (the machine's two cores), frames/s.

    .venv/bin/python bench/ingest_throughput.py [--rounds 3] [--connections 50] [--workers 1]

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

from bench.harness import (  # noqa: E402
    DaphneProcess,
    WorkerProcess,
    free_port,
    percentile,
    scratch_project,
)
from bench.rrweb_fixtures import make_session, rrweb_frames  # noqa: E402

PING = '{"type":"ping"}'
PING_EVERY = 20


def conversation_frames(seed: int, minutes: float) -> list[str]:
    """The frames one shopper's conversation sends: rrweb batches with chat in between."""
    conversation = str(uuid.uuid4())
    frames = [
        json.dumps(f) for f in rrweb_frames(conversation, make_session(minutes=minutes, seed=seed))
    ]
    for n in range(max(1, len(frames) // 10)):
        frames.insert(n * 10, json.dumps(_message(conversation, f"Question number {n}")))
    return frames


def _message(conversation: str, body: str, message_uuid: str | None = None) -> dict:
    return {
        "type": "message",
        "conversation_uuid": conversation,
        "message": {
            "conversation_message_uuid": message_uuid or str(uuid.uuid4()),
            "author_conversation_participant_name": "Shopper",
            "body": body,
            "message_epoch": 1_736_949_600_000,
        },
    }


async def stream(url: str, frames: list[str]) -> None:
    async with connect(url, max_size=None, compression=None) as ws:
        for number, frame in enumerate(frames, start=1):
            await ws.send(frame)
            if number % PING_EVERY == 0:
                await ws.send(PING)
        await ws.send(PING)
        # Each ping answer means everything before it is in the journal: wait for the last.
        expected = len(frames) // PING_EVERY + 1
        for _ in range(expected):
            assert json.loads(await ws.recv()) == {"type": "ping"}


def journal_empty() -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM conversations_journalentry LIMIT 1")
        return cursor.fetchone() is None


def journal_size() -> int:
    from conversations.models import JournalEntry

    return JournalEntry.objects.count()


def message_visible(message_uuid: str) -> bool:
    from conversations.models import Message

    return Message.objects.filter(message_uuid=message_uuid).exists()


async def probe(url: str, stop: asyncio.Event, latencies: list[float], every: float) -> None:
    """Every `every` s: a message and a ping; from the answer, wait until the message is read."""
    conversation = str(uuid.uuid4())
    async with connect(url, max_size=None, compression=None) as ws:
        while not stop.is_set():
            message_uuid = str(uuid.uuid4())
            await ws.send(json.dumps(_message(conversation, "probe", message_uuid)))
            await ws.send(PING)
            await ws.recv()
            committed = time.perf_counter()
            while not await asyncio.to_thread(message_visible, message_uuid):
                await asyncio.sleep(0.002)
            latencies.append(time.perf_counter() - committed)
            await asyncio.sleep(every)


async def until_applied(poll: float = 0.005) -> float:
    while not await asyncio.to_thread(journal_empty):
        await asyncio.sleep(poll)
    return time.perf_counter()


async def ingest_run(
    url: str, workloads: list[list[str]], *, drain: bool = True, probe_every: float = 0.05
) -> tuple[float, float, list[float]]:
    """(seconds to the last ping's answer, seconds until applied, probe latencies)."""
    latencies: list[float] = []
    stop = asyncio.Event()
    started = time.perf_counter()
    probing = drain and probe_every > 0
    prober = asyncio.ensure_future(
        probe(url, stop, latencies, probe_every) if probing else stop.wait()
    )
    await asyncio.gather(*(stream(url, frames) for frames in workloads))
    acked = time.perf_counter()
    applied = await until_applied() if drain else acked
    stop.set()
    await prober
    return acked - started, applied - started, latencies


async def bare_run(url: str, workloads: list[list[str]]) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(stream(url, frames) for frames in workloads))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--minutes", type=float, default=3.0, help="recording per connection")
    parser.add_argument("--workers", type=int, default=1, help="worker processes during bursts")
    parser.add_argument(
        "--probe-every", type=float, default=0.05, help="seconds between probes (0: none)"
    )
    args = parser.parse_args()
    print("command: .venv/bin/python bench/ingest_throughput.py " + " ".join(sys.argv[1:]))
    tmp = tempfile.mkdtemp(prefix="bench-ingest-")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "REPLAY_VAR_DIR": tmp,
        "LOG_LEVEL": "WARNING",
        "REPLAY_EMBEDDED_WORKER": "0",
    }
    key, label, cleanup = scratch_project(env)
    print(f"database: {label}; {args.connections} connections; {args.workers} worker(s)")
    log = Path(tmp) / "daphne.log"
    server = DaphneProcess(free_port(), env, application="bench.bare_asgi:application", log=log)
    server.start()
    base = f"ws://127.0.0.1:{server.port}"
    ingest_url = f"{base}/ws/ingest/?key={key}"
    workers: list[WorkerProcess] = []

    def workload(seed: int) -> list[list[str]]:
        return [conversation_frames(seed + c, args.minutes) for c in range(args.connections)]

    try:
        bare_s, front_s, e2e_s, drain_s, latencies = [], [], [], [], []
        frames = nbytes = 0
        for round_number in range(args.rounds):
            # Fresh conversations every run, so ingest never sees a re-send.
            loads = workload(1000 * round_number)
            frames = sum(len(w) for w in loads)
            nbytes = sum(len(f.encode()) for w in loads for f in w)
            bare_s.append(asyncio.run(bare_run(f"{base}/ws/bare/", loads)))
            workers = [WorkerProcess(env, log=log) for _ in range(args.workers)]
            for worker in workers:
                worker.start()
            time.sleep(1.0)  # let the workers start before the clock does
            loads = workload(1000 * round_number + 500)
            acked, applied, probes = asyncio.run(
                ingest_run(ingest_url, loads, drain=bool(workers), probe_every=args.probe_every)
            )
            for worker in workers:
                worker.stop()
            if not workers:  # --workers 0: the front alone; empty the journal for the next run
                subprocess.run(
                    [sys.executable, "manage.py", "ingest_worker", "--drain"],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    capture_output=True,
                )
            front_s.append(acked)
            e2e_s.append(applied)
            drain_s.append(applied - acked)
            latencies += probes
        bare, front, e2e = (statistics.median(v) for v in (bare_s, front_s, e2e_s))
        print(
            f"{frames} frames, {nbytes / 1e6:.1f} MB a run, median of {args.rounds}:\n"
            f"  bare consumer:       {frames / bare:7,.0f} frames/s\n"
            f"  ingest, front:       {frames / front:7,.0f} frames/s  ratio {bare / front:.2f} "
            "(ping answered after the journal commit)\n"
            f"  ingest, end to end:  {frames / e2e:7,.0f} frames/s  ratio {bare / e2e:.2f} "
            "(until every frame is applied)\n"
            f"  drain after the last ping: {statistics.median(drain_s):.2f} s"
        )
        if latencies:
            print(
                f"  journal commit -> visible: p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms ({len(latencies)} probes)"
            )
        for count in (1, 2):
            loads = workload(90_000 + 1000 * count)
            frames = sum(len(w) for w in loads)
            asyncio.run(bare_run(ingest_url, loads))  # into the journal, no worker running
            workers = [WorkerProcess(env, log=log) for _ in range(count)]
            for worker in workers:
                worker.start()
            # The clock starts with the first entry applied: process start-up is not counted.
            while journal_size() >= frames:
                time.sleep(0.005)
            started = time.perf_counter()
            applied_from = journal_size()
            seconds = asyncio.run(until_applied(poll=0.02)) - started
            frames = applied_from
            for worker in workers:
                worker.stop()
            print(
                f"  {count} worker process(es) applying a {frames}-frame journal: "
                f"{frames / seconds:,.0f} frames/s ({frames} frames in {seconds:.1f} s)"
            )
    finally:
        for worker in workers:
            worker.stop()
        server.stop()
        cleanup()


if __name__ == "__main__":
    main()
