"""The whole loop in Chromium: a shopper on the demo shop, an agent answering, staff replaying.

The shop's reference client records with the real rrweb recorder and streams to a real Daphne
process; the network is cut once and the server is killed and started again once on the way.
"""

import json
import re
from collections import Counter

import pytest

from conversations import selectors, storage
from conversations.models import Conversation, Message, RejectedFrame, RRWebBatch, TimelineEvent
from tests.conftest import journal_applied
from tests.test_browser import (  # noqa: F401  (browser: a fixture)
    ARTIFACTS,
    browser,
    in_thread,
    open_page,
)

pytestmark = pytest.mark.django_db(transaction=True)

CARD = "4242 4242 4242 4242"
CVC = "737"
ANSWER = "Yes, it works on every hob, induction included. It ships tomorrow."
SHOPPER_LINES = [
    "Hi! Does the copper kettle work on induction?",
    "Is it safe to pay by card here?",  # sent while the network is cut
    "Great, placing the order now.",  # sent while the server is down
]
PAGES = [
    "/demo/",
    "/demo/products/copper-kettle/",
    "/demo/cart/",
    "/demo/checkout/",
    "/demo/thanks/",
]
# What each page shows, for finding it again in the replay.
PAGE_TEXTS = [
    "Everyday things, made slowly.",
    "Add to cart",
    "Order summary",
    "Card number",
    "Thank you",
]
CLIENT = "window.ConversationReplayClient.current"


def wait_online(page) -> None:
    page.wait_for_function(f"() => {CLIENT} && {CLIENT}.status === 'online'")


def wait_delivered(page, timeout: int = 30_000) -> None:
    """Until everything recorded so far is acknowledged, and then applied to the archive."""
    page.evaluate(f"() => {CLIENT}.flush()")
    page.wait_for_function(
        f"() => {CLIENT}.status === 'online' && {CLIENT}.pending() === 0",
        timeout=timeout,
        polling=100,
    )
    in_thread(journal_applied)  # acknowledged means in the journal; a worker applies it next


def say(page, text: str) -> None:
    if page.locator("#chat-panel").is_hidden():
        page.click("#chat-launcher")
    page.locator("#chat-input").press_sequentially(text, delay=5)
    page.press("#chat-input", "Enter")
    page.click("#chat-close")


def stored(uuid: str) -> dict:
    conversation = Conversation.objects.get(uuid=uuid)
    batches = list(RRWebBatch.objects.filter(conversation=conversation).order_by("event_index"))
    return {
        "indexes": [b.event_index for b in batches],
        "pages": [s["href"] for s in selectors.segments([storage.row_meta(b) for b in batches])],
        "events": [json.loads(storage.row_events_json(b)) for b in batches],
        "messages": list(
            Message.objects.filter(conversation=conversation).values_list("author_name", "body")
        ),
        "timeline": [
            json.dumps(e.envelope) for e in TimelineEvent.objects.filter(conversation=conversation)
        ],
        "rejected": list(
            RejectedFrame.objects.filter(conversation_uuid=uuid).values_list("kind", "reason")
        ),
    }


def masked_inputs(events: list[list[dict]]) -> list[str]:
    """The text of every recorded input event (rrweb incremental source 5)."""
    return [
        event["data"]["text"]
        for batch in events
        for event in batch
        if event.get("type") == 3 and event["data"].get("source") == 5 and "text" in event["data"]
    ]


