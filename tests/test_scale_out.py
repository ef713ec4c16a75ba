"""Several server processes and workers on one database, as production runs them."""

import asyncio
import json
import os

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.harness import DaphneProcess, WorkerProcess, free_port
from conversations.models import (
    JournalEntry,
    Message,
    PendingPart,
    RejectedFrame,
    RRWebBatch,
)
from conversations.selectors import recording_events_chunks
from tests import factories as f
from tests.conftest import database_url_for_subprocess, journal_applied

pytestmark = pytest.mark.django_db(transaction=True)

PING = '{"type":"ping"}'


class Cluster:
    """N Daphne processes without embedded workers, and M worker processes."""

    def __init__(self, fronts: int, workers: int) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": database_url_for_subprocess(),
            "PYTHONUNBUFFERED": "1",
            "REPLAY_EMBEDDED_WORKER": "0",
            "LOG_LEVEL": "WARNING",
        }
        self.fronts = [DaphneProcess(free_port(), env) for _ in range(fronts)]
        self.workers = [WorkerProcess(env) for _ in range(workers)]

    def urls(self, key: str) -> list[str]:
        return [f"ws://{front.address}/ws/ingest/?key={key}" for front in self.fronts]

    def start(self) -> None:
        for process in [*self.fronts, *self.workers]:
            process.start()

    def stop(self) -> None:
        for process in [*self.fronts, *self.workers]:
            process.stop()


@pytest.fixture
def cluster():
    started: list[Cluster] = []

    def make(*, fronts: int, workers: int) -> Cluster:
        made = Cluster(fronts, workers)
        started.append(made)
        made.start()
        return made

    yield make
    for made in started:
        made.stop()


class ResendingClient:
    """Sends as the reference client does: frames stay in an outbox until a ping after them
    is answered; when the connection is lost it connects to the next server and re-sends."""

    def __init__(self, urls: list[str], start: int = 0) -> None:
        self.urls = urls
        self.turn = start
        self.ws = None
        self.outbox: list[str] = []
        self.closed: list[int | None] = []  # close codes of connections the server ended

    async def send(self, frames: list[str]) -> None:
        """Send frames and a ping; return once the ping is answered."""
        unsent = list(frames)
        self.outbox += frames
        while True:
            try:
                if self.ws is None:
                    self.ws = await connect(self.urls[self.turn % len(self.urls)], max_size=None)
                    unsent = list(self.outbox)
                for frame in unsent:
                    await self.ws.send(frame)
                unsent = []
                await self.ws.send(PING)
                assert json.loads(await asyncio.wait_for(self.ws.recv(), 60)) == {"type": "ping"}
                self.outbox.clear()
                return
            except (ConnectionClosed, OSError) as exc:
                code = exc.rcvd.code if isinstance(exc, ConnectionClosed) and exc.rcvd else None
                self.closed.append(code)
                self.ws = None
                self.turn += 1
                await asyncio.sleep(0.2)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def conversation(batches: int = 6) -> tuple[str, list[list], list[str]]:
    """A conversation's uuid, its rrweb batches (event lists) and its chat messages."""
    uuid = f.new_uuid()
    events = [f.rrweb_events(count=120)]
    for n in range(1, batches):
        events.append(f.incremental_events(start=f.T0 + 20_000 * n, count=150))
    return uuid, events, [f"question {n} about {uuid[:8]}" for n in range(3)]


def assert_exact(conversations: list[tuple[str, list[list], list[str]]]) -> None:
    """Every recording reads back exactly, each batch and message once, nothing kept aside."""
    from django.db import close_old_connections

    from conversations.models import Conversation

    close_old_connections()  # a connection from before a database restart is replaced
    journal_applied(timeout=60)
    for uuid, batches, messages in conversations:
        stored = Conversation.objects.get(uuid=uuid)
        events = json.loads(b"".join(recording_events_chunks(stored)))
        assert events == [event for batch in batches for event in batch], uuid
        assert RRWebBatch.objects.filter(conversation=stored).count() == len(batches)
        assert sorted(Message.objects.filter(conversation=stored).values_list("body", flat=True))
        assert Message.objects.filter(conversation=stored).count() == len(messages)
    assert RejectedFrame.objects.count() == 0
    assert PendingPart.objects.count() == 0
    assert JournalEntry.objects.count() == 0


def batch_parts(uuid: str, index: int, events: list, parts: int) -> list[str]:
    kind = "init" if index == 0 else "events"
    return [f.dumps(p) for p in f.rrweb_parts(uuid, index, events, parts=parts, kind=kind)]


