"""The staff pages in a real browser (Debian's Chromium) against a real Daphne process."""

import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from playwright.sync_api import expect

from bench.harness import CHROMIUM_ARGS
from conversations import ingest
from tests import factories as f
from tests.conftest import journal_applied, poll, require

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
BUNDLE = ROOT / "static" / "dist" / "replay.js"


@pytest.fixture(scope="module")
def browser():
    require(shutil.which("chromium") is not None, "Debian's chromium is not installed")
    require(BUNDLE.exists(), "the front-end bundle is not built (npm run build)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls these tests make
    # between browser steps are ordinary synchronous code all the same.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def open_page(browser, server: str, client=None, *, viewport=(1440, 900), timeout: int = 10_000):
    """A page in a fresh context, signed in as `client`'s session user when one is given."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    if client is not None:
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": f"http://{server}/",
                }
            ]
        )
    page = context.new_page()
    page.set_default_timeout(timeout)
    return page


def in_thread(function, *args, **kwargs):
    """Run ORM work off the thread Playwright's event loop lives on (so live updates go out)."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def run():
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _received(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def apply(frame: dict, *, received_ms: int | None = None) -> None:
    received_at = _received(received_ms) if received_ms is not None else None
    ingest.items_apply(
        [ingest.item_from_text(f.dumps(frame), received_at=received_at)], source=None
    )


def page_events(start: int, text: str, *, href: str, count: int = 20) -> list:
    events = f.rrweb_events(start=start, count=count, href=href)
    events[1]["data"]["node"]["childNodes"][0]["childNodes"][0]["childNodes"][0]["textContent"] = (
        text
    )
    return events


def seed_conversation(**kwargs) -> str:
    return in_thread(_seed_conversation, **kwargs)


def _seed_conversation(*, closed: bool = True, skew_ms: int = 0) -> str:
    """A chat with two page loads; the customer's clock runs `skew_ms` behind the server."""
    uuid = f.new_uuid()
    server_t0 = f.T0 + skew_ms
    apply(
        f.new_conversation(
            uuid,
            participants=[
                f.participant("Ada Shopper", email="ada@example.com"),
                f.participant("Bob Agent"),
            ],
        ),
        received_ms=server_t0,
    )
    first = page_events(f.T0, "Blue kettle, 39 EUR", href="https://shop.example/kettle")
    second = page_events(f.T0 + 20_000, "Checkout: 2 items", href="https://shop.example/cart")
    apply(f.rrweb_frame(uuid, 0, first, kind="init"), received_ms=first[-1]["timestamp"] + skew_ms)
    apply(
        f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 5_000, count=100)),
        received_ms=f.T0 + 10_000 + skew_ms,
    )
    apply(
        f.rrweb_frame(uuid, 2, second, kind="init"),
        received_ms=second[-1]["timestamp"] + 150 + skew_ms,
    )
    apply(
        f.rrweb_frame(uuid, 3, f.incremental_events(start=f.T0 + 25_000, count=100)),
        received_ms=f.T0 + 30_000 + skew_ms,
    )
    lines = [
        (2_000, "Ada Shopper", "Hi, is the blue kettle in stock?"),
        (6_000, "Bob Agent", "Yes, we have 12 left. Want me to add one?"),
        (21_000, "Ada Shopper", "I'm at checkout now, can I use a coupon?"),
        (27_000, "Bob Agent", "Sure: use WELCOME10 for 10% off."),
    ]
    for at, author, body in lines:
        apply(f.message(uuid, body, epoch=server_t0 + at, author=author))
    apply(
        f.event(
            "typing",
            uuid,
            event_typing={"author_conversation_participant_name": "Bob Agent", "value": "Su"},
        ),
        received_ms=server_t0 + 26_000,
    )
    if closed:
        apply(
            f.event(
                "conversation closed", uuid, event_conversation_closed=f.summary(uuid, closed=True)
            ),
            received_ms=server_t0 + 29_900,
        )
    return uuid


def _wait_for_first_frame(page) -> None:
    page.wait_for_function("() => window.replayState && window.replayState.firstFrameAt !== null")


def _player_ms(page) -> float:
    return page.evaluate("() => replayState.baseTs + replayState.replayer.getCurrentTime()")


def _wait_for_player_at(page, epoch: int, tolerance: int = 300) -> None:
    page.wait_for_function(
        "([epoch, tolerance]) => Math.abs("
        "replayState.baseTs + replayState.replayer.getCurrentTime() - epoch) < tolerance",
        arg=[epoch, tolerance],
    )