def test_a_shopper_visit_survives_a_cut_connection_and_a_server_restart_and_replays_whole(
    browser,  # noqa: F811
    demo_server,
    demo_proxy,
    staff_client,
):
    shop = f"127.0.0.1:{demo_proxy.port}"
    page = open_page(browser, shop, viewport=(1360, 860), timeout=15_000)
    page.goto(f"http://{shop}/demo/")
    wait_online(page)
    uuid = page.evaluate(f"() => {CLIENT}.conversationUuid")
    say(page, SHOPPER_LINES[0])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "e2e-shop-home.png"))

    page.click(".product-card >> text=Copper kettle")
    page.wait_for_url("**/demo/products/copper-kettle/")
    page.click("text=Add to cart")
    page.wait_for_url("**/demo/cart/")
    page.click("text=Go to checkout")
    page.wait_for_url("**/demo/checkout/")
    wait_online(page)
    assert page.evaluate(f"() => {CLIENT}.conversationUuid") == uuid  # kept across pages
    page.locator("#checkout-name").press_sequentially("Ada Lovelace", delay=5)
    page.locator("#checkout-email").press_sequentially("ada@example.com", delay=5)

    # The network goes away while the shopper types the card and asks a question.
    demo_proxy.cut()
    page.wait_for_function(f"() => {CLIENT}.status !== 'online'")
    page.locator("#checkout-card").press_sequentially(CARD, delay=15)
    page.locator("#checkout-expiry").press_sequentially("12 / 29", delay=15)
    page.locator("#checkout-cvc").press_sequentially(CVC, delay=15)
    say(page, SHOPPER_LINES[1])
    page.wait_for_timeout(1_200)
    assert page.evaluate(f"() => {CLIENT}.pending()") > 0
    assert "Reconnecting" in page.locator("#chat-status").inner_text()
    demo_proxy.restore()
    wait_delivered(page)

    # An agent answers from the console; the shopper's chat box shows the answer.
    agent = open_page(browser, shop, staff_client, viewport=(1360, 860), timeout=15_000)
    agent.goto(f"http://{shop}/demo/agent/{uuid}/")
    agent.locator("#agent-log li", has_text=SHOPPER_LINES[1]).wait_for()
    agent.fill("#agent-body", ANSWER)
    agent.press("#agent-body", "Enter")
    agent.locator("#agent-log li.staff", has_text=ANSWER).wait_for()
    page.click("#chat-launcher")
    page.locator("#chat-log .chat-line.agent", has_text=ANSWER).wait_for()
    page.screenshot(path=str(ARTIFACTS / "e2e-shop-checkout.png"))
    agent.screenshot(path=str(ARTIFACTS / "e2e-agent-console.png"))
    page.click("#chat-close")

    # The server process dies while the shopper writes; it comes back on the same port.
    demo_server.kill()
    say(page, SHOPPER_LINES[2])
    page.locator("#checkout-address").press_sequentially("12 Harbour Street", delay=10)
    page.wait_for_timeout(500)
    demo_server.start()
    wait_delivered(page)

    page.click("#place-order")
    page.wait_for_url("**/demo/thanks/")
    wait_online(page)
    wait_delivered(page)
    next_index = page.evaluate(f"() => {CLIENT}.state.nextEventIndex")

    page.context.close()  # the shopper has left
    agent.context.close()
    data = in_thread(stored, uuid)
    # Every batch exactly once and in order: the numbers the browser gave, with no gap.
    assert data["indexes"] == list(range(next_index))
    assert data["rejected"] == []
    assert [re.sub(r"^http://[^/]+", "", href) for href in data["pages"]] == PAGES
    # The card was typed and recorded, but only ever as a mask.
    everything = json.dumps(data["events"]) + json.dumps(data["timeline"]) + str(data)
    for secret in (CARD, CARD.replace(" ", ""), "4242 4242", "ada@example.com"):
        assert secret not in everything
    typed = masked_inputs(data["events"])
    assert "*" * len(CARD) in typed
    assert all(set(text) <= {"*"} for text in typed)
    # The transcript holds every message once.
    assert Counter(body for _, body in data["messages"]) == Counter([*SHOPPER_LINES, ANSWER])

    # Staff replay the visit: every page the shopper saw, and the chat beside it.
    staff = open_page(browser, shop, staff_client, viewport=(1360, 860), timeout=15_000)
    staff.goto(f"http://{shop}/conversations/{uuid}/")
    staff.wait_for_function("() => window.replayState && window.replayState.firstFrameAt !== null")
    visited = staff.locator("#segments").inner_text()
    for path in PAGES:
        assert path in visited
    stage = staff.frame_locator("#stage iframe").locator("body")
    for number, text in enumerate(PAGE_TEXTS):
        staff.locator("#segments button.segment").nth(number).click()
        stage.filter(has_text=text).wait_for(timeout=5_000)
    transcript = staff.locator("#transcript").inner_text()
    for line in [*SHOPPER_LINES, ANSWER]:
        assert line in transcript
    staff.screenshot(path=str(ARTIFACTS / "e2e-staff-replay.png"))
