"""The replay page's playback controls, driven as a user would in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from tests import factories as f
from tests import test_browser
from tests.test_browser import (
    _player_ms,
    _wait_for_first_frame,
    _wait_for_player_at,
    apply,
    in_thread,
    open_page,
    page_events,
    seed_conversation,
)

pytestmark = pytest.mark.django_db(transaction=True)

browser = test_browser.browser  # the one Chromium the other browser tests share

# Playback milliseconds per wall-clock millisecond over a short window, measured in the page.
RATE = """async (window_ms) => {
    const at = () => replayState.baseTs + replayState.replayer.getCurrentTime();
    const [from, t0] = [at(), performance.now()];
    await new Promise((resolve) => setTimeout(resolve, window_ms));
    return (at() - from) / (performance.now() - t0);
}"""

IDLE_START = f.T0 + 4_050  # the last mouse move before the customer walks away
IDLE_END = f.T0 + 5 * 60_000  # and the first one after they come back


def playback_rate(page, window_ms: int = 600) -> float:
    return page.evaluate(RATE, window_ms)


def open_replay(browser, server: str, client, uuid: str):
    """The replay page, once the recording's first frame is drawn; page errors are collected."""
    page = open_page(browser, server, client)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.goto(f"http://{server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    return page


def _seed_idle_conversation() -> str:
    """A visit where the customer sits idle for almost five minutes in the middle."""
    uuid = f.new_uuid()
    apply(f.new_conversation(uuid), received_ms=f.T0)
    first = page_events(f.T0, "Idle shop", href="https://shop.example/idle", count=30)
    apply(f.rrweb_frame(uuid, 0, first, kind="init"), received_ms=f.T0 + 3_000)
    apply(
        f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 3_100, count=20)),
        received_ms=IDLE_START,
    )
    apply(
        f.rrweb_frame(uuid, 2, f.incremental_events(start=IDLE_END, count=20)),
        received_ms=IDLE_END + 1_000,
    )
    apply(f.message(uuid, "One moment, I'll be right back", epoch=f.T0 + 3_000))
    apply(f.message(uuid, "Back again, sorry", epoch=IDLE_END))
    apply(
        f.event(
            "conversation closed", uuid, event_conversation_closed=f.summary(uuid, closed=True)
        ),
        received_ms=IDLE_END + 2_000,
    )
    return uuid


def test_space_toggles_play_and_pause(browser, daphne_server, staff_client):
    page = open_replay(browser, daphne_server, staff_client, seed_conversation())
    play = page.locator("#play")
    expect(play).to_have_attribute("aria-label", "Play")
    start = _player_ms(page)

    page.keyboard.press("Space")
    expect(play).to_have_attribute("aria-label", "Pause")
    expect(play).to_have_class(re.compile(r"\bplaying\b"))
    page.wait_for_function(
        "(start) => replayState.baseTs + replayState.replayer.getCurrentTime() > start + 1_000",
        arg=start,
    )
    expect(page.locator("#current-time")).not_to_have_text("0:00")

    page.keyboard.press("Space")
    expect(play).to_have_attribute("aria-label", "Play")
    paused_at = _player_ms(page)
    assert playback_rate(page) == 0
    assert _player_ms(page) == paused_at

    # Playing again carries on from where it stopped, not from the start.
    page.keyboard.press("Space")
    expect(play).to_have_attribute("aria-label", "Pause")
    assert playback_rate(page) > 0.5
    assert _player_ms(page) > paused_at
    assert page.errors == []


def test_arrow_keys_move_the_playback_time_forward_and_back(browser, daphne_server, staff_client):
    page = open_replay(browser, daphne_server, staff_client, seed_conversation())
    start = page.evaluate("() => replayState.startMs")
    stage = page.frame_locator("#stage iframe").locator("body")
    now = page.locator("#current-time")
    slider = page.locator("#track")

    page.keyboard.press("ArrowRight")
    _wait_for_player_at(page, start + 5_000)
    expect(now).to_have_text("0:05")
    expect(slider).to_have_attribute("aria-valuenow", "5000")
    # Seeking while paused stays paused.
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play")
    assert playback_rate(page, 200) == 0

    for _ in range(4):
        page.keyboard.press("ArrowRight")
    _wait_for_player_at(page, start + 25_000)
    expect(now).to_have_text("0:25")
    expect(stage).to_contain_text("Checkout: 2 items")

    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    _wait_for_player_at(page, start + 15_000)
    expect(now).to_have_text("0:15")
    expect(stage).to_contain_text("Blue kettle")

    # Back past the beginning stops at the beginning.
    for _ in range(4):
        page.keyboard.press("ArrowLeft")
    _wait_for_player_at(page, start, tolerance=50)
    expect(now).to_have_text("0:00")

    # While playing, a jump keeps playing from the new time.
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(start) => replayState.baseTs + replayState.replayer.getCurrentTime() > start + 5_000",
        arg=start,
    )
    expect(page.locator("#play")).to_have_attribute("aria-label", "Pause")
    assert playback_rate(page) > 0.5
    assert page.errors == []