def send_frames(server: str, source, frames: list[dict]) -> None:
    """Send `frames` over the ingest socket as the shop's client would, until they are stored."""
    from websockets.sync.client import connect

    with connect(
        f"ws://{server}/ws/ingest/",
        additional_headers={"Authorization": f"Bearer {source.raw_key}"},
    ) as ws:
        for frame in frames:
            ws.send(f.dumps(frame))
        ws.send('{"type":"ping"}')
        assert json.loads(ws.recv(timeout=10)) == {"type": "ping"}


def send_order_confirmed(server: str, source, uuid: str, *, message: str) -> None:
    """Send batch 4, a new page load ten minutes on, and `message`, as the shop's client would."""
    later = f.T0 + 10 * 60_000
    events = page_events(later, "Order confirmed, thank you!", href="https://shop.example/done")
    send_frames(
        server,
        source,
        [f.rrweb_frame(uuid, 4, events, kind="init"), f.message(uuid, message, epoch=later)],
    )


def test_signing_in_shows_the_list_and_the_replay_shows_the_recorded_page(
    browser, daphne_server, staff_user
):
    uuid = seed_conversation()
    for number in range(6):
        seed_conversation(closed=number % 2 == 0)
    page = open_page(browser, daphne_server)
    page.goto(f"http://{daphne_server}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "agent")
    page.fill("input[name=password]", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url(f"http://{daphne_server}/")
    rows = page.locator("table.conversations tbody tr")
    assert rows.count() == 7
    assert "Ada Shopper" in rows.first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "conversation-list.png"), full_page=True)

    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    stage = page.frame_locator("#stage iframe")
    assert "Blue kettle, 39 EUR" in stage.locator("body").inner_text()
    assert page.locator("#stage iframe").get_attribute("sandbox") == "allow-same-origin"
    assert page.locator("#segments li").count() == 2
    assert "shop.example/cart" in page.locator("#segments").inner_text()
    page.locator("#transcript li.item.message").nth(1).click()
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / "replay.png"))


def test_clicking_a_transcript_item_moves_the_player_to_it_even_with_a_skewed_clock(
    browser, daphne_server, staff_client
):
    # The customer's clock is seven minutes behind the server's.
    uuid = seed_conversation(skew_ms=7 * 60_000)
    page = open_page(browser, daphne_server, staff_client)
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    coupon = page.locator("#transcript li.item", has_text="use a coupon")
    epoch = int(coupon.get_attribute("data-epoch"))
    # Sent 21 s into the visit on the server's clock: the same moment of the recording.
    assert abs(epoch - (f.T0 + 21_000)) < 1_000
    coupon.click()
    _wait_for_player_at(page, epoch)
    assert "Checkout: 2 items" in page.frame_locator("#stage iframe").locator("body").inner_text()
    page.wait_for_function("() => document.querySelector('#transcript li.active') !== null")
    assert "use a coupon" in page.locator("#transcript li.active").inner_text()

    page.locator("#transcript li.item", has_text="is the blue kettle").click()
    _wait_for_player_at(page, f.T0 + 2_000)
    assert abs(_player_ms(page) - (f.T0 + 2_000)) < 300
    assert "Blue kettle" in page.frame_locator("#stage iframe").locator("body").inner_text()


def test_a_batch_streamed_into_an_open_conversation_appears_without_reload(
    browser, daphne_server, staff_client, source
):
    uuid = seed_conversation(closed=False)
    page = open_page(browser, daphne_server, staff_client)
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    page.wait_for_function("() => window.replayState.live === true")
    # A new page load whose timestamps are ten minutes ahead: it must show at once anyway.
    send_order_confirmed(daphne_server, source, uuid, message="All done, thanks!")
    page.frame_locator("#stage iframe").locator("body", has_text="Order confirmed").wait_for(
        timeout=3_000
    )
    assert page.locator("#transcript li.item", has_text="All done, thanks!").count() == 1
    assert "shop.example/done" in page.locator("#segments").inner_text()


