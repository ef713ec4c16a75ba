"""Shared fixtures. Services a test needs are required, not optional, when CI says so."""

import os

import pytest

from conversations.keys import ingest_key_create

REQUIRE_SERVICES = os.environ.get("REPLAY_REQUIRE_SERVICES") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` is false; in CI (REPLAY_REQUIRE_SERVICES=1) fail instead."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def source(db):
    """An ingest key and its raw value."""
    key, raw_key = ingest_key_create(name="shop.example")
    key.raw_key = raw_key
    return key


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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.fixture
def daphne_server(transactional_db):
    """A real Daphne process serving the project on a free port, on the test database."""
    import subprocess
    import sys
    import time

    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess(), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "replay.asgi:application",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    import socket

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited: {process.stdout.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("daphne did not start listening within 20 s")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
