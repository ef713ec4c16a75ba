"""Staff live view latency: a shopper's message sent until a watching staff page receives it.

A real Daphne process serves many open conversations at once. Each has a shopper socket
streaming as the reference client does (an rrweb batch every 1–2 s, a ping 150 ms after
anything it sends) and a staff live socket watching it, signed in with a session cookie. The
shopper also sends a chat message every 2–4 s, brisker than people type, for enough samples.
Measured: from sending a message frame (with a body no other carries) to the watcher
receiving the live update that holds it; a message never shown counts as infinitely late.
Profiles:

- memory: the in-memory channel layer with the worker embedded in Daphne (`make run`);
- redis: the Redis channel layer (REDIS_URL), no embedded worker, one `manage.py
  ingest_worker` process (production's shape).

Each profile also runs with one conversation, its baseline; the ratio is against it.

    .venv/bin/python bench/live_latency.py [--conversations 100] [--seconds 60] [--rounds 2]
        [--profiles memory,redis]

DATABASE_URL picks the database (default: a fresh SQLite file in a temporary directory);
REDIS_URL (default redis://127.0.0.1:6379/8) the Redis of the redis profile, under a channel
prefix of its own.
"""

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
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
PING_AFTER = 0.15  # the reference client pings this long after it sends anything
WARM_UP = 5.0  # seconds: every conversation's first page load arrives in these
GRACE = 5.0  # seconds after the last message for it to be shown; later counts as lost
CUSTOMER = "arn:participant:shopper"
TARGET_P99 = 0.250  # seconds, with 100 open conversations