def stream_shopper(
    server: str,
    source,
    uuid: str,
    batches: list[dict],
    *,
    pause_after: int,
    paused: threading.Event,
    go: threading.Event,
    last: threading.Event,
) -> None:
    """Start a conversation and send `batches` as the shop's client would, each acknowledged by
    a ping (in the journal); after the first `pause_after`, say so and wait for `go`, then go
    on sending one every 0.3 s, the last one once `last` is set."""
    from websockets.sync.client import connect

    with connect(
        f"ws://{server}/ws/ingest/",
        additional_headers={"Authorization": f"Bearer {source.raw_key}"},
    ) as ws:
        for number, frame in enumerate([f.new_conversation(uuid), *batches]):
            if number == pause_after + 1:
                paused.set()
                assert go.wait(timeout=30)
            if number == len(batches):
                assert last.wait(timeout=30)
            if number > pause_after:
                time.sleep(0.3)
            ws.send(f.dumps(frame))
            ws.send('{"type":"ping"}')
            assert json.loads(ws.recv(timeout=10)) == {"type": "ping"}


def _stored_batches(uuid: str) -> int:
    from conversations.models import Conversation

    found = Conversation.objects.filter(uuid=uuid).values_list("rrweb_batch_total", flat=True)
    return found.first() or 0


@pytest.mark.parametrize("opened_after", [0, 1, 4], ids=["no-batch-yet", "one-batch", "four"])
def test_a_replay_opened_while_the_shopper_streams_reaches_its_first_frame_and_follows(
    browser, daphne_server, staff_client, source, opened_after
):
    uuid = f.new_uuid()
    start = int(time.time() * 1000)
    kettles = page_events(start, "Kettles", href="https://shop.example/kettles")
    batches = [f.rrweb_frame(uuid, 0, kettles, kind="init")]
    batches += [
        f.rrweb_frame(uuid, n, f.incremental_events(start=start + 2_000 + 300 * n, count=5))
        for n in range(1, 12)
    ]
    done = page_events(start + 6_000, "Order confirmed", href="https://shop.example/done")
    batches.append(f.rrweb_frame(uuid, 12, done, kind="init"))
    paused, go, last = threading.Event(), threading.Event(), threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        shopper = pool.submit(
            stream_shopper,
            daphne_server,
            source,
            uuid,
            batches,
            pause_after=opened_after,
            paused=paused,
            go=go,
            last=last,
        )
        assert paused.wait(timeout=20)
        in_thread(journal_applied)
        assert in_thread(_stored_batches, uuid) == opened_after
        page = open_page(browser, daphne_server, staff_client, timeout=30_000)
        go.set()  # the shopper goes on while the page loads and afterwards
        # The page finishes loading (goto waits for it) though the shopper is still sending.
        page.goto(f"http://{daphne_server}/conversations/{uuid}/")
        _wait_for_first_frame(page)
        stage = page.frame_locator("#stage iframe")
        stage.locator("body", has_text="Kettles").wait_for()
        last.set()
        shopper.result(timeout=30)
    # What was sent after the page opened arrived live, up to the last page load.
    stage.locator("body", has_text="Order confirmed").wait_for(timeout=10_000)
    page.wait_for_function("() => replayState.batches.length === 13 && replayState.live")
    assert "shop.example/done" in page.locator("#segments").inner_text()


def _stored(uuid: str, *frames: dict) -> None:
    """A conversation (open unless `frames` close it) with `frames` stored as ingest stores them."""
    for frame in (f.new_conversation(uuid), *frames):
        apply(frame)


def test_a_live_page_without_a_full_snapshot_waits_and_draws_the_late_first_batch(
    browser, daphne_server, staff_client, source
):
    """A page load's first batch (big, in parts) can complete after the batches that follow."""
    uuid = f.new_uuid()
    start = int(time.time() * 1000)
    in_thread(
        _stored,
        uuid,
        f.rrweb_frame(uuid, 1, f.incremental_events(start=start + 2_000)),
        f.rrweb_frame(uuid, 2, f.incremental_events(start=start + 3_000)),
    )
    page = open_page(browser, daphne_server, staff_client)
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    expect(page.locator("#stage-message")).to_have_text(
        "Waiting for the customer's page to be recorded…"
    )
    assert page.evaluate("() => replayState.firstFrameAt") is None

    first = page_events(start, "Kettles, at last", href="https://shop.example/kettles")
    send_frames(daphne_server, source, [f.rrweb_frame(uuid, 0, first, kind="init")])
    _wait_for_first_frame(page)
    page.frame_locator("#stage iframe").locator("body", has_text="Kettles, at last").wait_for()
    expect(page.locator("#stage-message")).to_be_hidden()
    page.wait_for_function("() => replayState.live && replayState.batches.length === 3")
    assert page.evaluate("() => replayState.batches.map((b) => b[0])") == [0, 1, 2]

    # And it goes on following what comes next.
    later = page_events(start + 6_000, "Order confirmed", href="https://shop.example/done")
    send_frames(daphne_server, source, [f.rrweb_frame(uuid, 3, later, kind="init")])
    page.frame_locator("#stage iframe").locator("body", has_text="Order confirmed").wait_for()