def test_the_keyboard_still_drives_the_player_after_its_buttons_were_clicked(
    browser, daphne_server, staff_client
):
    page = open_replay(browser, daphne_server, staff_client, seed_conversation())
    start = page.evaluate("() => replayState.startMs")
    play = page.locator("#play")
    page.click("#play")
    expect(play).to_have_attribute("aria-label", "Pause")
    page.keyboard.press("Space")  # the focused play button takes it: one toggle, not two
    expect(play).to_have_attribute("aria-label", "Play")
    paused_at = _player_ms(page)
    assert paused_at - start < 2_000
    page.keyboard.press("ArrowRight")
    _wait_for_player_at(page, paused_at + 5_000, tolerance=100)

    page.get_by_role("button", name="2x", exact=True).click()
    page.keyboard.press("ArrowRight")
    _wait_for_player_at(page, paused_at + 10_000, tolerance=100)

    skip = page.get_by_label("Skip inactivity")
    skip.click()
    expect(skip).not_to_be_checked()
    paused_at = _player_ms(page)
    page.keyboard.press("ArrowLeft")
    _wait_for_player_at(page, paused_at - 5_000, tolerance=100)
    page.keyboard.press("Space")  # the focused checkbox takes it
    expect(skip).to_be_checked()
    expect(play).to_have_attribute("aria-label", "Play")
    assert page.errors == []


@pytest.mark.parametrize("closed", [True, False], ids=["closed", "live"])
def test_the_first_frame_is_drawn_from_the_page_itself_without_waiting_for_a_request(
    browser, daphne_server, staff_client, closed
):
    page = open_page(browser, daphne_server, staff_client)
    held: list = []
    page.route("**/recording/**", lambda route: held.append(route))  # nothing answers
    page.goto(f"http://{daphne_server}/conversations/{seed_conversation(closed=closed)}/")
    _wait_for_first_frame(page)
    # A closed recording starts at its beginning; a live one at its latest page.
    shown = page.frame_locator("#stage iframe").locator("body").inner_text()
    assert ("Blue kettle" if closed else "Checkout: 2 items") in shown
    for route in held:
        route.abort()


