"""The replay page over a real Daphne: its head (styles, script) goes out before the body.

The browser starts fetching the bundle while the server still reads the recording, so the
first frame waits for the slower of the two, not for both in turn.
"""

import socket
import threading
import time

import pytest
from django.db import connection, transaction

from conversations.models import AuditLog

pytestmark = pytest.mark.django_db(transaction=True)


def _get(address: str, path: str, cookie: str) -> socket.socket:
    host, port = address.split(":")
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    return sock


def _read_until(sock: socket.socket, marker: bytes, received: bytearray, timeout: float) -> bool:
    sock.settimeout(0.2)
    deadline = time.monotonic() + timeout
    while marker not in received and time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        if not data:
            break
        received += data
    return marker in received


def _hold_audit_writes(locked: threading.Event, release: threading.Event) -> None:
    """Keep the audit log from being written (the page records the view before building)."""
    from django.db import connections

    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"LOCK TABLE {AuditLog._meta.db_table} IN EXCLUSIVE MODE")
        # SQLite: the settings begin every transaction IMMEDIATE, holding the one write lock.
        locked.set()
        release.wait(30)
    connections.close_all()


def test_the_page_head_arrives_while_the_server_still_builds_the_page(
    daphne_server, staff_client, packed_conversation
):
    conversation = packed_conversation(pages=2)
    cookie = f"sessionid={staff_client.cookies['sessionid'].value}"
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_audit_writes, args=(locked, release))
    holder.start()
    try:
        assert locked.wait(10)
        sock = _get(daphne_server, f"/conversations/{conversation.uuid}/", cookie)
        received = bytearray()
        assert _read_until(sock, b"</head>", received, timeout=10), bytes(received)[:500]
        head = bytes(received)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"dist/replay." in head and b".js" in head and b"defer" in head
        assert b"dist/app." in head and b".css" in head
        # The body needs the audit record first: not shown while it cannot be written.
        assert not _read_until(sock, b"</html>", received, timeout=1.5)
        assert b"replay-start" not in received
    finally:
        release.set()
        holder.join(30)
    assert _read_until(sock, b"</html>", received, timeout=20)
    sock.close()
    page = bytes(received)
    assert b'id="replay-start"' in page and b'id="transcript' in page
    assert page.count(b"</head>") == 1
    assert AuditLog.objects.filter(
        action=AuditLog.Action.VIEW, conversation_uuid=conversation.uuid, username="agent"
    ).exists()


async def _page(response) -> str:
    from asgiref.sync import sync_to_async
    from django.db import connections

    page = b"".join([chunk async for chunk in response.streaming_content]).decode()
    # The view's database work ran on asgiref's shared thread: close what it opened there.
    await sync_to_async(connections.close_all)()
    return page


async def test_a_failure_after_the_head_went_out_is_said_in_the_page(
    async_client, staff_user, packed_conversation, monkeypatch
):
    from asgiref.sync import sync_to_async

    from conversations import selectors

    conversation = await sync_to_async(packed_conversation)(pages=2)
    await async_client.aforce_login(staff_user)

    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(selectors, "replay_data", broken)
    response = await async_client.get(f"/conversations/{conversation.uuid}/")
    assert response.status_code == 200 and response.streaming
    page = await _page(response)
    assert page.count("</head>") == 1 and "dist/replay." in page.split("</head>")[0]
    assert "could not be shown" in page and page.rstrip().endswith("</html>")
    assert 'id="replay-start"' not in page


async def test_a_conversation_deleted_after_the_head_went_out_is_said_in_the_page(
    async_client, staff_user, packed_conversation, monkeypatch
):
    from asgiref.sync import sync_to_async

    from conversations import selectors

    conversation = await sync_to_async(packed_conversation)(pages=2)
    await async_client.aforce_login(staff_user)
    monkeypatch.setattr(selectors, "replay_data", lambda **kwargs: None)
    response = await async_client.get(f"/conversations/{conversation.uuid}/")
    page = await _page(response)
    assert "No such conversation" in page and 'id="replay-start"' not in page
