"""Console errors and failed requests in Chromium, from the shop's page to the staff pages.

The demo shop's page is recorded by the reference client (rrweb, its console plugin and our
network recorder) over a real Daphne process; staff then find what went wrong on the list
page and jump to it from the replay page's Console & network panel.
"""

import pytest

from conversations.models import Conversation, PageError
from tests import factories as f
from tests.test_browser import (  # noqa: F401  (browser: a fixture)
    ARTIFACTS,
    apply,
    browser,
    in_thread,
    open_page,
)
from tests.test_e2e import CLIENT, wait_delivered, wait_online

pytestmark = pytest.mark.django_db(transaction=True)

LOGGED = "Checkout failed: cart is undefined"
MISSING = "/demo/no-such-page/"
# The replayer's position on the recording's clock, as the page's own controls compute it.
POSITION = "() => { const s = window.replayState; return s.baseTs + s.replayer.getCurrentTime(); }"


def shop_visit_with_errors(browser, shop: str):  # noqa: F811
    """A shopper's visit during which the page logs an error and a request fails; its page."""
    page = open_page(browser, shop, timeout=15_000)
    page.goto(f"http://{shop}/demo/")
    wait_online(page)
    page.mouse.move(200, 200)
    page.wait_for_timeout(2_000)  # some recording first, so that the error is a seek away
    page.evaluate("(text) => console.error(text)", LOGGED)
    assert page.evaluate("(url) => fetch(url).then((response) => response.status)", MISSING) == 404
    page.wait_for_timeout(1_500)
    page.mouse.move(400, 300)  # and some after it
    wait_delivered(page)
    return page


def clean_visit() -> str:
    uuid = f.new_uuid()
    apply(f.new_conversation(uuid, participants=[f.participant("Clean Carl")]))
    apply(f.rrweb_frame(uuid, 0, f.rrweb_events(count=5), kind="init"))
    return uuid


def test_a_logged_error_and_a_failed_request_are_listed_and_seek_the_replay(
    browser,  # noqa: F811
    demo_server,
    staff_client,
):
    shop = demo_server.address
    shopper = shop_visit_with_errors(browser, shop)
    uuid = shopper.evaluate(f"() => {CLIENT}.conversationUuid")
    clean = in_thread(clean_visit)

    def counted() -> tuple:
        conversation = Conversation.objects.get(uuid=uuid)
        return conversation.console_error_total, conversation.network_error_total

    assert in_thread(counted) == (1, 1)
    kinds = in_thread(
        lambda: list(
            PageError.objects.filter(conversation__uuid=uuid).values_list("kind", "status")
        )
    )
    assert sorted(kinds, key=str) == [("console", None), ("network", 404)]

    staff = open_page(browser, shop, staff_client, timeout=15_000)
    staff.goto(f"http://{shop}/conversations/{uuid}/")
    staff.wait_for_function("() => window.replayState && window.replayState.firstFrameAt !== null")
    entries = staff.locator("#console-list .console-entry")
    assert entries.count() == 2
    logged = entries.filter(has_text=LOGGED)
    failed = entries.filter(has_text=f"GET http://{shop}{MISSING}")
    assert logged.locator(".console-level").inner_text() == "error"
    assert failed.locator(".console-level").inner_text() == "404"
    assert staff.locator("#track-errors .marker").count() == 2
    ARTIFACTS.mkdir(exist_ok=True)
    staff.screenshot(path=str(ARTIFACTS / "replay-console-panel.png"))

    at = int(logged.get_attribute("data-ts"))
    assert abs(staff.evaluate(POSITION) - at) > 1_000  # not there yet
    logged.click()
    staff.wait_for_function(f"() => Math.abs(({POSITION})() - {at}) < 100")
    assert staff.evaluate("() => window.replayState.playing") is False  # paused at the error
    start = staff.evaluate("() => window.replayState.startMs")
    seconds = (at - start) // 1000
    assert staff.locator("#current-time").inner_text() == f"0:{seconds:02d}"
    assert logged.locator(".console-time").inner_text() == f"0:{seconds:02d}"

    # While the page is open, what goes wrong next shows up in the panel as it is stored.
    shopper.evaluate("() => console.warn('Stock check is slow')")
    xhr = """(url) => new Promise((resolve) => {
        const request = new XMLHttpRequest();
        request.open("POST", url);
        request.onloadend = () => resolve(request.status);
        request.send("{}");
    })"""
    assert shopper.evaluate(xhr, MISSING) in (403, 404, 405)
    wait_delivered(shopper)
    entries.nth(3).wait_for()
    warned = entries.filter(has_text="Stock check is slow")
    assert warned.locator(".console-level").inner_text() == "warn"
    posted = entries.filter(has_text=f"POST http://{shop}{MISSING}")
    assert posted.locator(".console-level").inner_text() in ("403", "404", "405")
    assert staff.locator("#console-count").inner_text() == "3"  # warnings are not counted
    totals = staff.locator("#console-totals").inner_text()
    assert totals.endswith("1 console error, 2 failed requests")
    assert staff.locator("#track-errors .marker").count() == 4
    assert in_thread(counted) == (1, 2)
    staff.screenshot(path=str(ARTIFACTS / "replay-console-panel-live.png"))
    shopper.context.close()

    staff.goto(f"http://{shop}/?errors=1")
    staff.screenshot(path=str(ARTIFACTS / "list-had-errors.png"))
    listed = staff.locator("table.conversations tbody")
    assert listed.locator(f'a[href="/conversations/{uuid}/"]').count() == 1
    assert listed.locator(f'a[href="/conversations/{clean}/"]').count() == 0
    assert listed.locator(".badge.errors").first.inner_text() == "3 errors"
    staff.goto(f"http://{shop}/")
    assert staff.locator(f'a[href="/conversations/{clean}/"]').count() == 1
    staff.context.close()
