"""The reference client in Chromium: big batches in checked parts, and a wrong key left alone."""

import json

import pytest

from conversations import storage
from conversations.keys import ingest_key_revoke
from conversations.models import RejectedFrame, RRWebBatch
from demo.keys import demo_key_ensure
from tests.conftest import journal_applied
from tests.test_browser import browser, in_thread  # noqa: F401  (browser: a fixture)

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = "window.ConversationReplayClient.current"
# Astral characters (two UTF-16 units, four UTF-8 bytes) beside three- and one-byte ones, so
# part boundaries fall everywhere, including between the halves of a pair if cut naively.
BIG_TEXT = "🫖 Kettle ☕ ünïcödé 🍵 " * 4000
# Every WebSocket the page opens records the code it was closed with, in order.
CLOSE_CODES_KEPT = """
window.closeCodes = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("close", (event) => window.closeCodes.push(event.code));
  }
};
"""


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
    in_thread(journal_applied)  # acknowledged means in the journal; a worker applies it next

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
    page.add_init_script(CLOSE_CODES_KEPT)
    page.goto(f"http://{demo_server.address}/demo/")
    page.wait_for_function(f"() => {CLIENT} && {CLIENT}.status === 'unauthorised'")
    page.click("#chat-launcher")
    assert "unavailable" in page.locator("#chat-status").inner_text()
    page.wait_for_timeout(2_000)
    # Once refused with 4401 the client never tries again. (A socket closed before that for
    # another reason, say a server restarting, is rightly tried again: not a wrong key.)
    closes = page.evaluate("() => window.closeCodes")
    assert closes[-1:] == [4401] and 4401 not in closes[:-1]
    assert len(sockets) == len(closes), f"a socket opened after the refusal: {closes}"


def test_a_message_over_the_servers_hard_cap_is_kept_aside_visibly_and_never_sent(
    browser,  # noqa: F811
    demo_server,
):
    page = browser.new_page()
    sent: list[str] = []
    page.on("websocket", lambda socket: socket.on("framesent", lambda data: sent.append(data)))
    page.goto(f"http://{demo_server.address}/demo/")
    page.wait_for_function(f"() => {CLIENT} && {CLIENT}.status === 'online'")
    page.evaluate(f"() => {{ {CLIENT}.options.maxFrameBytes = 4096; }}")
    page.click("#chat-launcher")
    page.fill("#chat-input", "A very long question " * 300)
    page.press("#chat-input", "Enter")
    page.fill("#chat-input", "A short one")
    page.press("#chat-input", "Enter")
    page.wait_for_function(f"() => {CLIENT}.pending() === 0", polling=100)
    assert "not sent: too large" in page.locator("#chat-log").inner_text()
    kept = page.evaluate(f"() => {CLIENT}.keptAside()")
    assert len(kept) == 1 and "over the server's limit of 4096" in kept[0]["reason"]
    assert not any("A very long question" in frame for frame in sent)
    assert any("A short one" in frame for frame in sent)


def test_a_frame_the_server_refuses_with_1009_is_set_aside_not_sent_in_a_loop(
    browser,  # noqa: F811
    demo_server,
):
    page = browser.new_page()
    sockets: list = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.goto(f"http://{demo_server.address}/demo/")
    page.wait_for_function(f"() => {CLIENT} && {CLIENT}.status === 'online'")
    # A client that believes the server takes more than it does: 17 MiB goes out, and the
    # server's hard cap (16 MiB) answers with 1009.
    page.evaluate(f"() => {{ {CLIENT}.options.maxFrameBytes = 64 * 1024 * 1024; }}")
    page.evaluate(f"() => {CLIENT}.sendMessage('x'.repeat(17 * 1024 * 1024))")
    page.wait_for_function(f"() => {CLIENT}.keptAside().length === 1", timeout=20_000)
    reason = page.evaluate(f"() => {CLIENT}.keptAside()[0].reason")
    assert "exceeds payload limit of 16777216" in reason
    page.wait_for_function(f"() => {CLIENT}.status === 'online' && {CLIENT}.pending() === 0")
    page.wait_for_timeout(1_000)
    assert len(sockets) == 2  # one reconnection, no loop
