"""Shared fixtures. Services a test needs are required, not optional, when CI says so."""

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.harness import DaphneProcess, free_port
from conversations.keys import ingest_key_create

REQUIRE_SERVICES = os.environ.get("REPLAY_REQUIRE_SERVICES") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` is false; in CI (REPLAY_REQUIRE_SERVICES=1) fail instead."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _no_embedded_worker(settings):
    """In this process, tests apply the journal themselves (`drain`), when they choose.

    Daphne processes started by tests run their embedded worker as in production.
    """
    settings.REPLAY_EMBEDDED_WORKER = False


@pytest.fixture
def drain():
    """Apply everything the journal holds, as a worker would: `await drain()`."""
    from channels.db import database_sync_to_async

    from conversations.ingest.worker import journal_drain

    async def run() -> int:
        return await database_sync_to_async(journal_drain)()

    return run


def journal_applied(timeout: float = 20) -> None:
    """Wait until another process's workers have applied the whole journal."""
    from conversations.models import JournalEntry

    deadline = time.monotonic() + timeout
    while JournalEntry.objects.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"the journal was not applied within {timeout:g} s")
        time.sleep(0.02)


def poll[T](check: Callable[[], T], *, timeout: float = 10, what: str = "the condition") -> T:
    """Call `check` until it returns something truthy, and return that; fail after `timeout` s.

    A ping is answered once frames are safe, and they may be stored a moment later: tests wait
    for what they sent to become visible instead of expecting it at once.
    """
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)
    return result


@pytest.fixture(autouse=True)
def _forget_cached_recordings():
    """Each test starts with empty recording caches: they are keyed by row ids, which a
    rolled-back test transaction hands out again for other content."""
    from conversations import storage

    storage.events_cache_clear()


@pytest.fixture
def source(db):
    """An ingest key and its raw value."""
    key, raw_key = ingest_key_create(name="shop.example")
    key.raw_key = raw_key
    return key


@pytest.fixture
def packed_conversation(db):
    """Make conversations whose page loads are packed: the first pack is the others' base."""
    from conversations import ingest
    from conversations.models import Conversation, RecordingPack
    from conversations.packing import recordings_pack
    from tests import factories as f

    def make(pages: int = 4, *, site: str = "shop.example") -> Conversation:
        uuid = f.new_uuid()
        frames = [f.new_conversation(uuid), f.message(uuid)]
        for page in range(pages):
            start = f.T0 + 100_000 * page
            events = f.rrweb_events(start=start, href=f"https://{site}/p{page}")
            frames.append(f.rrweb_frame(uuid, 4 * page, events, kind="init"))
            frames += [
                f.rrweb_frame(uuid, 4 * page + n, f.incremental_events(start=start + 500 * n))
                for n in range(1, 4)
            ]
        ingest.items_apply([ingest.item_from_text(f.dumps(frame)) for frame in frames], source=None)
        recordings_pack(finished_only=False)
        conversation = Conversation.objects.get(uuid=uuid)
        packs = RecordingPack.objects.filter(conversation=conversation)
        assert packs.count() == pages and packs.filter(base__isnull=False).exists()
        return conversation

    return make


@pytest.fixture
def staff_user(db, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(
        username="agent", password="correct horse battery staple", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    return user


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def role_user(db, django_user_model):
    """Make a staff account in one of the roles (viewer, exporter, administrator)."""
    from django.contrib.auth.models import Group

    from conversations.permissions import roles_ensure

    def make(role: str, username: str | None = None):
        roles_ensure()  # a transactional test before this one may have flushed the groups
        user = django_user_model.objects.create_user(
            username=username or role, password="correct horse battery staple", is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def exporter_user(role_user):
    return role_user("exporter")


@pytest.fixture
def exporter_client(client, exporter_user):
    client.force_login(exporter_user)
    return client


def database_url_for_subprocess() -> str:
    """A DATABASE_URL that points another process at the database this test is using."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    user = settings.get("USER") or ""
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


@contextmanager
def running_daphne(*, log: Path | None = None, **env: str) -> Iterator[DaphneProcess]:
    """A real Daphne process on a free port serving the test database, with `env` added.

    `log`: a file its output is appended to (else it is dropped).
    """
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_subprocess(),
        "PYTHONUNBUFFERED": "1",
        **env,
    }
    server = DaphneProcess(free_port(), env, log=log)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def daphne_server(transactional_db):
    """A real Daphne process serving the project on a free port, on the test database."""
    with running_daphne() as server:
        yield server.address


@pytest.fixture
def demo_server(transactional_db):
    """A restartable Daphne process with the demo shop on, serving the test database."""
    with running_daphne(REPLAY_DEMO="1") as server:
        yield server


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory) -> Path:
    """Static files collected as `make run` and `make production` collect them."""
    root = tmp_path_factory.mktemp("static")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "replay.settings", "STATIC_ROOT": str(root)}
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        check=True,
    )
    return root


@pytest.fixture
def server_without_demo(transactional_db, collected_static):
    """A Daphne process on the project's own settings with the demo off, as in production."""
    with running_daphne(
        DJANGO_SETTINGS_MODULE="replay.settings",
        REPLAY_DEMO="0",
        DEBUG="0",
        STATIC_ROOT=str(collected_static),
    ) as server:
        yield server.address


class CuttableProxy:
    """A TCP proxy in front of a server whose connections a test can cut and then restore.

    While cut, every open connection is dropped and new ones are closed as soon as they are
    accepted, as when a laptop loses its network.
    """

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.is_cut = False
        self.sockets: set = set()
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if self.is_cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, upstream))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source, target) -> None:
        import socket

        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
                with self.lock:
                    self.sockets.discard(sock)

    def cut(self) -> None:
        import socket

        self.is_cut = True
        with self.lock:
            sockets = list(self.sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self) -> None:
        self.is_cut = False

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def demo_proxy(demo_server):
    """The demo server behind a proxy whose connections can be cut."""
    proxy = CuttableProxy(demo_server.port)
    try:
        yield proxy
    finally:
        proxy.close()
