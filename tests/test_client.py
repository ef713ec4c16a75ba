"""The reference client in Chromium: big batches in checked parts, and a wrong key left alone."""

import json

import pytest

from conversations import storage
from conversations.demo import demo_key_ensure
from conversations.keys import ingest_key_revoke
from conversations.models import RejectedFrame, RRWebBatch
from tests.test_browser import browser, in_thread  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = "window.ConversationReplayClient.current"
# Astral characters (two UTF-16 units, four UTF-8 bytes) beside three- and one-byte ones, so
# part boundaries fall everywhere, including between the halves of a pair if cut naively.
BIG_TEXT = "🫖 Kettle ☕ ünïcödé 🍵 " * 4000


def test_a_page_bigger_than_a_frame_is_sent_in_checked_parts_and_stored_whole(
    browser,  # noqa: F811
    demo_server,
):
    page = browser.new_page()
    frames: list[dict] = []

    def watch(socket) -> None:
        socket.on("framesent", lambda payload: frames.append(json.loads(payload)))

    page.on("websocket", watch)
    page.goto(f"http://{demo_server.address}/demo/")
    page.wait_for_function(f"() => {CLIENT} && {CLIENT}.status === 'online'")
    uuid = page.evaluate(f"() => {CLIENT}.conversationUuid")
    page.evaluate(
        "(text) => { const p = document.createElement('p'); p.id = 'big'; p.textContent = text;"
        " document.querySelector('main').append(p); }",
        BIG_TEXT,
    )
    page.evaluate(f"() => {CLIENT}.flush()")
    page.wait_for_function(f"() => {CLIENT}.pending() === 0", polling=100)

    parts = [
        frame["event_rrweb"]
        for frame in frames
        if frame.get("event_type") == "rrweb" and frame["event_rrweb"]["data_total_parts"] > 1
    ]
    assert len({part["event_index"] for part in parts}) >= 1
    assert all(len(part["data"].encode("utf-8")) <= 32 * 1024 for part in parts)

    def stored() -> tuple[list[str], list]:
        batches = RRWebBatch.objects.filter(conversation__uuid=uuid).order_by("event_index")
        texts = [storage.row_events_json(b).decode() for b in batches]
        return texts, list(RejectedFrame.objects.values_list("reason", flat=True))

    texts, rejected = in_thread(stored)
    assert rejected == []
    decoded = [json.dumps(json.loads(text), ensure_ascii=False) for text in texts]
    assert any(BIG_TEXT in text for text in decoded)


def test_a_revoked_key_is_not_retried_and_the_shopper_is_told(browser, demo_server):  # noqa: F811
    in_thread(lambda: ingest_key_revoke(key=demo_key_ensure()[0]))
    page = browser.new_page()
    sockets: list = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"http://{demo_server.address}/demo/")
    page.wait_for_function(f"() => {CLIENT} && {CLIENT}.status === 'unauthorised'")
    page.click("#chat-launcher")
    assert "unavailable" in page.locator("#chat-status").inner_text()
    page.wait_for_timeout(2_000)
    assert len(sockets) == 1