@pytest.mark.parametrize("fronts", [2, 4])
async def test_several_servers_and_workers_store_parts_split_across_servers_exactly(
    cluster, source, fronts
):
    running = cluster(fronts=fronts, workers=2)
    urls = running.urls(source.raw_key)
    conversations = [conversation() for _ in range(12)]

    async def stream(uuid: str, batches: list[list], messages: list[str]) -> list[int | None]:
        # One connection per server; each batch's parts go to every server in turn.
        clients = [ResendingClient(urls, start=n) for n in range(fronts)]
        for index, events in enumerate(batches):
            frames = [[part] for part in batch_parts(uuid, index, events, fronts)]
            if index < len(messages):
                frames[index % fronts].append(f.dumps(f.message(uuid, messages[index])))
            await asyncio.gather(*(c.send(fs) for c, fs in zip(clients, frames, strict=True)))
        for client in clients:
            await client.close()
        return [code for client in clients for code in client.closed]

    closed = await asyncio.gather(*(stream(*c) for c in conversations))
    assert [code for codes in closed for code in codes] == []  # none closed by a server
    await asyncio.to_thread(assert_exact, conversations)


async def test_a_server_killed_mid_stream_loses_and_doubles_nothing(cluster, source):
    running = cluster(fronts=2, workers=1)
    urls = running.urls(source.raw_key)
    conversations = [conversation(batches=8) for _ in range(10)]
    halfway = asyncio.Event()
    done = 0

    async def stream(number: int, uuid: str, batches: list[list], messages: list[str]) -> None:
        nonlocal done
        client = ResendingClient(urls, start=number)
        for index, events in enumerate(batches):
            frames = batch_parts(uuid, index, events, 2)
            if index < len(messages):
                frames.append(f.dumps(f.message(uuid, messages[index])))
            await client.send(frames[:1])
            if index == len(batches) // 2:
                done += 1
                if done == len(conversations) // 2:
                    halfway.set()
                await halfway.wait()
            await client.send(frames[1:])
        await client.close()

    async def crash() -> None:
        await halfway.wait()
        running.fronts[0].kill()

    await asyncio.gather(crash(), *(stream(n, *c) for n, c in enumerate(conversations)))
    await asyncio.to_thread(assert_exact, conversations)


async def test_a_worker_killed_mid_round_leaves_its_entries_to_another(cluster, source):
    running = cluster(fronts=1, workers=0)
    urls = running.urls(source.raw_key)
    conversations = [conversation(batches=10) for _ in range(20)]

    async def stream(uuid: str, batches: list[list], messages: list[str]) -> None:
        client = ResendingClient(urls)
        frames = [f.dumps(f.message(uuid, body)) for body in messages]
        for index, events in enumerate(batches):
            frames += batch_parts(uuid, index, events, 3)
        await client.send(frames)
        await client.close()

    await asyncio.gather(*(stream(*c) for c in conversations))
    waiting = await asyncio.to_thread(JournalEntry.objects.count)
    assert waiting > 500
    env = running.fronts[0].env
    doomed, survivor = WorkerProcess(env), WorkerProcess(env)
    running.workers += [doomed, survivor]
    doomed.start()
    # Kill it once it is well into the journal, in the middle of a round.
    for _ in range(1000):
        if await asyncio.to_thread(JournalEntry.objects.count) < waiting * 0.8:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the first worker never got a fifth of the way through the journal")
    doomed.kill()
    survivor.start()
    await asyncio.to_thread(assert_exact, conversations)


def _restart_postgresql(mode: str = "fast") -> None:
    import shutil
    import subprocess
    from pathlib import Path

    versions = sorted(Path("/etc/postgresql").glob("*/main"))
    if not versions or shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        pytest.skip("restarting PostgreSQL needs pg_ctlcluster and root")
    version = versions[-1].parent.name
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", mode],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def reconnects(transactional_db):
    """After the test, drop this process's connections: they did not survive the restart."""
    yield
    from django.db import connections

    for each in connections.all():
        each.close()


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgresql_restarted_mid_stream_loses_nothing(cluster, source, reconnects, mode):
    """Restarted, or killed (`immediate`: no checkpoint, recovery from the log on start).

    Killed, the workers' latest transactions, committed without waiting for the disk, may be
    lost whole: their journal entries come back and are applied again, exactly once.
    """
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("restarts the PostgreSQL server")
    running = cluster(fronts=2, workers=1)
    urls = running.urls(source.raw_key)
    conversations = [conversation(batches=10) for _ in range(8)]
    halfway = asyncio.Event()
    clients: list[ResendingClient] = []

    async def stream(number: int, uuid: str, batches: list[list], messages: list[str]) -> None:
        client = ResendingClient(urls, start=number)
        clients.append(client)
        for index, events in enumerate(batches):
            frames = batch_parts(uuid, index, events, 2)
            if index < len(messages):
                frames.append(f.dumps(f.message(uuid, messages[index])))
            if index == 3 and number == 0:
                halfway.set()
            await client.send(frames)
            await asyncio.sleep(0.05)
        await client.close()

    async def restart() -> None:
        await halfway.wait()
        await asyncio.to_thread(_restart_postgresql, mode)

    await asyncio.gather(restart(), *(stream(n, *c) for n, c in enumerate(conversations)))
    # The servers closed with 1011 rather than answer what they could not store.
    codes = [code for client in clients for code in client.closed]
    assert codes and set(codes) <= {1011, None}
    await asyncio.to_thread(assert_exact, conversations)