def test_a_closed_recording_starting_without_a_full_snapshot_opens_at_its_first(
    browser, daphne_server, staff_client
):
    """Its first batches were incremental only (a client that lost its first page load)."""
    uuid = f.new_uuid()
    kettles = page_events(f.T0 + 4_000, "Kettles", href="https://shop.example/kettles")
    in_thread(
        _stored,
        uuid,
        f.rrweb_frame(uuid, 0, f.incremental_events(start=f.T0)),
        f.rrweb_frame(uuid, 1, kettles, kind="init"),
        f.rrweb_frame(uuid, 2, f.incremental_events(start=f.T0 + 8_000)),
        f.event(
            "conversation closed", uuid, event_conversation_closed=f.summary(uuid, closed=True)
        ),
    )
    nothing = f.new_uuid()
    in_thread(
        _stored,
        nothing,
        f.rrweb_frame(nothing, 0, f.incremental_events(start=f.T0)),
        f.event(
            "conversation closed",
            nothing,
            event_conversation_closed=f.summary(nothing, closed=True),
        ),
    )
    page = open_page(browser, daphne_server, staff_client)
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    page.frame_locator("#stage iframe").locator("body", has_text="Kettles").wait_for()

    page.goto(f"http://{daphne_server}/conversations/{nothing}/")
    expect(page.locator("#stage-message")).to_have_text(
        "This recording holds no full view of the page to start from."
    )


def test_a_late_batch_below_the_live_pages_last_is_drawn_in_its_place(
    browser, daphne_server, staff_client, source
):
    uuid = f.new_uuid()
    start = int(time.time() * 1000)
    in_thread(
        _stored,
        uuid,
        f.rrweb_frame(
            uuid, 0, page_events(start, "Blue kettle", href="https://shop.example/k"), kind="init"
        ),
        f.rrweb_frame(uuid, 2, f.incremental_events(start=start + 5_000)),
    )
    page = open_page(browser, daphne_server, staff_client)
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    page.wait_for_function("() => replayState.live === true")
    stage = page.frame_locator("#stage iframe")
    stage.locator("body", has_text="Blue kettle").wait_for()

    # Batch 1, between the two the page holds: the kettle's text changes.
    sold_out = {
        "type": 3,
        "data": {
            "source": 0,
            "texts": [{"id": 4, "value": "Blue kettle: sold out"}],
            "attributes": [],
            "removes": [],
            "adds": [],
        },
        "timestamp": start + 3_000,
    }
    send_frames(daphne_server, source, [f.rrweb_frame(uuid, 1, [sold_out])])
    stage.locator("body", has_text="sold out").wait_for(timeout=10_000)
    page.wait_for_function("() => replayState.live && replayState.batches.length === 3")
    assert page.evaluate("() => replayState.batches.map((b) => b[0])") == [0, 1, 2]