def _dumps(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


def new_conversation(conversation: str) -> str:
    participant = {
        "conversation_participant_arn": CUSTOMER,
        "conversation_participant_name": "Shopper",
        "conversation_participant_uuid": str(uuid.uuid4()),
        "joined_dts": "2026-01-15T14:00:00Z",
        "status": "active",
    }
    summary = {
        "conversation_uuid": conversation,
        "conversation_arn": f"arn:conversation:{conversation}",
        "merchant_id": "BENCH",
        "medium": "websocket",
        "start_dts": "2026-01-15T14:00:00Z",
        "closed": False,
        "message_count": 0,
        "participants": [participant],
    }
    return _dumps(
        {
            "type": "event",
            "event_type": "new conversation",
            "conversation_uuid": conversation,
            "event_new_conversation": summary,
        }
    )


def message(conversation: str, body: str) -> str:
    now = int(time.time() * 1000)
    return _dumps(
        {
            "type": "message",
            "conversation_uuid": conversation,
            "message": {
                "conversation_message_uuid": str(uuid.uuid4()),
                "author_conversation_participant_arn": CUSTOMER,
                "author_conversation_participant_name": "Shopper",
                "body": body,
                "message_epoch": now,
                "type": "message",
                "media_urls": [],
            },
        }
    )


@dataclass
class Conversation:
    uuid: str
    batches: list[list[str]]  # each batch's frames (its parts), in order
    rng: random.Random
    sent: dict[str, float] = field(default_factory=dict)  # body -> perf_counter at send


def conversation_make(seed: int, seconds: float) -> Conversation:
    conversation = str(uuid.uuid4())
    # make_session gives about one batch per 3 s of recording: three times the run is enough.
    batches: list[list[str]] = []
    for index, batch in enumerate(make_session(minutes=max(1.0, seconds / 20), seed=seed)):
        batches.append([_dumps(f) for f in rrweb_frames(conversation, [batch], start_index=index)])
    return Conversation(conversation, batches, random.Random(seed))


async def _read_pings(ws) -> None:
    async for _ in ws:
        pass


async def shopper(ws, conv: Conversation, *, go: asyncio.Event, until: float) -> None:
    """Stream batches and messages at the reference client's pace until `until`."""
    reader = asyncio.ensure_future(_read_pings(ws))
    await go.wait()
    loop = asyncio.get_running_loop()
    rng = conv.rng
    now = loop.time()
    next_batch = now + rng.uniform(0, 2)  # conversations are not in step
    next_message = now + rng.uniform(1, 4)
    ping_at: float | None = None
    batch = number = 0
    try:
        while (now := loop.time()) < until:
            if now >= next_batch:
                for frame in conv.batches[batch]:
                    await ws.send(frame)
                batch += 1
                next_batch = next_batch + rng.uniform(1, 2) if batch < len(conv.batches) else until
                ping_at = ping_at or now + PING_AFTER
            if now >= next_message:
                number += 1
                body = f"Question {number} from {conv.uuid}"
                frame = message(conv.uuid, body)
                conv.sent[body] = time.perf_counter()
                await ws.send(frame)
                next_message += rng.uniform(2, 4)
                ping_at = ping_at or now + PING_AFTER
            if ping_at is not None and now >= ping_at:
                await ws.send(PING)
                ping_at = None
            wake = min(t for t in (next_batch, next_message, ping_at, until) if t is not None)
            await asyncio.sleep(max(0.0, wake - loop.time()))
        await ws.send(PING)
    finally:
        reader.cancel()


async def watcher(ws, conv: Conversation, shown: list[tuple[float, float]]) -> None:
    """Note when each of the conversation's messages arrives, until the socket is closed."""
    async for raw in ws:
        arrived = time.perf_counter()
        if '"kind":"message"' not in raw:
            continue
        for item in json.loads(raw).get("items", []):
            sent = conv.sent.pop(item.get("body"), None) if item.get("kind") == "message" else None
            if sent is not None:
                shown.append((sent, arrived - sent))


def conversations_stored(uuids: list[str]) -> int:
    from conversations.models import Conversation as Stored

    return Stored.objects.filter(uuid__in=uuids).count()


@dataclass
class Result:
    latencies: list[float]  # seconds, of the messages sent after the warm-up; lost ones inf
    lost: int


async def run_case(
    address: str, key: str, cookie: str, conversations: list[Conversation], seconds: float
) -> Result:
    ingest = f"ws://{address}/ws/ingest/?key={key}"
    options = {"max_size": None, "compression": None, "ping_interval": None}
    shoppers = [await connect(ingest, **options) for _ in conversations]
    for ws, conv in zip(shoppers, conversations, strict=True):
        await ws.send(new_conversation(conv.uuid))
        await ws.send(PING)
        assert json.loads(await asyncio.wait_for(ws.recv(), 30)) == {"type": "ping"}
    uuids = [conv.uuid for conv in conversations]
    deadline = time.monotonic() + 60
    while await asyncio.to_thread(conversations_stored, uuids) < len(uuids):
        if time.monotonic() > deadline:
            raise RuntimeError("the conversations were not stored within 60 s")
        await asyncio.sleep(0.05)
    watchers = []
    for conv in conversations:
        ws = await connect(
            f"ws://{address}/ws/live/{conv.uuid}/",
            origin=f"http://{address}",
            additional_headers={"Cookie": cookie},
            **options,
        )
        caught_up = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert caught_up["conversation_uuid"] == conv.uuid
        watchers.append(ws)
    shown: list[tuple[float, float]] = []
    readers = [
        asyncio.ensure_future(watcher(ws, conv, shown))
        for ws, conv in zip(watchers, conversations, strict=True)
    ]
    go = asyncio.Event()
    started = time.perf_counter()
    until = asyncio.get_running_loop().time() + seconds
    streams = [
        asyncio.ensure_future(shopper(ws, conv, go=go, until=until))
        for ws, conv in zip(shoppers, conversations, strict=True)
    ]
    go.set()
    await asyncio.gather(*streams)
    grace = time.monotonic() + GRACE
    while any(conv.sent for conv in conversations) and time.monotonic() < grace:
        await asyncio.sleep(0.05)
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in shoppers + watchers), return_exceptions=True)
    lost = sum(
        1 for conv in conversations for sent in conv.sent.values() if sent >= started + WARM_UP
    )
    latencies = [latency for sent, latency in shown if sent >= started + WARM_UP]
    return Result(latencies + [math.inf] * lost, lost)