def test_an_arrow_key_pressed_while_the_rest_is_still_loading_lands_where_asked(
    browser, daphne_server, staff_client
):
    uuid = seed_conversation()
    page = open_page(browser, daphne_server, staff_client)
    held: list = []
    holding = [True]

    def hold_all_but_the_first_chunk(route):
        if holding[0] and "to=" not in route.request.url:
            held.append(route)
        else:
            route.continue_()

    page.route("**/recording/events.json?*", hold_all_but_the_first_chunk)
    page.goto(f"http://{daphne_server}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    page.wait_for_function("() => replayState.loads >= 1")  # the first chunk came with the page
    start = page.evaluate("() => replayState.startMs")
    assert page.evaluate("() => replayState.runTo < replayState.batches.length")

    page.keyboard.press("ArrowRight")
    holding[0] = False
    for route in held:
        route.continue_()
    _wait_for_player_at(page, start + 5_000)
    expect(page.locator("#current-time")).to_have_text("0:05")
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play")


def _rate_from(page, epoch: int) -> float:
    """Playback rate measured from `epoch` on: seek there paused, then play and measure.

    Seeking while playing and waiting to see the player at the target misses it at 8x: it is
    past the target again before the page is polled.
    """
    play = page.locator("#play")
    page.click("#play")
    expect(play).to_have_attribute("aria-label", "Play")
    page.evaluate("(ts) => replaySeek(ts)", epoch)
    _wait_for_player_at(page, epoch, tolerance=200)
    page.click("#play")
    expect(play).to_have_attribute("aria-label", "Pause")
    return playback_rate(page)


def test_speed_buttons_change_how_fast_the_recording_plays(browser, daphne_server, staff_client):
    page = open_replay(browser, daphne_server, staff_client, seed_conversation())
    start = page.evaluate("() => replayState.startMs")
    active = page.locator(".speeds [data-speed].active")
    expect(active).to_have_text("1x")

    page.keyboard.press("Space")
    expect(page.locator("#play")).to_have_attribute("aria-label", "Pause")
    for speed in (1, 2, 4, 8):
        if speed > 1:
            page.get_by_role("button", name=f"{speed}x", exact=True).click()
        expect(active).to_have_count(1)
        expect(active).to_have_text(f"{speed}x")
        assert page.evaluate("() => replayState.speed") == speed
        # Measured over a stretch of steady mouse movement, where nothing is skipped (5 s of
        # it: 600 ms at 8x stays inside), long enough that a slow frame under load does not
        # swing the measure.
        rate = _rate_from(page, start + 5_000)
        assert 0.6 * speed < rate < 1.5 * speed, (speed, rate)

    # Back to normal speed.
    page.get_by_role("button", name="1x", exact=True).click()
    expect(active).to_have_text("1x")
    assert 0.6 < _rate_from(page, start + 5_000) < 1.5
    assert page.errors == []


def test_skip_inactivity_is_on_by_default_and_can_be_turned_off_and_on(
    browser, daphne_server, staff_client
):
    page = open_replay(browser, daphne_server, staff_client, in_thread(_seed_idle_conversation))
    skip = page.get_by_label("Skip inactivity")
    expect(skip).to_be_checked()
    before_idle = page.locator("#transcript li.item", has_text="right back")

    def play_into_the_idle_stretch():
        before_idle.click()
        _wait_for_player_at(page, f.T0 + 3_000)
        if page.get_attribute("#play", "aria-label") == "Play":
            page.keyboard.press("Space")
        expect(page.locator("#play")).to_have_attribute("aria-label", "Pause")
        page.wait_for_function(
            "(ts) => replayState.baseTs + replayState.replayer.getCurrentTime() > ts",
            arg=IDLE_START + 500,
        )

    # On: the idle minutes fly past.
    play_into_the_idle_stretch()
    assert playback_rate(page) > 10
    # Off, in the middle of them: back to real time at once.
    skip.uncheck()
    expect(skip).not_to_be_checked()
    assert 0.6 < playback_rate(page) < 1.5
    assert _player_ms(page) < IDLE_END
    # Off from before them: real time all along.
    play_into_the_idle_stretch()
    assert 0.6 < playback_rate(page) < 1.5
    # On again: skipping again.
    skip.check()
    expect(skip).to_be_checked()
    play_into_the_idle_stretch()
    assert playback_rate(page) > 10
    assert page.errors == []


def test_the_full_screen_button_shows_the_recording_full_screen(
    browser, daphne_server, staff_client
):
    page = open_replay(browser, daphne_server, staff_client, seed_conversation())
    stage = page.locator("#stage iframe")
    framed = (
        "() => { const [a, b] = [document.querySelector('#stage iframe'), "
        "document.getElementById('stage-wrap')].map((e) => e.getBoundingClientRect());"
        " return a.left >= b.left - 1 && a.top >= b.top - 1"
        " && a.right <= b.right + 1 && a.bottom <= b.bottom + 1; }"
    )
    page.wait_for_function(framed)
    width_in_page = stage.bounding_box()["width"]

    page.click("#fullscreen")
    page.wait_for_function("() => document.fullscreenElement?.id === 'stage-wrap'")
    viewport = page.evaluate("() => [innerWidth, innerHeight]")
    box = page.locator("#stage-wrap").bounding_box()
    assert [round(box["width"]), round(box["height"])] == viewport
    # The recorded page is drawn bigger, and still whole. It is rescaled once the full-screen
    # change has settled (replay.js), so wait for it rather than look once: the old size is
    # also "whole" inside the bigger box.
    page.wait_for_function(
        "(before) => document.querySelector('#stage iframe').getBoundingClientRect().width"
        " > before + 100",
        arg=width_in_page,
    )
    page.wait_for_function(framed)
    assert stage.bounding_box()["width"] > width_in_page + 100
    expect(page.frame_locator("#stage iframe").locator("body")).to_contain_text("Blue kettle")

    # The controls are hidden in full screen, so the keyboard must still work there.
    page.keyboard.press("Space")
    expect(page.locator("#play")).to_have_attribute("aria-label", "Pause")
    assert page.evaluate("() => document.fullscreenElement?.id") == "stage-wrap"
    page.keyboard.press("Space")
    expect(page.locator("#play")).to_have_attribute("aria-label", "Play")
    paused_at = _player_ms(page)
    page.keyboard.press("ArrowRight")
    _wait_for_player_at(page, paused_at + 5_000, tolerance=100)
    assert page.evaluate("() => document.fullscreenElement?.id") == "stage-wrap"

    # Leaving full screen (the browser's Escape, which headless Chromium does not deliver)
    # fits the recording back into the page.
    page.evaluate("() => document.exitFullscreen()")
    page.wait_for_function("() => document.fullscreenElement === null")
    page.wait_for_function(framed)
    assert abs(stage.bounding_box()["width"] - width_in_page) < 2
    assert page.errors == []