def test_a_live_page_that_lost_its_socket_reconnects_and_shows_what_was_stored_meanwhile(
    browser, demo_server, demo_proxy, staff_client, source
):
    uuid = seed_conversation(closed=False)
    # The page reaches the server through a proxy that can drop it; the shop sends directly.
    server = f"127.0.0.1:{demo_proxy.port}"
    page = open_page(browser, server, staff_client)
    page.goto(f"http://{server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    page.wait_for_function("() => window.replayState.live === true")
    status = page.locator("#live-status")
    assert status.is_hidden()
    lines = page.locator("#transcript li.item").count()
    assert page.locator("#transcript li.item.system").count() > 0

    demo_proxy.cut()
    status.wait_for(state="visible")
    assert status.inner_text() == "Live updates paused — reconnecting…"
    send_order_confirmed(demo_server.address, source, uuid, message="Sent while the page was away")

    def stored() -> bool:
        from conversations.models import Message

        index = staff_client.get(f"/conversations/{uuid}/recording/index.json").json()
        sent = Message.objects.filter(
            conversation__uuid=uuid, body="Sent while the page was away"
        ).exists()
        return sent and index["batches"][-1][0] == 4

    in_thread(poll, stored, what="the frames sent while the page was away to be stored")
    assert status.is_visible()  # still away: what it shows next it can only have caught up on
    demo_proxy.restore()
    page.locator("#transcript li.item", has_text="Sent while the page was away").wait_for(
        timeout=20_000
    )
    status.wait_for(state="hidden")
    page.frame_locator("#stage iframe").locator("body", has_text="Order confirmed").wait_for(
        timeout=3_000
    )
    assert "shop.example/done" in page.locator("#segments").inner_text()
    shown = page.eval_on_selector_all(
        "#transcript li.item",
        "items => items.map((i) => i.dataset.messageUuid || i.dataset.eventId)",
    )
    assert len(set(shown)) == len(shown) == lines + 1  # nothing shown twice


def test_a_live_page_whose_session_ended_stops_reconnecting(
    browser, demo_server, demo_proxy, staff_client
):
    uuid = seed_conversation(closed=False)
    server = f"127.0.0.1:{demo_proxy.port}"
    page = open_page(browser, server, staff_client)
    page.goto(f"http://{server}/conversations/{uuid}/")
    page.wait_for_function("() => window.replayState.live === true")
    sockets: list = []
    page.on("websocket", lambda socket: sockets.append(socket))

    in_thread(staff_client.logout)
    demo_proxy.cut()
    demo_proxy.restore()
    page.locator("#live-status", has_text="Live updates stopped").wait_for(timeout=15_000)
    # Once it has found the session gone, it tries no more.
    attempts = len(sockets)
    page.wait_for_timeout(3_000)
    assert len(sockets) == attempts


def test_an_unauthenticated_visitor_sees_nothing(browser, daphne_server):
    uuid = seed_conversation(closed=False)
    page = open_page(browser, daphne_server)
    for path in ("/", f"/conversations/{uuid}/"):
        page.goto(f"http://{daphne_server}{path}")
        assert "/accounts/login/" in page.url
        assert "Blue kettle" not in page.content()
        assert "is the blue kettle" not in page.content()
    index = page.request.get(f"http://{daphne_server}/conversations/{uuid}/recording/index.json")
    assert index.status == 401
    events = page.request.get(f"http://{daphne_server}/conversations/{uuid}/recording/events.json")
    assert events.status == 401
    refused = page.evaluate(
        """(path) => new Promise((resolve) => {
            const ws = new WebSocket(`ws://${location.host}${path}`);
            ws.onopen = () => resolve("open");
            ws.onerror = () => resolve("refused");
        })""",
        f"/ws/live/{uuid}/",
    )
    assert refused == "refused"


HOSTILE_TEXT = "Hostile page"


def hostile_events(start: int) -> list:
    """A page full of script: tags, inline handlers, javascript: URLs, added at load and later."""
    payload = "window.top.__pwned = (window.top.__pwned || 0) + 1; alert(1)"

    def el(node_id: int, tag: str, attributes: dict, children: list | None = None) -> dict:
        return {
            "type": 2,
            "tagName": tag,
            "id": node_id,
            "attributes": attributes,
            "childNodes": children or [],
        }

    body = el(
        3,
        "body",
        {"onload": payload},
        [
            {"type": 3, "textContent": HOSTILE_TEXT, "id": 4},
            el(5, "script", {}, [{"type": 3, "textContent": payload, "id": 6}]),
            el(7, "img", {"src": "data:,nope", "onerror": payload}),
            el(
                8,
                "a",
                {"href": f"javascript:{payload}", "id": "js-link"},
                [{"type": 3, "textContent": "click me", "id": 9}],
            ),
            el(10, "svg", {"onload": payload}),
            el(11, "iframe", {"srcdoc": f"<script>{payload}</script>"}),
            el(12, "div", {"onmouseover": payload, "style": "width:100%;height:300px"}),
            el(13, "form", {"action": f"javascript:{payload}"}),
        ],
    )
    head = el(14, "head", {}, [el(15, "script", {"src": "data:text/javascript,alert(1)"})])
    html = el(2, "html", {}, [head, body])
    return [
        {
            "type": 4,
            "data": {"href": "https://evil.example/", "width": 1024, "height": 700},
            "timestamp": start,
        },
        {
            "type": 2,
            "data": {
                "node": {"type": 0, "id": 1, "childNodes": [html]},
                "initialOffset": {"left": 0, "top": 0},
            },
            "timestamp": start + 5,
        },
        {
            "type": 3,
            "data": {
                "source": 0,
                "texts": [],
                "attributes": [{"id": 7, "attributes": {"src": "data:,again", "onerror": payload}}],
                "removes": [],
                "adds": [
                    {
                        "parentId": 3,
                        "nextId": None,
                        "node": el(
                            20, "script", {}, [{"type": 3, "textContent": payload, "id": 21}]
                        ),
                    },
                    {
                        "parentId": 3,
                        "nextId": None,
                        "node": el(22, "img", {"src": "data:,x", "onerror": payload}),
                    },
                ],
            },
            "timestamp": start + 500,
        },
        {
            "type": 3,
            "data": {"source": 2, "type": 2, "id": 8, "x": 10, "y": 10},
            "timestamp": start + 900,
        },
    ]


def test_a_hostile_recording_runs_no_script_in_the_staffopen_page(
    browser, daphne_server, staff_client
):
    uuid = f.new_uuid()
    in_thread(apply, f.new_conversation(uuid))
    in_thread(
        apply, f.rrweb_frame(uuid, 0, hostile_events(f.T0), kind="init"), received_ms=f.T0 + 1_000
    )
    in_thread(
        apply,
        f.event(
            "conversation closed", uuid, event_conversation_closed=f.summary(uuid, closed=True)
        ),
    )
    page = open_page(browser, daphne_server, staff_client)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    response = page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    policy = response.headers["content-security-policy"]
    assert (
        "script-src 'self'" in policy
        and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    )
    _wait_for_first_frame(page)
    frame = page.frame_locator("#stage iframe")
    assert HOSTILE_TEXT in frame.locator("body").inner_text()
    page.click("#play")
    page.wait_for_timeout(1_500)
    frame.locator("img").first.hover(force=True, timeout=2_000)
    page.evaluate(
        "() => document.querySelector('#stage iframe').contentDocument.querySelector('a')?.click()"
    )
    page.wait_for_timeout(300)
    assert page.evaluate("() => window.__pwned") is None
    assert dialogs == []
    assert page.locator("#stage iframe").get_attribute("sandbox") == "allow-same-origin"


def test_a_replayed_page_loads_its_images_from_our_origin_only(
    browser, daphne_server, staff_client
):
    uuid = f.new_uuid()
    events = page_events(f.T0, "Blue kettle, 39 EUR", href="https://shop.example/kettle")
    body = events[1]["data"]["node"]["childNodes"][0]["childNodes"][0]
    image = {"src": "https://shop.example/kettle.png", "width": "40", "height": "40"}
    body["childNodes"].append(
        {"type": 2, "tagName": "img", "id": 90, "attributes": image, "childNodes": []}
    )
    in_thread(apply, f.new_conversation(uuid))
    in_thread(apply, f.rrweb_frame(uuid, 0, events, kind="init"), received_ms=f.T0 + 3_000)
    page = open_page(browser, daphne_server, staff_client)
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    image = page.frame_locator("#stage iframe").locator("img")
    image.wait_for()
    assert "/assets/" in image.get_attribute("src")
    page.wait_for_function(
        "() => document.querySelector('#stage iframe').contentDocument.querySelector('img')"
        ".naturalWidth === 1"  # the placeholder: this machine cannot reach shop.example
    )
    foreign = [url for url in requested if not url.startswith(f"http://{daphne_server}/")]
    assert foreign == []


def test_the_replay_page_is_drawn_with_its_transcript_even_when_its_script_cannot_load(
    browser, daphne_server, staff_client
):
    """The page holds its first paint for the player's script, but never longer than that.

    The script is render-blocking (so the first frame and the page are painted together,
    without laying the page out twice); one that fails to load must not leave staff a blank
    page: the transcript is painted without it.
    """
    uuid = seed_conversation()
    page = open_page(browser, daphne_server, staff_client)
    page.route("**/dist/replay*.js", lambda route: route.abort())
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    painted = "() => new Promise((done) => requestAnimationFrame(() => done(true)))"
    assert page.evaluate(painted) is True  # a frame is drawn: rendering is not held
    expect(page.locator("#transcript")).to_contain_text("is the blue kettle in stock?")
    assert page.evaluate("() => window.replayState === undefined")  # the script never ran
    page.context.close()