def staff_cookie() -> str:
    """A session cookie for a staff account with the view permission, made directly."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Permission, User
    from django.contrib.sessions.backends.db import SessionStore

    user = User.objects.create_user(
        username=f"bench-{uuid.uuid4().hex[:8]}", password=uuid.uuid4().hex, is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0, help="streaming per case")
    parser.add_argument(
        "--baseline-seconds", type=float, default=120.0, help="for the 1-conversation case"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profiles", default="memory,redis")
    args = parser.parse_args()
    print("command: .venv/bin/python bench/live_latency.py " + " ".join(sys.argv[1:]))
    profiles = args.profiles.split(",")
    tmp = tempfile.mkdtemp(prefix="bench-live-")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REPLAY_VAR_DIR": tmp, "LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/8")
    os.environ.pop("REDIS_URL", None)  # this process only reads the database
    os.environ["REPLAY_VAR_DIR"] = tmp  # and signs the session with the server's secret key
    key, label, cleanup = scratch_project(env)
    cookie = staff_cookie()
    print(
        f"database: {label}; {args.conversations} conversations for {args.seconds:g} s, "
        f"1 for {args.baseline_seconds:g} s"
    )
    log = Path(tmp) / "daphne.log"

    def profile_env(profile: str) -> dict[str, str]:
        if profile == "memory":
            return {**env, "REPLAY_EMBEDDED_WORKER": "1"}
        prefix = f"livebench{uuid.uuid4().hex[:8]}"
        return {
            **env,
            "REPLAY_EMBEDDED_WORKER": "0",
            "REDIS_URL": redis_url,
            "REPLAY_CHANNEL_PREFIX": prefix,
        }

    results: dict[tuple[str, int], list[Result]] = {}
    seed = 0
    try:
        for _ in range(args.rounds):
            for profile in profiles:
                for count in (1, args.conversations):
                    case_env = profile_env(profile)
                    server = DaphneProcess(free_port(), case_env, log=log)
                    worker = WorkerProcess(case_env, log=log) if profile == "redis" else None
                    server.start()
                    if worker is not None:
                        worker.start()
                    seconds = args.baseline_seconds if count == 1 else args.seconds
                    conversations = [conversation_make(seed + n, seconds) for n in range(count)]
                    seed += count
                    try:
                        result = asyncio.run(
                            run_case(server.address, key, cookie, conversations, seconds)
                        )
                    finally:
                        if worker is not None:
                            worker.stop()
                        server.stop()
                    results.setdefault((profile, count), []).append(result)
                    print(f"  {profile:6} {count:3} conversation(s): {_summary([result])}")
        print(f"median over {args.rounds} round(s) of each percentile:")
        for profile in profiles:
            base = results[(profile, 1)]
            many = results[(profile, args.conversations)]
            ratios = "  ratio to 1: p50 {:.2f}, p99 {:.2f}".format(
                *(_median_of(many, share) / _median_of(base, share) for share in (0.5, 0.99))
            )
            met = "met" if _median_of(many, 0.99) < TARGET_P99 else "NOT met"
            print(f"  {profile:6}   1 conversation:  {_summary(base)}")
            print(f"  {profile:6} {args.conversations:3} conversations: {_summary(many)}")
            print(f"  {profile:6} {ratios}; target p99 < {TARGET_P99 * 1000:.0f} ms: {met}")
    finally:
        cleanup()


def _median_of(results: list[Result], share: float) -> float:
    return statistics.median(percentile(r.latencies, share) for r in results)


def _summary(results: list[Result]) -> str:
    p50, p95, p99 = (_median_of(results, share) * 1000 for share in (0.5, 0.95, 0.99))
    samples = sum(len(r.latencies) for r in results)
    lost = sum(r.lost for r in results)
    return (
        f"p50 {p50:4.0f} ms, p95 {p95:4.0f} ms, p99 {p99:4.0f} ms ({samples} messages, {lost} lost)"
    )


if __name__ == "__main__":
    main()
